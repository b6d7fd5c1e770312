"""Stacking in-memory sparse matrices along their rows in one pass, reindexing their columns
on the way.

scipy's ``vstack`` after a reindex reads and writes every stored value twice (once for the
reindexed copy of each part, once for the stack) and goes through COO for the reindex. Here
the output's ``data``, ``indices`` and ``indptr`` are allocated once and each part is written
straight into its slice: ``data`` copied, ``indices`` sent through the part's column map
(old column → new column, ``-1``: dropped by an inner join), ``indptr`` shifted. Only an
inner join that drops columns costs an extra pass (to count the kept entries first).

The result equals ``scipy.sparse.vstack`` of the reindexed parts: the same values, ``data``
dtype (numpy's promotion of the parts') and index dtype (int32 unless the sizes need int64). Column indices stay in the
parts' order within a row, so a column map that is not increasing gives rows whose indices
are not sorted (as anndata's reindexing does); scipy handles both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["stack_sparse_rows"]

_INT32_MAX = np.iinfo(np.int32).max
_PARALLEL_BYTES = 16 * 2**20  # smaller outputs are copied on the calling thread
_MIN_STEP = 2**20  # entries per copy task at least


class _Part:
    """One input's CSR arrays (the stored range only) and what it contributes."""

    __slots__ = ("data", "indices", "indptr", "n_rows", "col_map", "keep", "nnz")

    def __init__(self, value: Any, n_rows: int, col_map: np.ndarray | None) -> None:
        self.n_rows = n_rows
        self.col_map = col_map
        self.keep: np.ndarray | None = None  # per stored entry: kept by the column map
        if value is None:
            self.data = self.indices = None
            self.indptr = None
            self.nnz = 0
            return
        csr = value if value.format == "csr" else sp.csr_matrix(value)
        lo, hi = int(csr.indptr[0]), int(csr.indptr[-1])
        self.data, self.indices = csr.data[lo:hi], csr.indices[lo:hi]
        self.indptr = csr.indptr
        self.nnz = hi - lo
        if col_map is not None and bool((col_map < 0).any()):
            self.keep = np.take(col_map >= 0, self.indices, mode="clip")
            self.nnz = int(np.count_nonzero(self.keep))




def _threads() -> int:
    from annio.settings import settings

    return settings.resolved_io_threads


def _run(tasks: list[Callable[[], None]], nbytes: int) -> None:
    """Run the copies, on ``settings.io_threads`` threads when they are large (numpy releases
    the GIL while it copies, so the copies and the page faults of the fresh output run on
    every core)."""
    threads = min(_threads(), len(tasks))
    if threads < 2 or nbytes < _PARALLEL_BYTES:
        for task in tasks:
            task()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


def _copy(p: _Part, lo: int, hi: int, data: np.ndarray, indices: np.ndarray) -> None:
    data[...] = p.data[lo:hi]
    if p.col_map is None:
        indices[...] = p.indices[lo:hi]
    else:
        np.take(p.col_map.astype(indices.dtype, copy=False), p.indices[lo:hi], out=indices, mode="clip")


def _copy_kept(p: _Part, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, at: int) -> None:
    """The entries of a part whose column map drops some columns."""
    data[...] = p.data[p.keep]
    np.take(p.col_map.astype(indices.dtype, copy=False), p.indices[p.keep], out=indices, mode="clip")
    # a row ends where it did, less the entries dropped before that end
    dropped = np.flatnonzero(~p.keep)
    ends = p.indptr[1:] - p.indptr[0]
    np.add(ends - np.searchsorted(dropped, ends), at, out=indptr, casting="unsafe")


def stack_sparse_rows(
    values: Sequence[Any | None],
    col_maps: Sequence[np.ndarray | None],
    lengths: Sequence[int],
    n_cols: int,
    sparray: bool,
) -> Any:
    """The rows of ``values`` one after the other, as one CSR matrix.

    Parameters
    ----------
    values
        scipy sparse matrices/arrays, or ``None`` for a part without the element (``lengths[i]``
        rows without stored entries).
    col_maps
        Per part, the output column of each of its columns (``-1``: dropped), or ``None``
        when its columns are the output's.
    lengths
        Rows of each part.
    n_cols
        Columns of the output.
    sparray
        Give a ``csr_array`` (else a ``csr_matrix``).
    """
    parts = [_Part(v, int(n), m) for v, n, m in zip(values, lengths, col_maps, strict=True)]
    nnz = sum(p.nnz for p in parts)
    n_rows = sum(p.n_rows for p in parts)
    # int32 unless the sizes need more: what scipy's constructor settles on after checking
    # the contents of wider inputs (int32 arrays pass its check without a scan)
    idx_dtype = np.dtype(np.int64 if max(nnz, n_cols, n_rows) > _INT32_MAX else np.int32)
    present = [p.data.dtype for p in parts if p.data is not None]
    dtype = np.result_type(*present) if present else np.dtype(bool)
    data = np.empty(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    indptr = np.empty(n_rows + 1, dtype=idx_dtype)
    indptr[0] = 0
    tasks: list[Callable[[], None]] = []
    row, at = 0, 0
    step = max(_MIN_STEP, -(-nnz // (4 * _threads())))
    for p in parts:
        rows = slice(row + 1, row + p.n_rows + 1)
        if p.data is None:
            indptr[rows] = at
        elif p.keep is None:
            for lo in range(0, p.nnz, step):
                hi = min(lo + step, p.nnz)
                tasks.append(partial(_copy, p, lo, hi, data[at + lo : at + hi], indices[at + lo : at + hi]))
            np.subtract(p.indptr[1:], int(p.indptr[0]) - at, out=indptr[rows], casting="unsafe")
        else:
            tasks.append(partial(_copy_kept, p, data[at : at + p.nnz], indices[at : at + p.nnz], indptr[rows], at))
        row += p.n_rows
        at += p.nnz
    _run(tasks, nnz * (dtype.itemsize + idx_dtype.itemsize))
    cls = sp.csr_array if sparray else sp.csr_matrix
    out = cls((data, indices, indptr), shape=(n_rows, n_cols), copy=False)
    return out
