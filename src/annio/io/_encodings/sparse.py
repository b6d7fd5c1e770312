"""Compressed sparse matrices: ``csr_matrix`` and ``csc_matrix`` groups.

The group holds ``data``, ``indices`` and ``indptr`` (no encoding attributes of their own)
and a ``shape`` attribute. Reading validates the structure before building the matrix, so a
corrupt or hostile file gives :class:`~annio.errors.FormatError` instead of a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from annio.errors import FormatError
from annio.io._encodings.blocks import report_progress
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, lazy_builder, register
from annio.io._storage.adapter import StorageArray, StorageGroup
from annio.settings import settings

_DASK = "dask.array.core.Array"
_SPARSE_TYPES = (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array)


def sparse_format(value: Any) -> str | None:
    """``"csr"``/``"csc"`` for scipy matrices, dask arrays of them and backed datasets."""
    fmt = getattr(value, "format", None)
    if isinstance(value, _SPARSE_TYPES) or getattr(value, "_annio_backed_sparse", False):
        return fmt
    meta = getattr(value, "_meta", None)
    if meta is not None and isinstance(meta, _SPARSE_TYPES):
        return meta.format
    return None


def min_index_dtype(n_minor: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_minor <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def _index_dtypes(n_minor: int, nnz: int, dataset_kwargs: Mapping[str, Any], indices_dtype: np.dtype) -> tuple[np.dtype, np.dtype]:
    indptr_dtype = dataset_kwargs.get("indptr_dtype")
    if indptr_dtype is None:
        indptr_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    if settings.write_csr_csc_indices_with_min_possible_dtype:
        indices_dtype = min_index_dtype(n_minor)
    return np.dtype(indptr_dtype), np.dtype(indices_dtype)


class _Compressed(GroupEncoding):
    fmt: str

    def accepts(self, value: Any) -> bool:
        return sparse_format(value) == self.fmt

    def group_attrs(self, value: Any) -> dict[str, Any]:
        return {"shape": [int(s) for s in value.shape]}

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        shape = tuple(int(s) for s in value.shape)
        kwargs = {k: v for k, v in dataset_kwargs.items() if k not in ("dtype", "indptr_dtype")}
        if not isinstance(value, _SPARSE_TYPES):
            self._write_streamed(group, value, shape, kwargs, dataset_kwargs)
            return
        n_minor = shape[1] if self.fmt == "csr" else shape[0]
        indptr_dtype, indices_dtype = _index_dtypes(n_minor, value.nnz, dataset_kwargs, value.indices.dtype)
        data = value.data if dataset_kwargs.get("dtype") is None else value.data.astype(dataset_kwargs["dtype"])
        group.create_array("data", data, dataset_kwargs=kwargs, resizable=True)
        group.create_array("indices", value.indices.astype(indices_dtype, copy=False), dataset_kwargs=kwargs, resizable=True)
        group.create_array("indptr", value.indptr.astype(indptr_dtype, copy=False), dataset_kwargs=kwargs, resizable=True)
        report_progress(value.nnz)

    def _write_streamed(self, group: StorageGroup, value: Any, shape: tuple[int, ...], kwargs: dict, dataset_kwargs: Mapping[str, Any]) -> None:
        """dask-of-sparse or backed sparse: append major-axis blocks one at a time."""
        from annio.io._encodings.sparse_stream import append_blocks

        append_blocks(group, value, self.fmt, shape, kwargs, dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> sp.csr_matrix | sp.csc_matrix | sp.csr_array | sp.csc_array:
        data, indices, indptr, shape = read_components(node, self.fmt)
        cls = result_class(self.fmt)
        return cls((data, indices, indptr), shape=shape, copy=False)

    def read_lazy(self, node: StorageGroup, reader: Reader, *, chunks: Any = None, **kwargs: Any) -> Any:
        """A dask array of scipy blocks along the major axis (see :mod:`annio._lazy.arrays`)."""
        return lazy_builder("sparse_array")(node, self.fmt, chunks)


def result_class(fmt: str) -> type:
    """The scipy class sparse matrices of format ``fmt`` are read as (``*_array`` when
    ``settings.use_sparse_array_on_read``)."""
    if settings.use_sparse_array_on_read:
        return sp.csr_array if fmt == "csr" else sp.csc_array
    return sp.csr_matrix if fmt == "csr" else sp.csc_matrix


def sparse_shape(node: StorageGroup) -> tuple[int, int]:
    attrs = node.attrs
    shape = attrs.get("shape", attrs.get("h5sparse_shape"))
    if shape is None or len(shape) != 2:
        raise FormatError(node.path, f"sparse matrix needs a 2-element 'shape' attribute, found {shape!r}")
    shape = tuple(int(s) for s in shape)
    if min(shape) < 0:
        raise FormatError(node.path, f"negative shape {shape}")
    return shape  # type: ignore[return-value]


def validate_indptr(path: str, indptr: np.ndarray, n_major: int, nnz: int) -> None:
    """Check that ``indptr`` describes ``n_major`` rows over ``nnz`` stored values."""
    if indptr.ndim != 1 or len(indptr) != n_major + 1:
        raise FormatError(f"{path}/indptr", f"expected length {n_major + 1} for {n_major} rows, found {len(indptr)}")
    if indptr.dtype.kind not in "iu":
        raise FormatError(f"{path}/indptr", f"expected integers, found dtype {indptr.dtype}")
    if len(indptr) and (indptr[0] != 0 or indptr[-1] != nnz):
        raise FormatError(f"{path}/indptr", f"must start at 0 and end at nnz={nnz}, found {indptr[0]}..{indptr[-1]}")
    if len(indptr) > 1 and (np.diff(indptr) < 0).any():
        raise FormatError(f"{path}/indptr", "is not monotonically non-decreasing")


def stored_parts(node: StorageGroup, fmt: str) -> tuple[StorageArray, StorageArray, StorageArray, tuple[int, int]]:
    """``(data, indices, indptr, shape)`` of a sparse group, checked for consistency before
    anything is read: the three arrays exist, ``data`` and ``indices`` are 1-D of one length
    and ``indptr`` has one entry per major position plus one."""
    shape = sparse_shape(node)
    for part in ("data", "indices", "indptr"):
        if part not in node or not isinstance(node[part], StorageArray):
            raise FormatError(f"{node.path}/{part}", f"missing part of a {fmt} matrix")
    data, indices, indptr = node["data"], node["indices"], node["indptr"]
    if data.shape != indices.shape or data.ndim != 1:
        raise FormatError(node.path, f"data has shape {data.shape} but indices has {indices.shape}")
    n_major = shape[0] if fmt == "csr" else shape[1]
    if indptr.shape != (n_major + 1,):
        raise FormatError(f"{node.path}/indptr", f"expected length {n_major + 1} for {n_major} rows, found {indptr.shape}")
    return data, indices, indptr, shape  # type: ignore[return-value]


def read_components(node: StorageGroup, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Read and validate data/indices/indptr of a sparse group."""
    data_node, indices_node, indptr_node, shape = stored_parts(node, fmt)
    n_major, n_minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
    data = data_node.read()
    indices = indices_node.read()
    indptr = indptr_node.read()
    if len(indices) != len(data):
        raise FormatError(node.path, f"data has {len(data)} values but indices has {len(indices)}")
    validate_indptr(node.path, indptr, n_major, len(data))
    if len(indices):
        if indices.dtype.kind not in "iu":
            raise FormatError(f"{node.path}/indices", f"expected integers, found dtype {indices.dtype}")
        if indices.min() < 0 or indices.max() >= n_minor:
            raise FormatError(f"{node.path}/indices", f"values must lie in [0, {n_minor}), found {indices.min()}..{indices.max()}")
    if indices.dtype.kind == "u":  # scipy wants signed index arrays
        indices = indices.astype(np.int64 if indices.dtype.itemsize >= 4 else np.int32)
    return data, indices, indptr, shape


@register
class CSRMatrix(_Compressed):
    spec = IOSpec("csr_matrix", "0.1.0")
    python_types = (sp.csr_matrix, sp.csr_array, sp.spmatrix, sp.sparray, _DASK, "annio.io._backed.sparse_datasets.BackedSparseDataset")
    fmt = "csr"


@register
class CSCMatrix(_Compressed):
    spec = IOSpec("csc_matrix", "0.1.0")
    python_types = (sp.csc_matrix, sp.csc_array, sp.spmatrix, sp.sparray, _DASK, "annio.io._backed.sparse_datasets.BackedSparseDataset")
    fmt = "csc"
