"""Block-wise copying of large arrays (dask, h5py, zarr, backed) into a storage array, so
peak memory is bounded by ``settings.write_block_bytes`` rather than the data size."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from annio.io._storage.adapter import StorageArray
from annio.settings import settings

__all__ = ["row_blocks", "copy_rows", "report_progress", "progress_hook"]

#: the callback told how many values each streamed block wrote (see :func:`progress_hook`)
_PROGRESS: list[Callable[[int], None]] = []


def report_progress(n_values: int) -> None:
    """Tell the active progress hook (if any) that ``n_values`` more values were written."""
    for callback in _PROGRESS:
        callback(n_values)


@contextmanager
def progress_hook(callback: Callable[[int], None]) -> Iterator[None]:
    """While active, every block written by :func:`copy_rows` or the sparse streamer calls
    ``callback(n_values)`` (dense: the block's size, sparse: its number of stored values)."""
    _PROGRESS.append(callback)
    try:
        yield
    finally:
        _PROGRESS.remove(callback)


def row_blocks(n_rows: int, row_bytes: int, align: int = 1) -> Iterator[slice]:
    """Slices over ``n_rows`` rows, each within the write budget and a multiple of ``align``."""
    rows = max(1, settings.write_block_bytes // max(1, row_bytes))
    rows = max(align, rows // align * align)
    for start in range(0, n_rows, rows):
        yield slice(start, min(n_rows, start + rows))


def _as_numpy(block: Any) -> np.ndarray:
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block)


def copy_rows(source: Any, target: StorageArray) -> None:
    """Copy ``source`` (anything sliceable along axis 0) into ``target`` block by block.

    Blocks are aligned with the target's shards (or chunks), so no two blocks ever write
    into the same shard.
    """
    shape = tuple(source.shape)
    if not shape or shape[0] == 0:
        return
    itemsize = np.dtype(source.dtype).itemsize or 16
    row_bytes = itemsize * math.prod(shape[1:])
    grid = target.shards or target.chunks or (1,)
    for rows in row_blocks(shape[0], row_bytes, align=grid[0]):
        block = _as_numpy(source[rows])
        n_values = block.size
        target.write(rows, block)
        del block  # before the next block is read: one block in memory at a time
        report_progress(n_values)
