"""Walking a stored AnnData without reading its data (shared by ``info`` and ``validate``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from annio.cli.summary import encoding


@dataclass
class Entry:
    node: Any  # a node of the storage adapter or of the fast metadata view
    depth: int

    def describe(self) -> str:
        enc = " ".join(encoding(self.node)).strip() or "(no encoding)"
        if not self.node.is_group:
            extra = f" shape={self.node.shape} dtype={self.node.dtype}"
            if self.node.chunks:
                extra += f" chunks={self.node.chunks}"
            if self.node.shards:
                extra += f" shards={self.node.shards}"
        else:
            shape = self.node.attrs.get("shape")
            extra = f" shape={tuple(shape)}" if shape is not None else ""
        return f"{'  ' * self.depth}{self.node.name or '/'}: {enc}{extra}"


def walk(node: Any, depth: int = 0, max_depth: int | None = None) -> Iterator[Entry]:
    yield Entry(node, depth)
    if node.is_group and (max_depth is None or depth < max_depth):
        for key in node.keys():
            yield from walk(node[key], depth + 1, max_depth)
