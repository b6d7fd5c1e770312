"""Row selections of lazy arrays, pushed down to storage reads.

Plain dask fancy indexing reads every dask block that holds a selected row and then drops
the rest: 1,000 random cells of a 100k-cell sparse X touch nearly every block, i.e. the
whole matrix. Here a row selection of an array made by :mod:`annio._lazy.arrays` becomes a
new dask array whose tasks read only the selected rows (sparse: their ``indptr`` entries and
their ranges of ``data``/``indices``; dense: those rows). Selections compose, so views of
views stay cheap. Registered with the core's subsetting hook at import.
"""

from __future__ import annotations

import uuid
import weakref
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from annio._core.index import register_array_subsetter
from annio.io._encodings.sparse import result_class
from annio.io._storage.sparse_read import read_major_rows

__all__ = ["remember", "take_rows", "origin_of", "read_direct"]


class _Origin:
    """Where a lazy array's rows come from: a source and, after a selection, which rows;
    ``bounds`` are the offsets of its dask blocks along the ``major`` axis."""

    __slots__ = ("kind", "source", "rows", "major", "bounds", "__weakref__")

    def __init__(self, kind: str, source: Any, rows: np.ndarray | None, major: int, bounds: np.ndarray) -> None:
        self.kind, self.source, self.rows, self.major, self.bounds = kind, source, rows, major, bounds

    def block(self, i: int) -> np.ndarray | tuple[int, int]:
        """What block ``i`` reads: a ``(start, stop)`` pair of rows, or the rows it takes."""
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        return (lo, hi) if self.rows is None else self.rows[lo:hi]


def origin_of(name: str) -> _Origin | None:
    """The origin recorded for the dask array (or graph layer) ``name``."""
    return _ORIGINS.get(name)


# dask array name -> origin; an entry lives as long as the tasks of that array reference it
_ORIGINS: weakref.WeakValueDictionary[str, _Origin] = weakref.WeakValueDictionary()


def _register(array: Any, origin: _Origin) -> Any:
    _ORIGINS[array.name] = origin
    array._annio_origin = origin  # keeps the origin alive with the array
    return array


def _bounds(chunks: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(chunks))).astype(np.int64)


def remember(array: Any, kind: str, source: Any) -> Any:
    """Record that ``array`` (a dask array) reads all of ``source``. The origin lives as
    long as ``source`` (which the array's tasks hold), so arrays derived from ``array``
    still find it after ``array`` itself is gone."""
    major = 1 if kind == "sparse" and source.fmt == "csc" else 0
    bounds = _bounds(array.chunks[major]) if array.ndim else np.zeros(1, dtype=np.int64)
    origin = _Origin(kind, source, None, major, bounds)
    source._annio_origin = origin
    return _register(array, origin)


def _read_block(origin: _Origin, block: np.ndarray) -> Any:
    """The task of a row selection: rows ``block`` of the origin's source (the task holds
    the origin, so it stays findable while any array built on these tasks lives)."""
    read = _read_sparse_rows if origin.kind == "sparse" else _read_dense_rows
    return read(origin.source, block)


def _read_sparse_rows(source: Any, positions: np.ndarray) -> Any:
    cls = result_class(source.fmt)
    uniq, inverse = np.unique(positions, return_inverse=True)
    triple = read_major_rows(source, uniq)
    shape = (len(uniq), source.n_minor) if source.fmt == "csr" else (source.n_minor, len(uniq))
    block = cls(triple, shape=shape)
    if len(uniq) == len(positions) and np.array_equal(uniq, positions):
        return block
    return block[inverse] if source.fmt == "csr" else block[:, inverse]


def _read_dense_rows(source: Any, positions: np.ndarray) -> np.ndarray:
    return source.take(positions)


def _positions(idx: Any, n: int) -> np.ndarray | None:
    if isinstance(idx, slice):
        start, stop, step = idx.indices(n)
        if (start, stop, step) == (0, n, 1):
            return None  # everything: the array as it is
        return np.arange(start, stop, step, dtype=np.int64)
    arr = np.asarray(idx)
    if arr.dtype == bool:
        return np.flatnonzero(arr) if arr.shape == (n,) else None
    if arr.dtype.kind in "iu" and arr.ndim == 1:
        return np.where(arr < 0, arr + n, arr).astype(np.int64)
    return None


def take_rows(x: Any, idx: Any, axis: int) -> Any:
    """The subset of lazy array ``x`` along its major axis, reading only those rows;
    ``NotImplemented`` for anything this module did not create or other axes."""
    origin = _ORIGINS.get(getattr(x, "name", None)) if type(x).__module__.startswith("dask") else None
    if origin is None:
        return NotImplemented
    major = 1 if origin.kind == "sparse" and origin.source.fmt == "csc" else 0
    if axis != major:
        return NotImplemented
    positions = _positions(idx, x.shape[axis])
    if positions is None:
        return NotImplemented
    rows = positions if origin.rows is None else origin.rows[positions]
    step = max(1, x.chunks[axis][0] if x.chunks[axis] else 1)
    blocks = [rows[i : i + step] for i in range(0, len(rows), step)] or [rows]
    name = f"annio-take-{uuid.uuid4().hex}"
    sizes = tuple(len(b) for b in blocks)
    origin = _Origin(origin.kind, origin.source, rows, major, _bounds(sizes))
    dsk = {}
    for i, block in enumerate(blocks):
        key = (name, *([0] * axis), i, *([0] * (x.ndim - axis - 1)))
        dsk[key] = (_read_block, origin, block)
    chunks = tuple(sizes if d == axis else (x.shape[d],) for d in range(x.ndim))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    out = da.Array(graph, name, chunks=chunks, meta=x._meta, dtype=x.dtype)
    return _register(out, origin)


def read_direct(x: Any) -> np.ndarray | None:
    """The values of a 1-D dense lazy array this module made (all of a stored array, or
    rows of it), read from storage in one call instead of through dask's scheduler (whose
    graph handling costs more than the read for the small columns of a frame); None for any
    other array."""
    origin = _ORIGINS.get(getattr(x, "name", None)) if type(x).__module__.startswith("dask") else None
    if origin is None or origin.kind != "dense" or x.ndim != 1:
        return None
    source = origin.source
    values = source.read(slice(0, x.shape[0])) if origin.rows is None else source.take(origin.rows)
    return np.asarray(values, dtype=x.dtype) if values.dtype != x.dtype else values


register_array_subsetter(take_rows)
