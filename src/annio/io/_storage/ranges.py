"""Index arithmetic for reading ranges of 1-D arrays (pure numpy, no storage)."""

from __future__ import annotations

import numpy as np

__all__ = ["runs", "gather_index"]


def runs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` of the maximal runs of consecutive values in sorted unique
    ``positions`` (``[3, 4, 5, 9]`` → ``([3, 9], [6, 10])``)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return positions[:0], positions[:0]
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = positions[np.concatenate(([0], breaks + 1))]
    stops = positions[np.concatenate((breaks, [positions.size - 1]))] + 1
    return starts, stops


def gather_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)
