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

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing
from xarray.core.extension_array import PandasExtensionArray

from ..errors import FormatError
from ..io.registry import Reader, Writer
from ..io.storage import StorageArray, StorageGroup
from ..settings import settings
from .arrays import ArraySource, dense_dask

__all__ = [
    "Dataset2D",
    "LazyCategoricalArray",
    "LazyCategoricalDtype",
    "LazyMaskedArray",
    "read_frame_lazy",
    "write_frame",
]

RESERVED = "_index"
DUMMY_INDEX = "_anndata_dummy_range_index"


# ============================================================================= columns
def _read_1d(source: ArraySource, key: Any) -> np.ndarray:
    """Read a 1-D selection (slice, integer array or integer) from ``source``."""
    if isinstance(key, tuple):
        (key,) = key
    if isinstance(key, slice):
        return source.read(key)
    if isinstance(key, int | np.integer):
        return source.read(slice(int(key), int(key) + 1))[0]
    return source.take(np.asarray(key))


class LazyCategoricalDtype(pd.CategoricalDtype):
    """A ``CategoricalDtype`` whose categories are read on first use.

    ``n_categories`` and ``ordered`` are known without reading anything; ``categories``
    (and anything needing them: equality, hashing, repr) reads them once.
    """

    def __init__(self, array: LazyCategoricalArray) -> None:  # noqa: D107 - no super().__init__: lazy
        self._array = array
        self._ordered = bool(array.ordered)
        self._cats: pd.Index | None = None

    @property
    def _categories(self) -> pd.Index:  # pandas reads this attribute internally
        return self._array.categories

    @_categories.setter
    def _categories(self, value: pd.Index) -> None:  # pragma: no cover - pandas never sets it here
        self._array._categories = value

    @property
    def n_categories(self) -> int:
        """Number of categories (from the stored array's shape; nothing is read)."""
        return self._array.n_categories

    def __reduce__(self) -> Any:
        return (pd.CategoricalDtype, (self.categories, self.ordered))


class _LazyColumn(BackendArray):
    """Base of the lazily indexed column arrays (one dimension)."""

    path: str
    shape: tuple[int, ...]

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._getitem)

    def _getitem(self, key: tuple) -> Any:
        raise NotImplementedError

    def to_memory(self) -> Any:
        """The whole column in memory (what an eager ``read_elem`` gives)."""
        return _unwrap(self._getitem((slice(None),)))


class LazyCategoricalArray(_LazyColumn):
    """A stored ``categorical``: codes read per selection, categories read once."""

    def __init__(self, codes: ArraySource, categories: ArraySource | Any, ordered: bool, path: str) -> None:
        if codes.ndim != 1:
            raise FormatError(f"{path}/codes", f"expected 1-D codes, found shape {codes.shape}")
        self.codes = codes
        self._categories_source = categories
        self.ordered = bool(ordered)
        self.path = path
        self.shape = codes.shape
        self._categories: pd.Index | None = None
        self._lock = threading.Lock()
        self._dtype = LazyCategoricalDtype(self)

    @classmethod
    def from_node(cls, node: StorageGroup) -> LazyCategoricalArray:
        for part in ("codes", "categories"):
            if part not in node:
                raise FormatError(f"{node.path}/{part}", "missing part of a categorical")
        cats_node = node["categories"]
        if isinstance(cats_node, StorageArray):
            categories: Any = ArraySource(cats_node)
        else:  # categories stored as a group (e.g. nullable strings): small, read now
            categories = pd.Index(Reader().read_elem(cats_node))
        return cls(ArraySource(node["codes"]), categories, bool(node.attrs.get("ordered", False)), node.path)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def dtype(self) -> LazyCategoricalDtype:
        return self._dtype

    @property
    def n_categories(self) -> int:
        if self._categories is not None:
            return len(self._categories)
        source = self._categories_source
        return len(source) if isinstance(source, pd.Index) else int(source.shape[0])

    @property
    def categories(self) -> pd.Index:
        """The categories, read on first use and cached."""
        if self._categories is None:
            with self._lock:
                if self._categories is None:
                    source = self._categories_source
                    values = source if isinstance(source, pd.Index) else source.read()
                    self._categories = pd.Index(values)
        return self._categories

    def _getitem(self, key: tuple) -> Any:
        from ..io.encodings.categorical import build_categorical

        codes = np.asarray(_read_1d(self.codes, key))
        if codes.ndim == 0:
            cat = build_categorical(self.path, codes.reshape(1), self.categories, self.ordered)
            return np.asarray(cat, dtype=object)[0]
        return PandasExtensionArray(build_categorical(self.path, codes, self.categories, self.ordered))


def _masked_dtype(kind: str, values_dtype: np.dtype, na_value: str) -> Any:
    if kind == "nullable-integer":
        if values_dtype.kind not in "iu":
            raise TypeError(f"expected integers, found {values_dtype}")
        return pd.api.types.pandas_dtype(f"{'U' if values_dtype.kind == 'u' else ''}Int{values_dtype.itemsize * 8}")
    if kind == "nullable-boolean":
        return pd.BooleanDtype()
    # xarray cannot hold pandas string arrays (xarray#10419): numpy StringDType in the
    # Dataset, converted to the pandas string dtype by ``to_memory``
    return np.dtypes.StringDType(na_object=pd.NA)


def _pandas_string_dtype(na_value: str) -> Any:
    from ..io.encodings.nullable import _string_dtype

    return _string_dtype(na_value)


class LazyMaskedArray(_LazyColumn):
    """A stored ``nullable-integer``/``nullable-boolean``/``nullable-string-array``."""

    def __init__(self, values: ArraySource, mask: ArraySource, kind: str, path: str, na_value: str = "NA") -> None:
        if values.shape != mask.shape or values.ndim != 1:
            raise FormatError(path, f"values {values.shape} and mask {mask.shape} must be equal 1-D shapes")
        self.values = values
        self.mask = mask
        self.kind = kind
        self.path = path
        self.na_value = na_value
        self.shape = values.shape
        try:
            self._dtype = _masked_dtype(kind, np.dtype(values.dtype), na_value)
        except TypeError as err:
            raise FormatError(f"{path}/values", str(err)) from None

    @classmethod
    def from_node(cls, node: StorageGroup, kind: str) -> LazyMaskedArray:
        for part in ("values", "mask"):
            if part not in node:
                raise FormatError(f"{node.path}/{part}", f"missing part of a {kind}")
        na_value = str(node.attrs.get("na-value", "NA"))
        return cls(ArraySource(node["values"]), ArraySource(node["mask"]), kind, node.path, na_value)

    @property
    def dtype(self) -> Any:
        return self._dtype

    @property
    def pandas_dtype(self) -> Any:
        """The dtype of the column once in memory (pandas string dtype for strings)."""
        return _pandas_string_dtype(self.na_value) if self.kind == "nullable-string-array" else self._dtype

    def _getitem(self, key: tuple) -> Any:
        values = np.asarray(_read_1d(self.values, key))
        mask = np.asarray(_read_1d(self.mask, key)).astype(bool, copy=False)
        scalar = values.ndim == 0
        values, mask = values.reshape(-1), mask.reshape(-1)
        if self.kind == "nullable-integer":
            out: Any = PandasExtensionArray(pd.arrays.IntegerArray(values, mask))
        elif self.kind == "nullable-boolean":
            out = PandasExtensionArray(pd.arrays.BooleanArray(values.astype(bool), mask))
        else:
            out = np.asarray(values, dtype=object)
            out[mask] = pd.NA
            out = out.astype(self._dtype)
        if scalar:
            return _unwrap(out)[0]
        return out


def _unwrap(data: Any) -> Any:
    """Plain numpy / pandas extension array from what xarray holds."""
    if isinstance(data, PandasExtensionArray):
        return data.array
    return data


# ============================================================================= the frame
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
        backend = _backend_array(data)
        if isinstance(backend, LazyMaskedArray):
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
        ds = self._ds.isel({self._dim: key})
        return Dataset2D(
            ds,
            index=self._index[key],
            columns=self._columns,
            is_subset=self._is_subset or not full,
            true_index_key=self._true_index_key,
        )

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
        return Dataset2D(
            self._ds[names], index=self._index, columns=keys, is_subset=self._is_subset, true_index_key=self._true_index_key
        )

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
        return Dataset2D(self._ds.copy(deep=False), index=self._index, columns=list(self._columns), is_subset=self._is_subset, true_index_key=self._true_index_key)

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows in memory."""
        return self.iloc[: max(0, n)].to_memory()

    # -- materialising -----------------------------------------------------------------
    def to_memory(self, copy: bool = False) -> pd.DataFrame:
        """Read the (selected rows of the) frame into a ``pandas.DataFrame`` equal to an eager
        read of the same element."""
        import dask

        names = list(self._columns)
        lazy_names = [c for c in names if _is_dask(self._ds[c].variable._data)]
        index_is_lazy = self._true_index_key is not None
        to_compute = [self._ds[c].data for c in lazy_names]
        if index_is_lazy:
            to_compute.append(_as_dask_or_array(self._ds[self._true_index_key].variable._data))
        computed = dask.compute(*to_compute) if to_compute else ()
        values = dict(zip(lazy_names, computed[: len(lazy_names)], strict=True))
        remove_unused = self._is_subset and settings.remove_unused_categories
        data: dict[str, Any] = {}
        for col in names:
            value = values[col] if col in values else self._materialize(col)
            if remove_unused and isinstance(value, pd.Categorical):
                value = value.remove_unused_categories()
            data[col] = value
        index = self._index
        if index_is_lazy:
            name = None if self._true_index_key == RESERVED else self._true_index_key
            index = pd.Index(np.asarray(computed[-1], dtype=object), name=name)
        if not names:
            return pd.DataFrame(index=index)
        return pd.DataFrame(data, index=index, columns=names)

    to_pandas = to_memory

    def _materialize(self, col: str) -> Any:
        data = self._ds[col].variable._data
        backend = _backend_array(data)
        if isinstance(backend, LazyMaskedArray) and backend.kind == "nullable-string-array":
            raw = np.asarray(data.get_duck_array()).astype(object)
            raw[pd.isna(raw)] = None
            return pd.array(raw, dtype=backend.pandas_dtype)
        if hasattr(data, "get_duck_array"):
            return _unwrap(data.get_duck_array())
        return _unwrap(data)


def _backend_array(data: Any) -> Any:
    """The annio column array behind xarray's lazy indexing wrappers, if any."""
    seen = 0
    while seen < 10:
        if isinstance(data, _LazyColumn):
            return data
        inner = getattr(data, "array", None)
        if inner is None or inner is data:
            return None
        data = inner
        seen += 1
    return None


def _is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _as_dask_or_array(data: Any) -> Any:
    if _is_dask(data):
        return data
    if hasattr(data, "get_duck_array"):
        return np.asarray(_unwrap(data.get_duck_array()))
    return np.asarray(data)


# ============================================================================= reading
def _column_variable(dim: str, path: str, value: Any, n: int) -> xr.Variable:
    if isinstance(value, _LazyColumn):
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
        index = pd.Index(Reader().read_elem(index_node), name=index_name)
        n = len(index)
    for col in columns:
        if col not in node:
            raise FormatError(f"{node.path}/{col}", "column listed in column-order is missing")
        value = _read_column(node[col], reader, chunks)
        variables[col] = _column_variable(dim, f"{node.path}/{col}", value, n)
    ds = xr.Dataset(variables, coords={dim: pd.Index(np.asarray(index, dtype=object), name=dim)}, attrs=ds_attrs)
    return Dataset2D(ds, index=index, columns=columns, true_index_key=index_key if use_range_index else None)


def _read_column(node: Any, reader: Reader, chunks: Any) -> Any:
    from ..io.registry import get_spec

    spec = get_spec(node)
    if spec.encoding_type in ("array", "string-array") and isinstance(node, StorageArray) and node.ndim == 1:
        return dense_dask(node, chunks if chunks is not None else _frame_column_chunks(node))
    return reader.read_elem(node)


# ============================================================================= writing
def _codes_dtype(n_categories: int) -> np.dtype:
    return pd.Categorical.from_codes(np.zeros(0, dtype=np.int8), categories=pd.RangeIndex(n_categories)).codes.dtype


def _column_blocks(n: int, row_bytes: int, target: StorageArray | None = None) -> Iterator[slice]:
    from ..io.encodings.blocks import row_blocks

    grid = ((target.shards or target.chunks) if target is not None else None) or (1,)
    return row_blocks(n, max(1, row_bytes), align=max(1, int(grid[0])))


def _set_spec(node: Any, encoding_type: str, version: str) -> None:
    node.attrs.update({"encoding-type": encoding_type, "encoding-version": version})


def write_frame(group: StorageGroup, frame: Dataset2D, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    """Write a lazy frame as a ``dataframe`` group, column by column in row blocks."""
    from ..io.encodings.dataframe import index_values

    for col in frame.columns:
        if not isinstance(col, str):
            raise TypeError(f"{group.path}: column name {col!r} is an invalid key. Should be str.")
    if RESERVED in frame.columns:
        raise ValueError(f"{group.path}: {RESERVED!r} is a reserved name for dataframe columns.")
    index = frame.true_index
    index_key = index.name if isinstance(index.name, str) and index.name not in frame.columns else RESERVED
    group.attrs.update({"_index": index_key, "column-order": [str(c) for c in frame.columns]})
    writer.write_elem(group, index_key, index_values(group.path, index), dataset_kwargs=dataset_kwargs)
    remove_unused = frame.is_subset and settings.remove_unused_categories
    for col in frame.columns:
        variable = frame.ds[col].variable
        backend = _backend_array(variable._data)
        if isinstance(backend, LazyCategoricalArray):
            _write_categorical(group, col, variable, backend, remove_unused, dataset_kwargs)
        elif isinstance(backend, LazyMaskedArray):
            _write_masked(group, col, variable, backend, writer, dataset_kwargs)
        elif _is_dask(variable._data):
            _write_dask_column(group, col, variable._data, writer, dataset_kwargs)
        else:
            value = _unwrap(variable._data)
            if isinstance(value, pd.Categorical) and remove_unused:
                value = value.remove_unused_categories()
            writer.write_elem(group, col, value, dataset_kwargs=dataset_kwargs)


def _write_dask_column(group: StorageGroup, col: str, data: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    kind = np.dtype(data.dtype).kind
    if kind in "biufc":  # the array encoding streams dask arrays block by block
        writer.write_elem(group, col, data, dataset_kwargs=dataset_kwargs)
        return
    if kind not in "OUT":
        writer.write_elem(group, col, np.asarray(data.compute()), dataset_kwargs=dataset_kwargs)
        return
    n = data.shape[0]
    target = group.create_empty_array(col, (n,), np.dtype(object), dataset_kwargs=dataset_kwargs)
    for rows in _column_blocks(n, 64, target):
        block = np.asarray(data[rows].compute(), dtype=object)
        from ..io.storage_dtypes import as_str_objects

        target.write(rows, as_str_objects(block, f"{group.path}/{col}"))
    _set_spec(target, "string-array", "0.2.0")


def _block_values(variable: xr.Variable, rows: slice) -> Any:
    return _unwrap(variable[rows]._data.get_duck_array())


def _write_categorical(group: StorageGroup, col: str, variable: xr.Variable, backend: LazyCategoricalArray, remove_unused: bool, dataset_kwargs: Mapping[str, Any]) -> None:
    from ..io.encodings.categorical import categories_to_numpy

    kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
    n = variable.shape[0]
    categories = backend.categories
    mapping = None
    if remove_unused:  # first pass: which categories are used by the selected rows
        used = np.zeros(len(categories), dtype=bool)
        for rows in _column_blocks(n, 8):
            codes = np.asarray(_block_values(variable, rows).codes)
            used[codes[codes >= 0]] = True
        if not used.all():
            mapping = np.cumsum(used) - 1
            categories = categories[used]
    sub = group.create_group(col)
    codes_dtype = _codes_dtype(len(categories))
    target = sub.create_empty_array("codes", (n,), codes_dtype, dataset_kwargs=kwargs)
    for rows in _column_blocks(n, 8, target):
        codes = np.asarray(_block_values(variable, rows).codes).astype(np.int64)
        if mapping is not None:
            codes = np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1)
        target.write(rows, codes.astype(codes_dtype))
    _set_spec(target, "array", "0.2.0")
    from ..io.registry import Writer as _Writer

    _Writer().write_elem(sub, "categories", categories_to_numpy(categories), dataset_kwargs=kwargs)
    sub.attrs.update({"ordered": bool(backend.ordered)})
    _set_spec(sub, "categorical", "0.2.0")


def _write_masked(group: StorageGroup, col: str, variable: xr.Variable, backend: LazyMaskedArray, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    from ..io.encodings.nullable import writes_nullable_strings

    n = variable.shape[0]
    is_string = backend.kind == "nullable-string-array"
    if is_string and not writes_nullable_strings():  # written as a plain string-array
        frame_value = Dataset2D(xr.Dataset({col: variable}), columns=[col]).to_memory()[col].array
        writer.write_elem(group, col, frame_value, dataset_kwargs=dataset_kwargs)
        return
    kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
    sub = group.create_group(col)
    values_dtype = np.dtype(object) if is_string else np.dtype(backend.values.dtype)
    if backend.kind == "nullable-boolean":
        values_dtype = np.dtype(bool)
    values = sub.create_empty_array("values", (n,), values_dtype, dataset_kwargs=kwargs)
    mask = sub.create_empty_array("mask", (n,), np.dtype(bool), dataset_kwargs=kwargs)
    fill: Any = "" if is_string else (False if values_dtype == bool else 0)
    for rows in _column_blocks(n, 16, values):
        block = _block_values(variable, rows)
        if is_string:
            raw = np.asarray(block).astype(object)
            block_mask = np.asarray(pd.isna(raw), dtype=bool)
            raw[block_mask] = fill
            block_values = raw
        else:
            block_mask = np.asarray(pd.isna(block), dtype=bool)
            block_values = np.asarray(block.to_numpy(dtype=values_dtype, na_value=fill))
        values.write(rows, block_values)
        mask.write(rows, block_mask)
    _set_spec(values, "string-array" if is_string else "array", "0.2.0")
    _set_spec(mask, "array", "0.2.0")
    if is_string:
        sub.attrs["na-value"] = backend.na_value
    _set_spec(sub, backend.kind, "0.1.0")

