"""The lazy data frame: :class:`Dataset2D`, an xarray ``Dataset`` with one dimension, shaped
like a ``pandas.DataFrame`` (anndata's ``Dataset2D`` API).

* the index is read when the frame is opened; every column stays on disk;
* ``columns`` keep the on-disk order (``column-order``);
* numeric, boolean and string columns are dask-backed xarray variables;
* categorical columns read their codes on demand and their categories once, on first use;
  the dtype (:class:`LazyCategoricalDtype`) knows the number of categories from the stored
  array's shape without reading them;
* nullable integer/boolean/string columns read values and mask on demand;
* :meth:`Dataset2D.to_memory` gives exactly the ``pandas.DataFrame`` an eager ``read_elem``
  gives (categoricals stay categorical, nullable dtypes stay nullable), subset to the
  selected rows, with unused categories removed when the frame was subset and
  ``settings.remove_unused_categories`` is on (as eager views do);
* writing (``write_elem``/``write_h5ad``/``write_zarr``) streams each column in row blocks
  bounded by ``settings.write_block_bytes`` (:func:`write_frame`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.core import indexing
from xarray.core.extension_array import PandasExtensionArray

from annio._lazy.arrays import dense_dask
from annio._lazy.columns import DUMMY_INDEX, RESERVED, LazyColumn, LazyMaskedArray, unwrap
from annio.errors import FormatError
from annio.io._encodings.registry import Reader
from annio.io._storage.adapter import StorageArray, StorageGroup
from annio.settings import settings

__all__ = ["Dataset2D", "read_frame_lazy", "backend_array", "is_dask"]


class _ILoc:
    def __init__(self, frame: Dataset2D) -> None:
        self._frame = frame

    def __getitem__(self, key: Any) -> Dataset2D:
        frame = self._frame
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"iloc takes one or two indexers, got {len(key)}")
            rows, cols = key
            columns = frame.columns[cols]
            frame = frame[[columns] if isinstance(columns, str) else list(columns)]
            return frame.iloc[rows]
        return frame._isel(key)


class Dataset2D:
    """A lazy, DataFrame-shaped view of an xarray ``Dataset`` with a single dimension.

    Parameters
    ----------
    ds
        The dataset: one dimension (the rows) with its index coordinate, one variable per
        column.
    index
        The row labels as a ``pandas.Index`` (default: the dimension's coordinate).
    columns
        Column names in order (default: the data variables in order).
    """

    _annio_lazy_frame = True

    def __init__(
        self,
        ds: xr.Dataset,
        *,
        index: pd.Index | None = None,
        columns: list[str] | None = None,
        is_subset: bool = False,
        true_index_key: str | None = None,
    ) -> None:
        if len(ds.dims) != 1:
            raise ValueError(f"Dataset2D needs a Dataset with exactly one dimension, found {tuple(ds.dims)}")
        self._ds = ds
        self._dim = next(iter(ds.dims))
        if true_index_key is None:
            true_index_key = ds.attrs.get("indexing_key")
        self._true_index_key = true_index_key
        if index is None:
            index = ds.indexes[self._dim] if self._dim in ds.indexes else pd.RangeIndex(ds.sizes[self._dim]).astype(str)
            if index.name in (RESERVED, DUMMY_INDEX):
                index = index.rename(None)
        self._index = index
        if columns is None:
            columns = [str(k) for k in ds.data_vars if k != true_index_key]
        self._columns = list(columns)
        self._is_subset = is_subset
        self._source: StorageGroup | None = None  # the stored frame (remote prefetching)
        self._rows: np.ndarray | None = None  # which stored rows this frame shows (None: all)

    # -- shape and labels --------------------------------------------------------------
    @property
    def ds(self) -> xr.Dataset:
        """The underlying xarray ``Dataset``."""
        return self._ds

    @property
    def index_dim(self) -> str:
        """Name of the (only) dimension."""
        return self._dim

    @property
    def index(self) -> pd.Index:
        """Row labels (a string ``RangeIndex``-like index when opened without the index)."""
        return self._index

    @property
    def true_index_dim(self) -> str:
        """The variable holding the real row labels (differs from :attr:`index_dim` when
        the frame was opened with ``load_annotation_index=False``)."""
        return self._true_index_key or self._dim

    @property
    def true_index(self) -> pd.Index:
        """The real row labels (read from disk when opened without the index)."""
        if self._true_index_key is None:
            return self._index
        values = self._ds[self._true_index_key].data
        values = values.compute() if hasattr(values, "compute") else np.asarray(values)
        return pd.Index(np.asarray(values, dtype=object), name=None if self._true_index_key == RESERVED else self._true_index_key)

    @property
    def columns(self) -> pd.Index:
        """Column names, in the stored order."""
        return pd.Index(self._columns, dtype=object)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self._index), len(self._columns))

    @property
    def dtypes(self) -> pd.Series:
        """Column dtypes (nothing is read; categoricals are :class:`LazyCategoricalDtype`)."""
        return pd.Series([self._column_dtype(c) for c in self._columns], index=self.columns, dtype=object)

    def _column_dtype(self, col: str) -> Any:
        data = self._ds[col].variable._data
        backend = backend_array(data)
        if isinstance(backend, LazyMaskedArray) or getattr(backend, "kind", None) == "nullable-string-array":
            return backend.pandas_dtype
        return self._ds[col].dtype

    @property
    def is_subset(self) -> bool:
        """Whether rows were selected (then unused categories are dropped on ``to_memory``)."""
        return self._is_subset

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def keys(self) -> pd.Index:
        return self.columns

    def __contains__(self, key: object) -> bool:
        return key in self._columns

    def __repr__(self) -> str:
        n, m = self.shape
        cols = ", ".join(repr(c) for c in self._columns[:20]) + (", ..." if m > 20 else "")
        return f"Dataset2D (lazy) with {n} rows × {m} columns\n    columns: {cols}"

    # -- selection ---------------------------------------------------------------------
    @property
    def iloc(self) -> _ILoc:
        """Positional selection of rows (and optionally columns): ``frame.iloc[rows, cols]``."""
        return _ILoc(self)

    def _isel(self, key: Any) -> Dataset2D:
        n = len(self._index)
        if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
            k = int(key) % n if -n <= int(key) < n else None
            if k is None:
                raise IndexError(f"row {key} is out of bounds for {n} rows")
            key = slice(k, k + 1)
        elif not isinstance(key, slice):
            arr = np.asarray(key)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise IndexError(f"boolean indexer of shape {arr.shape} does not match {n} rows")
                key = np.flatnonzero(arr)
            elif arr.dtype.kind in "iu":
                key = np.where(arr < 0, arr + n, arr).astype(np.intp) if arr.size and arr.min() < 0 else arr.astype(np.intp)
                if key.size and key[-1] - key[0] == key.size - 1 and (key.size == 1 or (np.diff(key) == 1).all()):
                    key = slice(int(key[0]), int(key[-1]) + 1)  # a run of rows: cheaper to select
            else:
                raise IndexError(f"cannot select rows with {type(key).__name__} of dtype {arr.dtype}")
        full = isinstance(key, slice) and key.indices(n) == (0, n, 1)
        ds = _isel(self._ds, self._dim, key)
        out = Dataset2D(
            ds,
            index=self._index[key],
            columns=self._columns,
            is_subset=self._is_subset or not full,
            true_index_key=self._true_index_key,
        )._with_source(self._source)
        if self._source is not None and not (full and self._rows is None):
            positions = np.arange(n)[key]
            out._rows = positions if self._rows is None else self._rows[positions]
        return out

    def __getitem__(self, key: Any) -> Any:
        """A column name gives an xarray ``DataArray``; a list of names a ``Dataset2D``."""
        if isinstance(key, str):
            if key not in self._columns:
                raise KeyError(key)
            return self._ds[key]
        keys = [str(k) for k in (key.tolist() if hasattr(key, "tolist") else list(key))]
        missing = [k for k in keys if k not in self._columns]
        if missing:
            raise KeyError(f"columns not found: {missing}")
        names = keys + ([self._true_index_key] if self._true_index_key else [])
        out = Dataset2D(
            self._ds[names], index=self._index, columns=keys, is_subset=self._is_subset, true_index_key=self._true_index_key
        )._with_source(self._source)
        out._rows = self._rows
        return out

    def __setitem__(self, key: str, value: Any) -> None:
        """Add or replace a column (an array of the frame's length, or a DataArray)."""
        if not isinstance(key, str):
            raise TypeError(f"column names must be str, got {key!r}")
        if isinstance(value, xr.DataArray):
            if value.dims != (self._dim,):
                raise ValueError(f"column {key!r} must have the single dimension {self._dim!r}, has {value.dims}")
            variable = value.variable
        else:
            if isinstance(value, pd.Series):
                value = value.array
            if isinstance(value, pd.api.extensions.ExtensionArray) and not isinstance(value, pd.arrays.NumpyExtensionArray):
                value = PandasExtensionArray(value)
            variable = xr.Variable(self._dim, value)
        if variable.shape != (len(self._index),):
            raise ValueError(f"column {key!r} has shape {variable.shape}, the frame has {len(self._index)} rows")
        self._ds = self._ds.assign({key: variable})
        if key not in self._columns:
            self._columns.append(key)

    def copy(self, deep: bool = False) -> Dataset2D:
        """A new frame over the same (lazy) columns; ``deep=True`` reads it into memory."""
        if deep:
            return self.to_memory()  # type: ignore[return-value]
        out = Dataset2D(self._ds.copy(deep=False), index=self._index, columns=list(self._columns), is_subset=self._is_subset, true_index_key=self._true_index_key)._with_source(self._source)
        out._rows = self._rows
        return out

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows in memory."""
        return self.iloc[: max(0, n)].to_memory()

    # -- materialising -----------------------------------------------------------------
    def _with_source(self, source: StorageGroup | None) -> Dataset2D:
        self._source = source
        return self

    def to_memory(self, copy: bool = False) -> pd.DataFrame:
        """Read the (selected rows of the) frame into a ``pandas.DataFrame`` equal to an eager
        read of the same element. From a remote store, the stored bytes of the selected rows
        of every column are fetched concurrently first."""
        from annio._lazy.plans import prefetching_selection

        with prefetching_selection([self]):
            return self._to_memory()

    async def to_memory_async(self, copy: bool = False) -> pd.DataFrame:
        """:meth:`to_memory` for coroutines: the reads run off the caller's event loop."""
        import asyncio

        return await asyncio.to_thread(self.to_memory)

    def _to_memory(self) -> pd.DataFrame:
        import dask

        names = list(self._columns)
        batched = self._read_batches(names) if not self._is_subset else {}
        lazy_names = [c for c in names if c not in batched and is_dask(self._ds.variables[c]._data)]
        direct = _read_direct(self._ds, lazy_names)
        lazy_names = [c for c in lazy_names if c not in direct]
        index_is_lazy = self._true_index_key is not None
        to_compute = [self._ds.variables[c].data for c in lazy_names]
        if index_is_lazy:
            to_compute.append(_as_dask_or_array(self._ds[self._true_index_key].variable._data))
        from annio._core.scheduler import dask_scheduler

        computed = dask.compute(*to_compute, **dask_scheduler()) if to_compute else ()
        values = dict(zip(lazy_names, computed[: len(lazy_names)], strict=True))
        remove_unused = self._is_subset and settings.remove_unused_categories
        data: dict[str, Any] = {}
        for col in names:
            value = batched[col] if col in batched else direct[col] if col in direct else values[col] if col in values else self._materialize(col)
            if remove_unused and isinstance(value, pd.Categorical):
                value = value.remove_unused_categories()
            data[col] = value
        index = self._index
        if index_is_lazy:
            name = None if self._true_index_key == RESERVED else self._true_index_key
            index = pd.Index(np.asarray(computed[-1], dtype=object), name=name)
        if not names:
            return pd.DataFrame(index=index)
        out = pd.DataFrame(data, index=index, columns=names)
        for i, col in enumerate(names):  # object columns pandas 3 re-inferred as ``str``
            if out.dtypes.iloc[i] != object and getattr(backend_array(self._ds.variables[col]._data), "keeps_object", False):
                out.isetitem(i, pd.Series(np.asarray(data[col], dtype=object), index=out.index, dtype=object, copy=False))
        return out

    to_pandas = to_memory

    def _read_batches(self, names: list[str]) -> dict[str, Any]:
        """Columns whose backends read together (a ``batch`` with ``read(columns)``, e.g.
        concatenated columns reading each part's columns at once), read batch by batch."""
        groups: dict[int, tuple[Any, list[str]]] = {}
        for col in names:
            batch = getattr(backend_array(self._ds.variables[col]._data), "batch", None)
            if batch is not None:
                groups.setdefault(id(batch), (batch, []))[1].append(col)
        out: dict[str, Any] = {}
        for batch, cols in groups.values():
            out.update(batch.read(cols))
        return out

    def _materialize(self, col: str) -> Any:
        data = self._ds.variables[col]._data
        backend = backend_array(data)
        if getattr(backend, "kind", None) == "nullable-string-array":  # masked or concatenated
            raw = np.asarray(data.get_duck_array()).astype(object)
            raw[pd.isna(raw)] = None
            return pd.array(raw, dtype=backend.pandas_dtype)
        if hasattr(data, "get_duck_array"):
            return unwrap(data.get_duck_array())
        return unwrap(data)


def backend_array(data: Any) -> Any:
    """The annio column array behind xarray's lazy indexing wrappers, if any."""
    seen = 0
    while seen < 10:
        if isinstance(data, LazyColumn):
            return data
        inner = getattr(data, "array", None)
        if inner is None or inner is data:
            return None
        data = inner
        seen += 1
    return None


def _isel(ds: xr.Dataset, dim: str, key: Any) -> xr.Dataset:
    """``ds.isel({dim: key})``, with the rows of annio's lazy dask columns selected by the
    row push-down (:func:`annio._lazy.pushdown.take_rows`: one task per block of the wanted
    rows, and loadable without dask by :func:`annio._lazy.pushdown.read_direct`) rather than
    by dask's indexing (a shuffle graph per column for integer rows)."""
    if isinstance(key, slice) and key.step in (None, 1):
        n = ds.sizes[dim]
        if key.indices(n) == (0, n, 1):
            return ds.isel({dim: key})
    from annio._lazy.pushdown import take_rows

    taken: dict[str, xr.Variable] = {}
    for name in ds.data_vars:
        var = ds.variables[name]
        if var.dims == (dim,) and is_dask(var._data):
            sub = take_rows(var._data, key, 0)
            if sub is not NotImplemented:
                taken[str(name)] = xr.Variable(dim, sub, attrs=var.attrs)
    if not taken:
        return ds.isel({dim: key})
    order = list(ds.data_vars)
    out = ds.drop_vars(list(taken)).isel({dim: key}).assign(taken)
    return out[order]


def _read_direct(ds: Any, names: list[str]) -> dict[str, Any]:
    """Columns read without dask (:func:`annio._lazy.pushdown.read_direct`)."""
    from annio._lazy.pushdown import read_direct

    out = {}
    for col in names:
        values = read_direct(ds.variables[col].data)
        if values is not None:
            out[col] = values
    return out


def is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _as_dask_or_array(data: Any) -> Any:
    if is_dask(data):
        return data
    if hasattr(data, "get_duck_array"):
        return np.asarray(unwrap(data.get_duck_array()))
    return np.asarray(data)


def _column_variable(dim: str, path: str, value: Any, n: int) -> xr.Variable:
    if isinstance(value, LazyColumn):
        if value.shape != (n,):
            raise FormatError(path, f"column has {value.shape[0] if value.shape else 0} rows, index has {n}")
        return xr.Variable(dim, indexing.LazilyIndexedArray(value))
    shape = tuple(getattr(value, "shape", ()))
    if not shape or shape[0] != n:
        raise FormatError(path, f"column has {shape[0] if shape else 0} rows, index has {n}")
    if len(shape) != 1:
        raise FormatError(path, f"dataframe columns must be 1-dimensional, found shape {shape}")
    if isinstance(value, pd.api.extensions.ExtensionArray) and not isinstance(value, pd.arrays.NumpyExtensionArray):
        value = PandasExtensionArray(value)
    return xr.Variable(dim, value)


def _frame_column_chunks(node: Any) -> Any:
    """Dask chunks for a 1-D frame column: the storage chunk (zarr inner chunk, so a row
    subset reads only the chunks holding its rows), or the whole column when it is stored
    contiguously (HDF5)."""
    if not isinstance(node, StorageArray) or node.ndim != 1:
        return None
    if node.chunks is None:
        return (-1,)
    return (node.chunks[0],)


def read_frame_lazy(node: StorageGroup, reader: Reader, *, use_range_index: bool = False, chunks: Any = None) -> Dataset2D:
    """Open a stored ``dataframe`` lazily (used by the ``dataframe`` encoding's ``read_lazy``).

    Parameters
    ----------
    node
        The ``dataframe`` group.
    reader
        The lazy reader (columns are read through it).
    use_range_index
        Do not read the index: rows are labelled ``"0"``, ``"1"``, ... and the real index
        stays on disk as a lazy variable (``ds.attrs["indexing_key"]``).
    chunks
        Dask chunks for numeric/string columns (default: see :func:`_frame_column_chunks`).
    """
    attrs = node.attrs
    if "_index" not in attrs:
        raise FormatError(node.path, "dataframe lacks the '_index' attribute")
    index_key = str(attrs["_index"])
    columns = [str(c) for c in attrs.get("column-order", [])]
    if index_key not in node:
        raise FormatError(f"{node.path}/{index_key}", "the dataframe's index is missing")
    index_node = node[index_key]
    index_name = None if index_key == RESERVED else index_key
    variables: dict[str, xr.Variable] = {}
    ds_attrs: dict[str, Any] = {"is_backed": True}
    if use_range_index:
        dim = DUMMY_INDEX
        true_index = _read_column(index_node, reader, chunks)
        n = int(true_index.shape[0])
        index = pd.Index(np.arange(n).astype(str).astype(object))
        variables[index_key] = _column_variable(dim, f"{node.path}/{index_key}", true_index, n)
        ds_attrs["indexing_key"] = index_key
    else:
        dim = index_key if index_key not in columns else RESERVED
        # the columns (opened, not read) before the index (read): a remote prefetch of the
        # index is still arriving while they are built
        index = None if isinstance(index_node, StorageArray) and index_node.ndim == 1 else pd.Index(Reader().read_elem(index_node), name=index_name)
        n = index_node.shape[0] if index is None else len(index)
    for col in columns:
        if col not in node:
            raise FormatError(f"{node.path}/{col}", "column listed in column-order is missing")
        value = _read_column(node[col], reader, chunks)
        variables[col] = _column_variable(dim, f"{node.path}/{col}", value, n)
    if index is None:
        index = pd.Index(Reader().read_elem(index_node), name=index_name)
        if len(index) != n:  # pragma: no cover - a 1-D array reads as its length
            raise FormatError(f"{node.path}/{index_key}", f"index holds {len(index)} values, its array {n}")
    ds = xr.Dataset(variables, coords={dim: pd.Index(np.asarray(index, dtype=object), name=dim)}, attrs=ds_attrs)
    return Dataset2D(ds, index=index, columns=columns, true_index_key=index_key if use_range_index else None)._with_source(node)


def _read_column(node: Any, reader: Reader, chunks: Any) -> Any:
    from annio.io._encodings.registry import get_spec

    spec = get_spec(node)
    if spec.encoding_type in ("array", "string-array") and isinstance(node, StorageArray) and node.ndim == 1:
        return dense_dask(node, chunks if chunks is not None else _frame_column_chunks(node))
    return reader.read_elem(node)


