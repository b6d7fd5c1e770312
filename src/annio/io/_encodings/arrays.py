"""Dense arrays: ``array`` (numeric/bool), ``string-array`` and ``rec-array``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np
import zarr

from annio.errors import FormatError
from annio.io._encodings.blocks import copy_rows, report_progress
from annio.io._encodings.registry import ArrayEncoding, IOSpec, Reader, Writer, lazy_builder, register
from annio.io._storage.adapter import StorageArray, StorageGroup

_DASK = "dask.array.core.Array"


def _is_dense_dask(value: Any) -> bool:
    meta = getattr(value, "_meta", None)
    return isinstance(meta, np.ndarray)


@register
class DenseArray(ArrayEncoding):
    """Numeric and boolean n-d arrays; also streams dask, h5py and zarr arrays block-wise."""

    spec = IOSpec("array", "0.2.0")
    python_types = (np.ndarray, _DASK, h5py.Dataset, zarr.Array)

    def accepts(self, value: Any) -> bool:
        if isinstance(value, np.ndarray):
            return value.dtype.kind in "biufcmM"
        if isinstance(value, h5py.Dataset | zarr.Array):
            return np.dtype(value.dtype).kind in "biufc" and value.ndim > 0
        return _is_dense_dask(value) and np.dtype(value.dtype).kind in "biufc"

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        dtype = dataset_kwargs.get("dtype")
        if isinstance(value, np.ndarray):
            if isinstance(value, np.ma.MaskedArray):
                value = value.data
            data = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
            created = parent.create_array(key, data, dataset_kwargs=dataset_kwargs, attrs=self.spec.as_attrs())
            report_progress(data.size)
            return created
        # out-of-core sources: stream them
        target = parent.create_empty_array(key, tuple(value.shape), dtype or value.dtype, dataset_kwargs=dataset_kwargs, attrs=self.spec.as_attrs())
        copy_rows(value, target)
        return target

    def read(self, node: StorageArray, reader: Reader) -> np.ndarray:
        return node.read()

    def read_lazy(self, node: StorageArray, reader: Reader, *, chunks: Any = None, **kwargs: Any) -> Any:
        """A dask array (see :mod:`annio._lazy.arrays` for the chunk rules); 0-d: eager."""
        if not node.shape:
            return self.read(node, reader)
        return lazy_builder("dense_array")(node, chunks)


@register
class StringArray(ArrayEncoding):
    """Variable-length UTF-8 string arrays of any dimension."""

    spec = IOSpec("string-array", "0.2.0")
    python_types = (np.ndarray, _DASK)

    def accepts(self, value: Any) -> bool:
        kind = np.dtype(value.dtype).kind
        if isinstance(value, np.ndarray):
            return kind in "UOST"
        return _is_dense_dask(value) and kind in "UOT"

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        data = value.compute() if hasattr(value, "compute") else value
        data = np.asarray(data)
        if data.dtype.kind == "S":
            data = np.char.decode(data, "utf-8")
        return parent.create_array(key, data, dataset_kwargs=dataset_kwargs, attrs=self.spec.as_attrs())

    def read(self, node: StorageArray, reader: Reader) -> np.ndarray:
        if not node.is_string:
            raise FormatError(node.path, f"string-array holds non-string data of dtype {node.dtype}")
        return node.read()

    def read_lazy(self, node: StorageArray, reader: Reader, *, chunks: Any = None, **kwargs: Any) -> Any:
        """A dask array of ``str`` objects; 0-d: eager."""
        if not node.shape:
            return self.read(node, reader)
        if not node.is_string:
            raise FormatError(node.path, f"string-array holds non-string data of dtype {node.dtype}")
        return lazy_builder("dense_array")(node, chunks)


@register
class RecArray(ArrayEncoding):
    """Structured (record) arrays; string fields are stored per backend (see storage)."""

    spec = IOSpec("rec-array", "0.2.0")
    python_types = (np.ndarray,)

    def accepts(self, value: Any) -> bool:
        return value.dtype.kind == "V" and value.dtype.names is not None

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        return parent.create_array(key, np.asarray(value), dataset_kwargs=dataset_kwargs, shardable=False, attrs=self.spec.as_attrs())

    def read(self, node: StorageArray, reader: Reader) -> np.ndarray:
        # a plain structured ndarray (not a recarray) with str objects in its string fields,
        # from h5 (vlen strings) and zarr (fixed-length unicode) alike, as anndata reads it
        return decode_record_strings(node.raw[...])


def decode_record_strings(data: np.ndarray) -> np.ndarray:
    """A copy of a structured array whose string fields (h5 vlen bytes/str, zarr fixed-length
    unicode) are object fields holding ``str``; other arrays are returned unchanged."""
    if data.dtype.names is None:
        return data
    fields = [(name, np.dtype(object) if data.dtype[name].kind in "OU" else data.dtype[name]) for name in data.dtype.names]
    out = np.empty(data.shape, dtype=np.dtype(fields))
    for name in data.dtype.names:
        if data.dtype[name].kind in "OU":
            values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in data[name].reshape(-1).tolist()]
            field = np.empty(len(values), dtype=object)
            field[:] = values
            out[name] = field.reshape(data.shape)
        else:
            out[name] = data[name]
    return out
