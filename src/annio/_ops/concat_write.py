"""Writing a :class:`~annio._ops.concat_direct.ConcatenatedSparse` into a local HDF5 file
without passing its values through Python objects.

Every part's ``data`` and ``indices`` ranges go to their final positions in datasets
preallocated for the total number of stored values
(:func:`annio.io._storage.h5_raw.preallocated`): ``data`` is copied file to file by the
kernel when the part's dataset is plain (uncompressed, same dtype), else read and converted
block by block; ``indices`` are copied the same way and range-checked as on every other path
(in the planned blocks, bounded by the write budget): from the mapped source file in a second
thread while the kernel copies, or, where the part's dataset is not plain, as read. ``indptr`` is assembled
from the parts' (already read) ``indptr`` arrays. The result is the file the streamed
writer makes, with the same dtypes and chunking.

Used only when no part's minor axis is remapped (the column maps would change ``indices``
and drop values) and no compression is asked for; otherwise, and for zarr, the streamed
writer (:mod:`annio.io._encodings.sparse_stream`) writes the blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from annio.io._encodings.blocks import report_progress
from annio.io._storage.adapter import StorageGroup
from annio.io._storage.h5_raw import preallocated
from annio.io._storage.sparse_read import check_index_range, check_indptr_bounds
from annio.settings import settings

__all__ = ["write_sparse_direct"]

_COMPRESSION_KEYS = ("compression", "compression_opts", "shuffle", "fletcher32", "scaleoffset", "chunks")


def write_sparse_direct(group: StorageGroup, value: Any, dataset_kwargs: Mapping[str, Any]) -> bool:
    """Write ``value`` as ``data``/``indices``/``indptr`` of ``group``; False (nothing
    written) when this path does not apply."""
    if any(m is not None for m in value.maps) or any(dataset_kwargs.get(k) is not None for k in _COMPRESSION_KEYS):
        return False
    dtype = np.dtype(dataset_kwargs.get("dtype") or value.dtype)
    index_dtype = np.dtype(np.int32 if value.n_minor < 2**31 else np.int64)
    for source, indptr in zip(value.sources, value._indptrs, strict=True):
        if source is not None:
            check_indptr_bounds(source.path, indptr[:-1], indptr[1:], source.nnz)
    nnz = sum(int(ip[-1] - ip[0]) for ip in value._indptrs if ip is not None)
    data = preallocated(group, "data", nnz, dtype, max(1, settings.chunk_target_bytes // dtype.itemsize))
    if data is None:
        return False
    indices = preallocated(group, "indices", nnz, index_dtype, max(1, settings.chunk_target_bytes // index_dtype.itemsize))
    if indices is None:  # pragma: no cover - same file as data
        data.close()
        del group.raw["data"]
        return False
    with data, indices:
        indptr = _copy_blocks(value, data, indices)
    small = nnz < np.iinfo(np.int32).max
    indptr_dtype = dataset_kwargs.get("indptr_dtype") or (np.int32 if small else np.int64)
    group.create_array("indptr", indptr.astype(indptr_dtype, copy=False), dataset_kwargs={}, resizable=True)
    return True


def _copy_blocks(value: Any, data: Any, indices: Any) -> np.ndarray:
    """Copy the planned blocks; returns the output's ``indptr`` (int64)."""
    n_major = sum(value.lengths)
    indptr = np.zeros(n_major + 1, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(value.lengths)]).astype(np.int64)
    pos = 0
    for part, lo, hi in value._blocks:
        source, part_indptr = value.sources[part], value._indptrs[part]
        row0 = int(offsets[part]) + lo
        if source is None:
            indptr[row0 + 1 : row0 + 1 + hi - lo] = pos
        else:
            start, stop = int(part_indptr[lo]), int(part_indptr[hi])
            if stop > start:
                if not source.data._with_node(lambda node: data.copy_from(node, start, stop, pos)):  # noqa: B023 (called at once)
                    data.write(pos, source.data._with_node(lambda node: data.read(node, start, stop)))  # noqa: B023 (called at once)
                check = _index_check(source)
                if not source.indices._with_node(lambda node: indices.copy_checked(node, start, stop, pos, check)):  # noqa: B023 (called at once)
                    block = source.indices._with_node(lambda node: indices.read(node, start, stop))  # noqa: B023 (called at once)
                    check(block)
                    indices.write(pos, block)
                    del block
            indptr[row0 + 1 : row0 + 1 + hi - lo] = part_indptr[lo + 1 : hi + 1] - start + pos
            pos += stop - start
            report_progress(stop - start)
        if value.on_block is not None:
            value.on_block(hi - lo)
    return indptr


def _index_check(source: Any) -> Any:
    """The range check of blocks of ``source``'s ``indices`` (see :func:`check_index_range`)."""
    return lambda block: check_index_range(source.path, block, source.n_minor)
