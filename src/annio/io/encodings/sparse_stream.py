"""Streamed writing of sparse matrices that do not sit in memory (dask arrays of scipy
chunks, backed datasets): blocks along the major axis are appended one at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..storage import StorageGroup
from .blocks import row_blocks


def _major_blocks(value: Any, fmt: str, n_major: int) -> Any:
    chunks = getattr(value, "chunks", None)
    if chunks is not None:  # dask: follow its own blocks along the major axis
        axis = 0 if fmt == "csr" else 1
        start = 0
        for size in chunks[axis]:
            yield slice(start, start + size)
            start += size
        return
    yield from row_blocks(n_major, 64 * 64)  # backed datasets: a few thousand rows per block


def append_blocks(group: StorageGroup, value: Any, fmt: str, shape: tuple[int, ...], kwargs: dict, dataset_kwargs: Mapping[str, Any]) -> None:
    n_major = shape[0] if fmt == "csr" else shape[1]
    dtype = np.dtype(dataset_kwargs.get("dtype") or value.dtype)
    indptr_dtype = np.dtype(dataset_kwargs.get("indptr_dtype") or np.int64)
    data = group.create_empty_array("data", (0,), dtype, dataset_kwargs=kwargs, resizable=True, shardable=False)
    indices = group.create_empty_array("indices", (0,), np.int32 if max(shape) < 2**31 else np.int64, dataset_kwargs=kwargs, resizable=True, shardable=False)
    indptr_parts = [np.zeros(1, dtype=np.int64)]
    nnz = 0
    for sel in _major_blocks(value, fmt, n_major):
        block = value[sel] if fmt == "csr" else value[:, sel]
        if hasattr(block, "compute"):
            block = block.compute()
        block = sp.csr_matrix(block) if fmt == "csr" else sp.csc_matrix(block)
        block.sort_indices()
        if block.nnz:
            data.resize(nnz + block.nnz)
            indices.resize(nnz + block.nnz)
            data.write(slice(nnz, nnz + block.nnz), block.data.astype(dtype, copy=False))
            indices.write(slice(nnz, nnz + block.nnz), block.indices)
        indptr_parts.append(block.indptr[1:].astype(np.int64) + nnz)
        nnz += block.nnz
    group.create_array("indptr", np.concatenate(indptr_parts).astype(indptr_dtype), dataset_kwargs=kwargs, resizable=True)
