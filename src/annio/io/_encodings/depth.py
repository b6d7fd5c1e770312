"""Room on the Python stack for deeply nested elements.

Reading or writing a nested ``dict`` through a user callback recurses (the callback calls
back for every child), and each level of nesting costs a handful of frames: a tree a few
hundred levels deep is legitimate and must not hit the default recursion limit. The limit
is raised while such a walk runs (up to a hard cap, beyond which the RecursionError becomes
a clean FormatError in the reader) and restored afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["StackRoom", "nesting_depth"]

FRAMES_PER_LEVEL = 16
MAX_RECURSION_LIMIT = 50_000


def _frame_depth() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        frame, n = frame.f_back, n + 1
    return n


class StackRoom:
    """Raises the recursion limit as a walk gets deeper; restores it when the walk ends."""

    def __init__(self) -> None:
        self._level = 0
        self._base = 0
        self._old = 0

    def _grow(self, levels: int) -> None:
        needed = self._base + FRAMES_PER_LEVEL * (levels + 1) + 200
        if needed > sys.getrecursionlimit():
            # in steps, so a walk that goes deeper one level at a time rarely resets it
            sys.setrecursionlimit(min(MAX_RECURSION_LIMIT, needed + FRAMES_PER_LEVEL * 64))

    @contextmanager
    def level(self) -> Iterator[None]:
        """One level deeper for the duration of the block (the outermost one starts the walk)."""
        self._level += 1
        if self._level == 1:
            self._base, self._old = _frame_depth(), sys.getrecursionlimit()
        self._grow(self._level)
        try:
            yield
        finally:
            self._level -= 1
            if self._level == 0:
                sys.setrecursionlimit(self._old)

    @contextmanager
    def levels(self, depth: int) -> Iterator[None]:
        """Room for a walk ``depth`` levels deep, known up front (the writer's case)."""
        with self.level():
            self._grow(depth)
            yield


def nesting_depth(value: Any) -> int:
    """How deeply mappings nest in ``value`` (an AnnData counts its ``uns``), walked
    without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        uns = getattr(item, "uns", None) if not isinstance(item, Mapping) else None
        if isinstance(uns, Mapping):
            item = uns
        if isinstance(item, Mapping):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, Mapping) or hasattr(v, "uns"))
    return deepest
