"""Partial reads of a stored CSR/CSC matrix: rows ``[a, b)`` or a sorted set of rows
(columns for CSC), reading only the needed ranges of ``data`` and ``indices``.

Shared by backed sparse datasets (:mod:`annio.io._backed.sparse_datasets`) and the lazy sparse
blocks (:mod:`annio._lazy.arrays`). Everything here works on "major" positions: rows of a
CSR matrix, columns of a CSC matrix.

The entry points:

* :func:`read_major_slice` — major positions ``start:stop``;
* :func:`read_major_rows` — a sorted array of unique major positions;
* :func:`read_ranges` — the concatenation of ``array[starts[i]:stops[i]]`` for many
  ranges of one stored 1-D array; how the ranges are read is the storage adapter's
  business (:meth:`annio.io._storage.adapter.StorageArray.read_ranges`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from annio.errors import FormatError
from annio.io._storage.adapter import is_storage_object, wrap
from annio.io._storage.ranges import runs

__all__ = ["check_index_range", "SparseParts", "read_ranges", "runs", "read_major_slice", "read_major_rows", "check_indptr_bounds", "value_ranges", "major_read_plan", "zarr_read_span"]


class Readable(Protocol):  # pragma: no cover - typing only
    """A stored 1-D array: a :class:`~annio.io._storage.adapter.StorageArray` or
    :class:`annio._lazy.arrays.ArraySource`."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def read(self, selection: Any = ...) -> np.ndarray: ...

    def read_ranges(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray: ...


class SparseParts(Protocol):  # pragma: no cover - typing only
    """What the readers need of a stored compressed matrix (``annio._lazy.arrays.SparseSource``
    and the backed datasets both have it)."""

    path: str
    fmt: str
    n_major: int
    n_minor: int
    nnz: int
    data: Readable
    indices: Readable
    indptr: Readable


def read_ranges(arr: Any, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``arr[starts[i]:stops[i]]`` for sorted, non-overlapping ranges
    (empty ranges allowed). ``arr`` has ``read_ranges`` (a storage array or lazy source) or
    is a raw h5py/zarr array."""
    node = wrap(arr) if is_storage_object(arr) else arr
    return node.read_ranges(starts, stops)


def zarr_read_span(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges a zarr array's :meth:`~annio.io._storage.adapter.StorageArray.read_ranges`
    reads for ``starts``/``stops``: one covering range when there is one range or the wanted
    values fill enough of their span, else the ranges themselves."""
    from annio.io._storage.adapter import _COVER_FRACTION

    starts = np.atleast_1d(np.asarray(starts, dtype=np.int64))
    stops = np.atleast_1d(np.asarray(stops, dtype=np.int64))
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    if starts.size <= 1:
        return starts, stops
    lo, hi = int(starts[0]), int(stops[-1])
    if int((stops - starts).sum()) >= _COVER_FRACTION * (hi - lo):
        return np.array([lo]), np.array([hi])
    return starts, stops


# ============================================================================= major axis
def check_indptr_bounds(path: str, lo: np.ndarray, hi: np.ndarray, nnz: int) -> None:
    """``indptr`` values read for some major positions must satisfy ``0 <= lo <= hi <= nnz``."""
    if lo.size and (lo.min() < 0 or hi.max() > nnz or (hi < lo).any()):
        raise FormatError(f"{path}/indptr", f"values are not monotone within [0, {nnz}] for the selected rows")


def _finish(parts: SparseParts, data: np.ndarray, indices: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``indices`` and build the local ``indptr``; one index dtype for scipy."""
    path = parts.path
    if indices.size:
        if indices.dtype.kind not in "iu":
            raise FormatError(f"{path}/indices", f"expected integers, found dtype {indices.dtype}")
        imin, imax = indices.min(), indices.max()
        if imin < 0 or imax >= parts.n_minor:
            raise FormatError(f"{path}/indices", f"values must lie in [0, {parts.n_minor}), found {imin}..{imax}")
    if data.shape != indices.shape:
        raise FormatError(path, f"data and indices differ in length for the selected rows ({data.shape} vs {indices.shape})")
    big = max(parts.n_minor, int(indices.size)) > np.iinfo(np.int32).max
    idx_dtype = np.dtype(np.int64 if big else np.int32)
    indptr = np.zeros(counts.size + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    return data, indices.astype(idx_dtype, copy=False), indptr


def _major_bounds_slice(parts: SparseParts, start: int, stop: int, indptr: np.ndarray | None) -> np.ndarray:
    if indptr is not None:
        return indptr[start : stop + 1]
    bounds = np.asarray(parts.indptr.read(slice(start, stop + 1)))
    if bounds.shape != (stop - start + 1,) or bounds.dtype.kind not in "iu":
        raise FormatError(f"{parts.path}/indptr", f"expected {stop - start + 1} integers for rows {start}:{stop}, found {bounds.shape} {bounds.dtype}")
    return bounds


def read_major_slice(parts: SparseParts, start: int, stop: int, *, indptr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, indices, indptr)`` of major positions ``start:stop`` (``0 <= start <= stop
    <= n_major``). ``indptr`` is the whole validated stored ``indptr`` when cached; else
    only ``indptr[start:stop+1]`` is read."""
    if stop <= start:
        return _finish(parts, np.zeros(0, dtype=parts.data.dtype), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
    bounds = _major_bounds_slice(parts, start, stop, indptr)
    counts = np.diff(bounds)
    check_indptr_bounds(parts.path, bounds[:-1], bounds[1:], parts.nnz)
    lo, hi = int(bounds[0]), int(bounds[-1])
    starts, stops = np.array([lo]), np.array([hi])
    data = read_ranges(parts.data, starts, stops)
    indices = read_ranges(parts.indices, starts, stops)
    return _finish(parts, data, indices, counts)


def _major_bounds_rows(parts: SparseParts, rows: np.ndarray, indptr: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if indptr is not None:
        return indptr[rows], indptr[rows + 1]
    starts, stops = runs(rows)
    values = read_ranges(parts.indptr, starts, stops + 1)  # indptr[s:e+1] per run
    if values.dtype.kind not in "iu":
        raise FormatError(f"{parts.path}/indptr", f"expected integers, found dtype {values.dtype}")
    run_len = stops - starts
    first = np.cumsum(run_len + 1) - (run_len + 1)  # offset of each run's values
    run_of_row = np.repeat(np.arange(starts.size), run_len)
    pos = first[run_of_row] + (rows - starts[run_of_row])
    return values[pos], values[pos + 1]


def value_ranges(parts: SparseParts, rows: np.ndarray, *, indptr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, hi, r_lo, r_hi)`` for the sorted, unique, non-contiguous major positions
    ``rows``: each row's value range ``lo[i]:hi[i]`` and the ranges of ``data``/``indices``
    to read, rows adjacent on disk merged (reads ``indptr`` unless given)."""
    lo, hi = _major_bounds_rows(parts, rows, indptr)
    check_indptr_bounds(parts.path, lo, hi, parts.nnz)
    touching = np.concatenate(([False], lo[1:] == hi[:-1]))
    if touching.any():
        first = ~touching
        r_lo = lo[first]
        r_hi = hi[np.concatenate((np.flatnonzero(first)[1:] - 1, [hi.size - 1]))]
    else:
        r_lo, r_hi = lo, hi
    return lo, hi, r_lo, r_hi


def major_read_plan(parts: SparseParts, rows: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
    """What :func:`read_major_rows` (``rows``: sorted unique positions) or
    :func:`read_major_slice` (``rows``: a ``(start, stop)`` pair) reads of ``indptr`` —
    ``(starts, stops)`` — and a function giving, once ``indptr`` is readable, the ranges it
    then reads of ``data`` and ``indices``. Used to fetch all of them ahead, concurrently."""
    if isinstance(rows, tuple):
        start, stop = rows
    else:
        rows = np.asarray(rows, dtype=np.int64)
        start, stop = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
    if stop <= start:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64)), lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if isinstance(rows, tuple) or rows.size == stop - start:
        def slice_values() -> tuple[np.ndarray, np.ndarray]:
            bounds = _major_bounds_slice(parts, start, stop, None)
            return np.array([int(bounds[0])]), np.array([int(bounds[-1])])

        return (np.array([start]), np.array([stop + 1])), slice_values
    starts, stops = runs(rows)

    def row_values() -> tuple[np.ndarray, np.ndarray]:
        _, _, r_lo, r_hi = value_ranges(parts, rows)
        return r_lo, r_hi

    return (starts, stops + 1), row_values


def read_major_rows(parts: SparseParts, rows: np.ndarray, *, indptr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, indices, indptr)`` of the sorted, unique, in-range major positions ``rows``.

    Adjacent rows are coalesced into one range; see :func:`read_ranges` for how the ranges
    are read."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return read_major_slice(parts, 0, 0)
    if rows[-1] - rows[0] + 1 == rows.size:
        return read_major_slice(parts, int(rows[0]), int(rows[-1]) + 1, indptr=indptr)
    lo, hi, r_lo, r_hi = value_ranges(parts, rows, indptr=indptr)
    data = read_ranges(parts.data, r_lo, r_hi)
    indices = read_ranges(parts.indices, r_lo, r_hi)
    return _finish(parts, data, indices, hi - lo)


def check_index_range(path: str, block: np.ndarray, n_minor: int) -> None:
    """Raise :class:`~annio.errors.FormatError` unless ``block`` holds integers in
    ``[0, n_minor)``. One pass over the values: as unsigned integers, negative values are
    larger than any valid index."""
    if not block.size:
        return
    if block.dtype.kind not in "iu":
        raise FormatError(f"{path}/indices", f"expected integers, found dtype {block.dtype}")
    if int(block.view(f"u{block.dtype.itemsize}").max()) < n_minor:
        return
    raise FormatError(f"{path}/indices", f"values must lie in [0, {n_minor}), found {block.min()}..{block.max()}")
