"""Loom and 10x ``.h5`` sources opened for streaming (``annio convert``): obs/var and the
small annotations are read into memory, the matrices become dask arrays of CSR row blocks
(cells) that each read their part of the file when the writer asks for them, so converting
a file needs about one block (``settings.write_block_bytes``) of memory, not the matrix.

* loom stores genes × cells densely: a block of cells is a column slab of the matrix
  (aligned with its HDF5 chunks), transposed and compressed to CSR;
* a 10x ``.h5`` stores genes × cells in CSC, one compressed column per cell: a block of
  cells is a contiguous range of ``data``/``indices`` plus a slice of ``indptr`` — already
  CSR of cells × genes.

Matrix Market files have no such layout guarantee (entries may come in any order), so they
are still parsed in one pass into memory (see :mod:`annio.io._formats.mtx`).
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError
from annio.settings import settings

__all__ = ["stream_loom", "stream_10x_h5", "cell_blocks"]


def cell_blocks(bounds: list[int], n_cols: int, dtype: Any, read_block: Any) -> Any:
    """A dask array (cells × ``n_cols``, CSR chunks) whose row block ``i`` covers cells
    ``bounds[i]:bounds[i+1]`` and is made by ``read_block(start, stop)``."""
    import dask
    import dask.array as da

    meta = sp.csr_matrix((0, n_cols), dtype=dtype)
    parts = [
        da.from_delayed(dask.delayed(read_block)(a, b), shape=(b - a, n_cols), dtype=dtype, meta=meta)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    if not parts:
        return da.from_array(meta, asarray=False)
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


# ----------------------------------------------------------------------------- loom
_DENSE_SLAB_BYTES = 64 << 20  # a loom block is read dense before compression: cap it as read_loom does
def _loom_bounds(ds: h5py.Dataset, itemsize: int) -> list[int]:
    n_genes, n_cells = ds.shape
    chunk = ds.chunks[1] if ds.chunks else 1
    budget = min(settings.write_block_bytes, _DENSE_SLAB_BYTES)
    cells = max(1, budget // max(1, n_genes * max(itemsize, ds.dtype.itemsize)))
    cells = max(chunk, cells // chunk * chunk)  # whole HDF5 chunks: each is decompressed once
    return [*range(0, n_cells, cells), n_cells]


def _loom_matrix(path: str, name: str, ds: h5py.Dataset, dtype: Any) -> Any:
    if ds.ndim != 2:
        raise FormatError(ds.name, f"expected a 2-D genes × cells matrix, found shape {ds.shape}")
    n_genes = ds.shape[0]

    def read_block(start: int, stop: int) -> sp.csr_matrix:
        with h5py.File(path, "r") as f:
            slab = f[name][:, start:stop]
        return sp.csr_matrix(slab.T.astype(dtype, copy=False))

    return cell_blocks(_loom_bounds(ds, np.dtype(dtype).itemsize), n_genes, np.dtype(dtype), read_block)


def stream_loom(filename: str | os.PathLike, **kwargs: Any) -> AnnData:
    """:func:`~annio.io.read_loom` (``sparse=True``) with X and layers as streamed dask arrays."""
    from annio.io._formats.loom import open_loom

    path = os.fspath(filename)
    return open_loom(path, lambda ds, dtype: _loom_matrix(path, ds.name, ds, dtype), **kwargs)


# ----------------------------------------------------------------------------- 10x h5
def _tenx_bounds(indptr: np.ndarray, bytes_per_value: int) -> list[int]:
    """Cell boundaries such that each block holds about ``write_block_bytes / 2`` of values."""
    budget = max(1, settings.write_block_bytes // 2 // bytes_per_value)
    n_cells = len(indptr) - 1
    bounds, start = [0], 0
    while start < n_cells:
        # the furthest cell whose values still fit, at least one cell per block
        stop = int(np.searchsorted(indptr, indptr[start] + budget, side="right")) - 1
        stop = min(n_cells, max(start + 1, stop))
        bounds.append(stop)
        start = stop
    return bounds


def tenx_matrix(path: str, group: h5py.Group) -> Any:
    """The 10x matrix of ``group`` (``data``/``indices``/``indptr``/``shape``) as a dask
    array of float32 CSR row blocks (cells × genes), checked like the in-memory reader."""
    for key in ("data", "indices", "indptr", "shape"):
        if key not in group:
            raise FormatError(f"{group.name}/{key}", "missing from the 10x matrix")
    n_genes, n_cells = (int(x) for x in group["shape"][()])
    indptr = group["indptr"][()].astype(np.int64)
    n_values = group["data"].shape[0]
    if len(indptr) != n_cells + 1 or group["indices"].shape[0] != n_values or (len(indptr) and indptr[-1] != n_values):
        raise FormatError(group.name, f"inconsistent matrix: shape {(n_genes, n_cells)}, {len(indptr)} indptr, {n_values} values")
    if np.any(np.diff(indptr) < 0):
        raise FormatError(f"{group.name}/indptr", "indptr decreases")
    name = group.name
    index_dtype = np.int32 if max(n_genes, n_values) < 2**31 else np.int64

    def read_block(start: int, stop: int) -> sp.csr_matrix:
        lo, hi = int(indptr[start]), int(indptr[stop])
        with h5py.File(path, "r") as f:
            data = f[name]["data"][lo:hi].astype(np.float32, copy=False)
            indices = f[name]["indices"][lo:hi].astype(index_dtype, copy=False)
        if len(indices) and (indices.min() < 0 or indices.max() >= n_genes):
            raise FormatError(f"{name}/indices", f"gene indices out of range [0, {n_genes})")
        return sp.csr_matrix((data, indices, (indptr[start : stop + 1] - lo).astype(index_dtype)), shape=(stop - start, n_genes))

    bytes_per_value = 4 + np.dtype(index_dtype).itemsize + group["data"].dtype.itemsize + group["indices"].dtype.itemsize
    return cell_blocks(_tenx_bounds(indptr, bytes_per_value), n_genes, np.dtype(np.float32), read_block)


def stream_10x_h5(filename: str | os.PathLike, **kwargs: Any) -> AnnData:
    """:func:`~annio.io.read_10x_h5` with X as a streamed dask array."""
    from annio.io._formats.tenx import open_10x_h5

    path = os.fspath(filename)
    values: list[int] = []

    def matrix(group: h5py.Group) -> Any:
        values.append(int(group["data"].shape[0]) if "data" in group else 0)
        return tenx_matrix(path, group)

    adata = open_10x_h5(path, matrix, **kwargs)
    try:
        adata.X.annio_values = sum(values)  # the values to write, for a progress bar (at most)
    except AttributeError:  # pragma: no cover - a dask version without instance attributes
        pass
    return adata
