"""Block-wise copying of large arrays (dask, h5py, zarr, backed) into a storage array, so
peak memory is bounded by ``settings.write_block_bytes`` rather than the data size."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from annio.settings import settings
from annio.io._storage.adapter import StorageArray

__all__ = ["row_blocks", "copy_rows"]


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
        target.write(rows, _as_numpy(source[rows]))
