"""Lazy column arrays of the lazy data frame: categorical columns (codes read on demand,
categories once, on first use; :class:`LazyCategoricalDtype` knows the number of
categories from the stored shape) and nullable integer/boolean/string columns (values and
mask read on demand)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
from xarray.backends import BackendArray
from xarray.core import indexing
from xarray.core.extension_array import PandasExtensionArray

from annio._lazy.arrays import ArraySource
from annio.errors import FormatError
from annio.io._encodings.registry import Reader
from annio.io._storage.adapter import StorageArray, StorageGroup

__all__ = ["LazyCategoricalArray", "LazyCategoricalDtype", "LazyColumn", "LazyMaskedArray", "RESERVED", "DUMMY_INDEX", "unwrap"]

RESERVED = "_index"
DUMMY_INDEX = "_anndata_dummy_range_index"


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

    def __init__(self, array: LazyCategoricalArray) -> None:
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


class LazyColumn(BackendArray):
    """Base of the lazily indexed column arrays (one dimension)."""

    path: str
    shape: tuple[int, ...]

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._getitem)

    def _getitem(self, key: tuple) -> Any:
        raise NotImplementedError

    def to_memory(self) -> Any:
        """The whole column in memory (what an eager ``read_elem`` gives)."""
        return unwrap(self._getitem((slice(None),)))


class LazyCategoricalArray(LazyColumn):
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
        from annio.io._encodings.categorical import build_categorical

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
    from annio.io._encodings.nullable import _string_dtype

    return _string_dtype(na_value)


class LazyMaskedArray(LazyColumn):
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
            return unwrap(out)[0]
        return out


def unwrap(data: Any) -> Any:
    """Plain numpy / pandas extension array from what xarray holds."""
    if isinstance(data, PandasExtensionArray):
        return data.array
    return data


