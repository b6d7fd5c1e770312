"""A lazy column made of the same column of several lazy frames (or ``None`` for frames
lacking it): what concatenating :class:`~annio._lazy.frame.Dataset2D` frames gives.

Nothing is read when it is built; a selection reads only the parts it touches, and the
pieces are combined by the ``combine`` function handed in (the one eager concatenation
uses), so a lazy concatenation read into memory equals the eager one, dtypes included.
The dtype is known without reading anything, except for categoricals, whose unified
categories are read on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.core import indexing
from xarray.core.extension_array import PandasExtensionArray

from annio._lazy.columns import LazyCategoricalDtype, LazyColumn, LazyMaskedArray, unwrap

__all__ = ["ConcatenatedColumn", "PartsBatch", "read_variable"]


def _frame_backend(data: Any) -> Any:
    from annio._lazy.frame import backend_array

    return backend_array(data)


def read_variable(variable: xr.Variable, positions: Any) -> Any:
    """Values of ``variable`` at ``positions`` (a slice or integer array) as pandas/numpy
    arrays (nullable strings as the pandas string dtype, categoricals as Categorical)."""
    from annio._lazy.frame import is_dask

    full = isinstance(positions, slice) and positions.indices(variable.shape[0]) == (0, variable.shape[0], 1)
    part = variable if full else variable.isel({variable.dims[0]: positions})
    data = part._data
    if is_dask(data):
        origin = getattr(data, "_annio_origin", None)  # a stored array read whole: no dask needed
        if full and origin is not None and origin.kind == "dense" and origin.rows is None and tuple(origin.source.shape) == tuple(variable.shape):
            return np.asarray(origin.source.read())
        return data  # computed by the caller, all parts together
    backend = _frame_backend(variable._data)
    values = unwrap(data.get_duck_array()) if hasattr(data, "get_duck_array") else unwrap(data)
    if isinstance(backend, LazyMaskedArray) and backend.kind == "nullable-string-array":
        raw = np.asarray(values).astype(object)
        raw[pd.isna(raw)] = None
        return pd.array(raw, dtype=backend.pandas_dtype)
    if isinstance(backend, ConcatenatedColumn) and backend.kind == "nullable-string-array":
        return pd.array(np.asarray(values, dtype=object), dtype=backend.pandas_dtype)
    return values


class _UnionCategories:
    """Stands in for a categorical array for :class:`LazyCategoricalDtype`: the unified
    categories, computed (reading each part's categories) on first use."""

    def __init__(self, column: ConcatenatedColumn) -> None:
        self._column = column
        self.ordered = False
        self._categories: pd.Index | None = None
        self._lock = threading.Lock()

    @property
    def categories(self) -> pd.Index:
        if self._categories is None:
            with self._lock:
                if self._categories is None:
                    self._categories = self._column.resolved_dtype().categories
        return self._categories

    @property
    def n_categories(self) -> int:
        return len(self.categories)


class ConcatenatedColumn(LazyColumn):
    """The rows of ``parts`` one after the other; ``parts[i]`` is an xarray ``Variable``
    or ``None`` (then ``lengths[i]`` missing rows)."""

    def __init__(
        self,
        parts: Sequence[xr.Variable | None],
        lengths: Sequence[int],
        part_dtypes: Sequence[Any],
        combine: Callable[[Sequence[Any], Sequence[int]], Any],
        path: str = "",
    ) -> None:
        self.parts = list(parts)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.shape = (int(self.offsets[-1]),)
        self.combine = combine
        self.path = path
        self.part_dtypes = list(part_dtypes)
        self.kind = ""
        self.batch: Any = None  # reads this column with its siblings (see Dataset2D._read_batches)
        self._resolved: Any = None
        cats = [d for d in self.part_dtypes if d is not None]
        if cats and all(isinstance(d, pd.CategoricalDtype) for d in cats) and not any(d.ordered for d in cats):
            self._dtype: Any = LazyCategoricalDtype(_UnionCategories(self))  # type: ignore[arg-type]
        elif cats and all(isinstance(d, pd.CategoricalDtype) for d in cats):
            self._dtype = None  # ordered: categorical only if all categories agree (read lazily)
        else:
            self._dtype = self._dtype_from_samples()

    def _sample(self, dtype: Any) -> Any:
        if isinstance(dtype, pd.CategoricalDtype):
            return pd.Categorical.from_codes([-1], dtype=pd.CategoricalDtype(dtype.categories, dtype.ordered))
        if isinstance(dtype, np.dtypes.StringDType):
            return pd.array([pd.NA], dtype="string")
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            return pd.array([pd.NA], dtype=dtype)
        if dtype == np.dtype(object):
            return np.array([""], dtype=object)  # a stored object column holds strings
        return np.zeros(1, dtype=dtype)

    def _dtype_from_samples(self) -> Any:
        present = {str(d): d for d in self.part_dtypes if d is not None}
        pieces: list[Any] = [self._sample(d) for d in present.values()]
        if any(d is None for d in self.part_dtypes):
            pieces.append(None)
        if len(present) == 1 and None not in pieces:
            dtype = next(iter(present.values()))
        else:
            dtype = pd.api.types.pandas_dtype(getattr(self.combine(pieces, [1] * len(pieces)), "dtype", object))
        if isinstance(dtype, pd.StringDtype) or isinstance(dtype, np.dtypes.StringDType):
            self.kind = "nullable-string-array"
            self.pandas_dtype = dtype if isinstance(dtype, pd.StringDtype) else pd.StringDtype()
            return np.dtypes.StringDType(na_object=pd.NA)
        return dtype

    def resolved_dtype(self) -> Any:
        """The dtype with categories known (reads the parts' categories)."""
        if self._resolved is None:
            pieces = [self._sample(pd.CategoricalDtype(d.categories, d.ordered)) if d is not None else None for d in self.part_dtypes]
            self._resolved = getattr(self.combine(pieces, [1] * len(pieces)), "dtype", np.dtype(object))
        return self._resolved

    @property
    def categories(self) -> pd.Index:
        """The unified categories (categorical columns only)."""
        return self.resolved_dtype().categories

    @property
    def ordered(self) -> bool:
        return bool(getattr(self.dtype, "ordered", False))

    @property
    def dtype(self) -> Any:
        if self._dtype is None:
            self._dtype = self.resolved_dtype()
        return self._dtype

    @property
    def keeps_object(self) -> bool:
        """``object`` is the concatenated dtype itself (pandas' concatenation gave it), not a
        stand-in for strings that a frame may re-infer as ``str``."""
        return self.kind != "nullable-string-array" and self.dtype == np.dtype(object)

    def _getitem(self, key: tuple) -> Any:
        (key,) = key if isinstance(key, tuple) else (key,)
        scalar = isinstance(key, int | np.integer)
        positions = np.arange(self.shape[0])[key]
        positions = np.atleast_1d(positions)
        part_of = np.searchsorted(self.offsets, positions, side="right") - 1
        pieces: list[Any] = []
        lengths: list[int] = []
        order = np.argsort(part_of, kind="stable")
        sorted_parts = part_of[order]
        for i in np.unique(sorted_parts):
            local = positions[order][sorted_parts == i] - self.offsets[i]
            lengths.append(len(local))
            part = self.parts[i]
            if part is None:
                pieces.append(None)
                continue
            sel: Any = local
            if len(local) and (len(local) == 1 or (np.diff(local) == 1).all()):
                sel = slice(int(local[0]), int(local[-1]) + 1)
            pieces.append(read_variable(part, sel))
        dask_at = [j for j, p in enumerate(pieces) if p is not None and type(p).__module__.startswith("dask")]
        if dask_at:
            import dask
            from dask.local import get_sync

            # the scheduler as a function: a name makes dask import `distributed` (~1 s) to look for a client
            for j, value in zip(dask_at, dask.compute(*[pieces[j] for j in dask_at], scheduler=get_sync), strict=True):
                pieces[j] = np.asarray(value)
        if not pieces:
            empty = [self._sample(d)[:0] if d is not None else None for d in self.part_dtypes]
            pieces, lengths = empty, [0] * len(empty)
        out = self.combine(pieces, lengths)
        if not (np.diff(order) == 1).all() if len(order) > 1 else False:
            out = out[np.argsort(order, kind="stable")]
        out = self._coerce(out)
        if self.kind == "nullable-string-array":
            out = np.asarray(out, dtype=object)
            out = np.where(pd.isna(out), pd.NA, out).astype(self.dtype)
        if scalar:
            return unwrap(out)[0]
        if isinstance(out, pd.api.extensions.ExtensionArray) and not isinstance(out, pd.arrays.NumpyExtensionArray):
            return PandasExtensionArray(out)
        return np.asarray(out)


    def _coerce(self, out: Any) -> Any:
        """``out`` in the whole column's dtype (what some pieces alone give may differ)."""
        dtype = self.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return pd.Categorical(out).set_categories(self.categories)
        if isinstance(dtype, np.dtype) and self.kind != "nullable-string-array" and getattr(out, "dtype", None) != dtype:
            return np.asarray(out).astype(dtype)
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and getattr(out, "dtype", None) != dtype:
            return pd.array(out, dtype=dtype)
        return out

    def finish(self, out: Any) -> Any:
        """The whole column, combined from its pieces, as a frame column (pandas extension
        array or numpy array), as :meth:`Dataset2D.to_memory` gives it."""
        out = self._coerce(out)
        if self.kind == "nullable-string-array":
            raw = np.asarray(out, dtype=object)
            raw[pd.isna(raw)] = None
            return pd.array(raw, dtype=self.pandas_dtype)
        if isinstance(out, pd.arrays.NumpyExtensionArray):
            return out.to_numpy()
        return out


def _read_whole(variable: xr.Variable) -> Any:
    """All values of a part's stored column: read straight from its stored array(s) (no
    xarray indexing), or a dask array for the caller to compute with the others."""
    from annio._lazy.frame import backend_array, is_dask

    data = variable._data
    if is_dask(data):
        return read_variable(variable, slice(None))
    backend = backend_array(data)
    if isinstance(backend, LazyColumn) and not isinstance(backend, ConcatenatedColumn):
        values = unwrap(backend._getitem((slice(None),)))
        if isinstance(backend, LazyMaskedArray) and backend.kind == "nullable-string-array":
            raw = np.asarray(values).astype(object)
            raw[pd.isna(raw)] = None
            return pd.array(raw, dtype=backend.pandas_dtype)
        return values
    return read_variable(variable, slice(None))


class PartsBatch:
    """Reads several concatenated columns of the parts' frames together: one prefetch plan
    for the stored objects of every part (remote stores: all parts' bytes fetched in the
    same few concurrent rounds), each stored column read once, whole, straight from its
    stored arrays, the dask-backed ones in one computation; then each column combined from
    its pieces like a single column is."""

    def __init__(self, frames: Sequence[Any], lengths: Sequence[int], columns: dict[str, ConcatenatedColumn], combine: Callable[[Sequence[Any], Sequence[int]], Any]) -> None:
        self.frames, self.lengths = list(frames), [int(n) for n in lengths]
        self.columns, self.combine = columns, combine

    def read(self, names: Sequence[str]) -> dict[str, Any]:
        """The values of columns ``names`` as :meth:`ConcatenatedColumn.finish` gives them."""
        import dask
        from dask.local import get_sync

        from annio._lazy.plans import prefetching_selection

        pieces: dict[str, list[Any]] = {n: [None] * len(self.frames) for n in names}
        wanted = set(names)
        selected = []
        for i, frame in enumerate(self.frames):
            have = [n for n in frame.columns if n in wanted]
            if have:
                selected.append((i, frame, have, frame if len(have) == len(frame.columns) else frame[have]))
        with prefetching_selection([sub for *_, sub in selected]):
            lazy: list[tuple[str, int, Any]] = []
            for i, frame, have, _ in selected:
                variables = frame.ds.variables
                for n in have:
                    value = _read_whole(variables[n])
                    if type(value).__module__.startswith("dask"):
                        lazy.append((n, i, value))
                    else:
                        pieces[n][i] = value
            if lazy:
                computed = dask.compute(*[v for *_, v in lazy], scheduler=get_sync)
                for (n, i, _), value in zip(lazy, computed, strict=True):
                    pieces[n][i] = np.asarray(value)
            # the unified categories (from the parts' categories, read above) before the
            # prefetched bytes are dropped
            for n in names:
                _ = self.columns[n].dtype
        return {n: self.columns[n].finish(self.combine(pieces[n], self.lengths)) for n in names}


def lazy_variable(dim: str, column: ConcatenatedColumn) -> xr.Variable:
    return xr.Variable(dim, indexing.LazilyIndexedArray(column))
