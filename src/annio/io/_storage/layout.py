"""Chunk and shard shapes: annio's layout policy, in one place.

The policy favours reading cells (rows): chunks span whole rows while a row fits in the
chunk budget, so a row-subset touches as few chunks as possible, and shards group many
chunks so a store holds few files. Budgets come from ``settings.chunk_target_bytes`` and
``settings.shard_target_bytes`` (see the benchmark notes for the measurements behind the
defaults).
"""

from __future__ import annotations

import math

from annio.settings import settings

__all__ = ["zarr_chunks", "zarr_shards", "h5_chunks"]


def _row_chunks(shape: tuple[int, ...], itemsize: int, budget: int) -> tuple[int, ...]:
    if not shape:
        return ()
    inner = [max(1, d) for d in shape[1:]]
    row_bytes = itemsize * math.prod(inner)
    if row_bytes > budget:
        # a single row is over budget: split the trailing axes, keep one row per chunk
        per_axis = max(1, int((budget // itemsize) ** (1 / max(1, len(inner)))))
        return (1, *(min(d, per_axis) for d in inner))
    rows = max(1, budget // row_bytes)
    return (max(1, min(shape[0], rows)), *inner)


def zarr_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Inner chunk shape for a zarr array of ``shape`` (length-0 axes get chunk 1)."""
    return _row_chunks(tuple(shape), itemsize, settings.chunk_target_bytes)


def zarr_shards(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Shard shape: a whole number of chunks covering every trailing axis, about
    ``settings.shard_target_bytes`` uncompressed, never longer than needed on axis 0."""
    if not shape:
        return ()
    trailing = tuple(math.ceil(max(1, d) / c) * c for d, c in zip(shape[1:], chunks[1:], strict=True))
    row_bytes = itemsize * math.prod(trailing)
    chunk_rows = chunks[0]
    n_chunks_needed = math.ceil(max(1, shape[0]) / chunk_rows)
    per_shard = max(1, settings.shard_target_bytes // max(1, row_bytes * chunk_rows))
    return (chunk_rows * min(per_shard, n_chunks_needed), *trailing)


def h5_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape for a chunked (compressed or resizable) HDF5 dataset."""
    return _row_chunks(tuple(shape), itemsize, settings.chunk_target_bytes)
