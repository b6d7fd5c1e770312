"""Backed mode: an AnnData whose ``X`` (and ``raw/X``) stay in an ``.h5ad`` file, and
``sparse_dataset``: CSR/CSC matrices in an h5ad file or zarr store, read piece by piece.

* :func:`read_h5ad_backed` (``read_h5ad(path, backed="r" | "r+")``) reads everything but
  ``X`` and ``raw/X`` into memory and keeps the file open through an
  :class:`AnnDataFileManager` (``adata.file``).
* ``adata.X`` of a backed object is the ``h5py.Dataset`` (dense) or a
  :class:`CSRDataset`/:class:`CSCDataset` (sparse); views read only their rows.
* The hooks of :mod:`annio.core.anndata` live here: :func:`open_backed`,
  :func:`set_filename`, :func:`copy_backed`.
* :func:`sparse_dataset` works for HDF5 and zarr groups; indexing reads only the needed
  ``data``/``indices`` ranges (see :mod:`annio.io.sparse_read`).

Backed mode is HDF5 only (anndata has no backed zarr either).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import FormatError
from ..settings import settings
from .encodings.sparse import read_components, sparse_shape, validate_indptr
from .sparse_read import read_major_rows, read_major_slice
from .storage import StorageArray, StorageGroup, wrap

__all__ = [
    "BackedSparseDataset",
    "CSRDataset",
    "CSCDataset",
    "sparse_dataset",
    "AnnDataFileManager",
    "open_backed",
    "set_filename",
    "copy_backed",
    "read_h5ad_backed",
    "write_backing_file",
]

_FORMATS = ("csr", "csc")


# ============================================================================= sparse datasets
def _group_format(node: StorageGroup) -> str:
    attrs = node.attrs
    fmt = attrs.get("h5sparse_format", attrs.get("encoding-type"))
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if isinstance(fmt, str) and fmt.endswith("_matrix"):
        fmt = fmt[: -len("_matrix")]
    if fmt not in _FORMATS:
        raise ValueError(f"{node.path}: Unknown encoding type {fmt!r} (expected csr_matrix or csc_matrix)")
    return fmt


def _result_class(fmt: str) -> type:
    if settings.use_sparse_array_on_read:
        return sp.csr_array if fmt == "csr" else sp.csc_array
    return sp.csr_matrix if fmt == "csr" else sp.csc_matrix


class _Full:
    """The whole axis (``slice(None)``, normalised)."""


_FULL = _Full()


def _split_index(index: Any) -> tuple[Any, Any]:
    """``(rows, cols)`` of a 2-D indexer (``x``, ``(x,)``, ``(x, y)``, with ``...``)."""
    if not isinstance(index, tuple):
        return (slice(None) if index is Ellipsis else index), slice(None)
    items = list(index)
    ellipses = [k for k, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        pos = ellipses[0]
        items = items[:pos] + [slice(None)] * max(0, 3 - len(items)) + items[pos + 1 :]
    if len(items) > 2:
        raise IndexError(f"Too many indices for a 2-D sparse dataset: {index!r}")
    items += [slice(None)] * (2 - len(items))
    return items[0], items[1]


def _normalize_axis(idx: Any, n: int, axis: int) -> Any:
    """An int (kept as ``int``: the axis is kept with length 1), a slice, ``_FULL``, or a
    1-D ``int64`` array of in-range positions (any order, repeats allowed)."""
    if isinstance(idx, slice):
        if idx.indices(n) == (0, n, 1):
            return _FULL
        return idx
    if isinstance(idx, bool | np.bool_):
        raise IndexError(f"a boolean scalar is not a valid index (axis {axis})")
    if isinstance(idx, int | np.integer):
        i = int(idx)
        if not -n <= i < n:
            raise IndexError(f"index ({i}) out of range for axis {axis} with size {n}")
        return i + n if i < 0 else i
    if isinstance(idx, float | np.floating):
        raise ValueError("Inexact indices into sparse matrices are not allowed")
    if isinstance(idx, range):
        return _normalize_axis(slice(idx.start, idx.stop, idx.step), n, axis) if len(idx) else np.zeros(0, np.int64)
    if sp.issparse(idx):
        idx = idx.toarray()
    arr = np.asarray(idx)
    if arr.ndim == 2 and 1 in arr.shape and arr.dtype == bool:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise IndexError(f"Too many indices for array: index of shape {arr.shape} on axis {axis}")
    if arr.dtype == bool:
        if arr.shape[0] != n:
            raise IndexError(f"bool index {axis} has shape ({arr.shape[0]},) instead of ({n},)")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "f":
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise IndexError(f"indices on axis {axis} must be integers, got {arr.dtype}")
        arr = as_int
    if arr.dtype.kind not in "iu":
        raise IndexError(f"indices on axis {axis} must be integers or booleans, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = arr.min(), arr.max()
    if lo < -n or hi >= n:
        raise IndexError(f"index ({hi if hi >= n else lo}) out of range for axis {axis} with size {n}")
    return np.where(arr < 0, arr + n, arr) if lo < 0 else arr


class _Parts:
    """The stored arrays of a dataset, as :mod:`annio.io.sparse_read` wants them."""

    __slots__ = ("path", "fmt", "n_major", "n_minor", "nnz", "data", "indices", "indptr")

    def __init__(self, ds: BackedSparseDataset) -> None:
        self.path = ds._node.path
        self.fmt = ds.format
        self.n_major, self.n_minor = ds._major_minor()
        self.data, self.indices, self.indptr = ds._data, ds._indices, ds._indptr_node
        self.nnz = len(ds._data)


class BackedSparseDataset:
    """A CSR or CSC matrix stored in an h5ad file or zarr store (``data``/``indices``/
    ``indptr`` in a group), read piece by piece.

    Use :func:`sparse_dataset` to create one. Indexing (``ds[rows]``, ``ds[rows, cols]``,
    ``ds[:, cols]``) returns a scipy ``csr_matrix``/``csc_matrix`` (``*_array`` when
    ``settings.use_sparse_array_on_read``) and reads only the ``data``/``indices`` ranges
    of the selected rows (CSR) or columns (CSC); the other axis is subset in memory.
    """

    format: Literal["csr", "csc"]
    _annio_backed_sparse = True
    _annio_backed_array = True

    def __init__(self, group: Any, *, should_cache_indptr: bool = True) -> None:
        node = wrap(group)
        if not isinstance(node, StorageGroup):
            raise ValueError(f"{node.path}: a sparse dataset needs a group, found an array")
        fmt = _group_format(node)
        if getattr(type(self), "format", None) not in (None, fmt):
            raise ValueError(f"{node.path}: stored format is {fmt!r}, not {type(self).format!r}")
        for part in ("data", "indices", "indptr"):
            if part not in node or not isinstance(node[part], StorageArray):
                raise FormatError(f"{node.path}/{part}", f"missing part of a {fmt} matrix")
        self._node = node
        self._data: StorageArray = node["data"]  # type: ignore[assignment]
        self._indices: StorageArray = node["indices"]  # type: ignore[assignment]
        self._indptr_node: StorageArray = node["indptr"]  # type: ignore[assignment]
        self._shape = sparse_shape(node)
        self._should_cache_indptr = should_cache_indptr
        self._indptr_cache: np.ndarray | None = None
        n_major = self._major_minor()[0]
        if self._data.shape != self._indices.shape or self._data.ndim != 1:
            raise FormatError(node.path, f"data has shape {self._data.shape} but indices has {self._indices.shape}")
        if self._indptr_node.shape != (n_major + 1,):
            raise FormatError(f"{node.path}/indptr", f"expected length {n_major + 1} for {n_major} rows, found {self._indptr_node.shape}")

    # -- anndata's public attributes -------------------------------------------------------
    @property
    def group(self) -> Any:
        """The h5py/zarr group the matrix is stored in."""
        return self._node.raw

    @property
    def backend(self) -> Literal["hdf5", "zarr"]:
        """``"hdf5"`` or ``"zarr"``."""
        return self._node.backend

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)`` from the ``shape`` (or legacy ``h5sparse_shape``) attribute."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """Data type of the stored values."""
        return self._data.dtype

    @property
    def nnz(self) -> int:
        """Number of stored values."""
        return len(self._data)

    @property
    def ndim(self) -> int:
        return 2

    def _major_minor(self) -> tuple[int, int]:
        n_rows, n_cols = self._shape
        return (n_rows, n_cols) if self.format == "csr" else (n_cols, n_rows)

    def __repr__(self) -> str:
        name = "CSRDataset" if self.format == "csr" else "CSCDataset"
        return f"{name}: backend {self.backend}, shape {self.shape}, data_dtype {self.dtype}"

    # -- reading ---------------------------------------------------------------------------
    def _indptr(self) -> np.ndarray | None:
        """The whole validated ``indptr`` when caching; None otherwise (read per access)."""
        if not self._should_cache_indptr:
            return None
        if self._indptr_cache is None:
            indptr = self._indptr_node.read()
            validate_indptr(self._node.path, indptr, self._major_minor()[0], self.nnz)
            self._indptr_cache = indptr.astype(np.int64, copy=False)
        return self._indptr_cache

    def _read_major(self, sel: Any) -> sp.csr_matrix:
        """The selected major positions as a CSR matrix (major positions as rows)."""
        n_major, n_minor = self._major_minor()
        parts = _Parts(self)
        indptr = self._indptr()
        inverse = None
        if sel is _FULL:
            triple = read_major_slice(parts, 0, n_major, indptr=indptr)
        elif isinstance(sel, int):
            triple = read_major_slice(parts, sel, sel + 1, indptr=indptr)
        elif isinstance(sel, slice) and sel.indices(n_major)[2] == 1:
            start, stop, _ = sel.indices(n_major)
            triple = read_major_slice(parts, start, max(start, stop), indptr=indptr)
        else:
            rows = np.arange(*sel.indices(n_major), dtype=np.int64) if isinstance(sel, slice) else sel
            if rows.size > 1 and not (np.diff(rows) > 0).all():
                rows, inverse = np.unique(rows, return_inverse=True)
            triple = read_major_rows(parts, rows, indptr=indptr)
        n_sel = len(triple[2]) - 1
        mtx = sp.csr_matrix(triple, shape=(n_sel, n_minor), copy=False)
        if inverse is not None:
            mtx = mtx[inverse.ravel()]
        return mtx

    def __getitem__(self, index: Any) -> Any:
        row, col = _split_index(index)
        n_rows, n_cols = self.shape
        r = _normalize_axis(row, n_rows, 0)
        c = _normalize_axis(col, n_cols, 1)
        major, minor = (r, c) if self.format == "csr" else (c, r)
        mtx = self._read_major(major)
        if isinstance(minor, int):
            if isinstance(major, int):
                return mtx[0, minor]
            mtx = mtx[:, minor : minor + 1]
        elif minor is not _FULL:
            mtx = mtx[:, minor]
        out = mtx if self.format == "csr" else mtx.T
        cls = _result_class(self.format)
        return out if type(out) is cls else cls(out)

    def to_memory(self) -> sp.csr_matrix | sp.csc_matrix | sp.csr_array | sp.csc_array:
        """The whole matrix in memory (validated)."""
        data, indices, indptr, shape = read_components(self._node, self.format)
        return _result_class(self.format)((data, indices, indptr), shape=shape, copy=False)

    # -- appending -------------------------------------------------------------------------
    def append(self, sparse_matrix: Any) -> None:
        """Append a matrix of the same format along the major axis (rows for CSR, columns
        for CSC), resizing the stored arrays in place (the file must be writable)."""
        other = sparse_matrix.to_memory() if getattr(sparse_matrix, "_annio_backed_sparse", False) else sparse_matrix
        if not sp.issparse(other) or other.format not in _FORMATS:
            raise NotImplementedError(f"Currently only CSR and CSC matrices can be appended, not {type(sparse_matrix)}")
        if other.format != self.format:
            raise ValueError(f"Matrices must have same format. Currently are {self.format!r} and {other.format!r}")
        n_rows, n_cols = self.shape
        if self.format == "csr":
            if other.shape[1] != n_cols:
                raise ValueError("CSR matrices must have same size of dimension 1 to be appended.")
            new_shape = (n_rows + other.shape[0], n_cols)
        else:
            if other.shape[0] != n_rows:
                raise ValueError("CSC matrices must have same size of dimension 0 to be appended.")
            new_shape = (n_rows, n_cols + other.shape[1])
        other = other.copy()
        other.sum_duplicates()  # canonical: no duplicate entries (as a written matrix would be)
        nnz = self.nnz
        new_nnz = nnz + other.nnz
        indptr_dtype = self._indptr_node.dtype
        if np.iinfo(indptr_dtype).max < new_nnz:
            raise OverflowError(
                f"{self._node.path}/indptr: This array was written with a {indptr_dtype.itemsize * 8} bit intptr, "
                f"but is now large enough to require {64 if indptr_dtype.itemsize < 8 else 128} bit values "
                f"({new_nnz} stored values). Please recreate the array with a 64 bit indptr."
            )
        indices_dtype = self._indices.dtype
        n_minor = self._major_minor()[1]
        if indices_dtype.kind in "iu" and n_minor and np.iinfo(indices_dtype).max < n_minor - 1:
            raise OverflowError(f"{self._node.path}/indices: dtype {indices_dtype} cannot hold indices up to {n_minor - 1}")
        n_major = self._major_minor()[0]
        old_indptr_len = n_major + 1
        self._data.resize(new_nnz)
        self._data.write(slice(nnz, new_nnz), other.data.astype(self._data.dtype, copy=False))
        self._indices.resize(new_nnz)
        self._indices.write(slice(nnz, new_nnz), other.indices.astype(indices_dtype, copy=False))
        added = other.indptr[1:].astype(np.int64) + nnz
        self._indptr_node.resize(old_indptr_len + added.size)
        self._indptr_node.write(slice(old_indptr_len, old_indptr_len + added.size), added.astype(indptr_dtype))
        attrs = self._node.attrs
        attrs["shape"] = list(new_shape)
        if "h5sparse_shape" in attrs:
            del attrs["h5sparse_shape"]
        self._shape = new_shape
        if self._indptr_cache is not None:
            self._indptr_cache = np.concatenate((self._indptr_cache, added))


class CSRDataset(BackedSparseDataset):
    """A stored CSR matrix (see :class:`BackedSparseDataset`)."""

    format = "csr"


class CSCDataset(BackedSparseDataset):
    """A stored CSC matrix (see :class:`BackedSparseDataset`)."""

    format = "csc"


def sparse_dataset(group: Any, *, should_cache_indptr: bool = True) -> CSRDataset | CSCDataset:
    """A :class:`CSRDataset` or :class:`CSCDataset` over a stored sparse matrix.

    Parameters
    ----------
    group
        The h5py or zarr group holding ``data``, ``indices`` and ``indptr`` (encoding
        ``csr_matrix``/``csc_matrix``, or a legacy ``h5sparse_format`` attribute).
    should_cache_indptr
        Keep ``indptr`` in memory after the first access (otherwise every access reads the
        ``indptr`` entries it needs).

    Examples
    --------
    >>> import h5py, annio
    >>> f = h5py.File("data.h5ad")  # doctest: +SKIP
    >>> X = annio.io.sparse_dataset(f["X"])  # doctest: +SKIP
    >>> X[100:110]  # reads only rows 100..109  # doctest: +SKIP
    """
    node = wrap(group)
    if not isinstance(node, StorageGroup):
        raise ValueError(f"{node.path}: a sparse dataset needs a group, found an array")
    cls = CSRDataset if _group_format(node) == "csr" else CSCDataset
    return cls(node, should_cache_indptr=should_cache_indptr)


# ============================================================================= file manager
class AnnDataFileManager:
    """The backing file of an AnnData (``adata.file``): an h5py file opened ``"r"`` or
    ``"r+"``, reopened on demand after :meth:`close` (or after the file was replaced on
    disk, e.g. by ``adata.write_h5ad()``)."""

    def __init__(self, filename: str | os.PathLike | None = None, filemode: Literal["r", "r+"] | None = None) -> None:
        self._filename: Path | None = None if filename is None else Path(filename)
        self._filemode = filemode
        self._file: h5py.File | None = None
        self._stat: tuple[int, int] | None = None
        self._cache: dict[str, Any] = {}

    # -- state -----------------------------------------------------------------------------
    @property
    def filename(self) -> Path | None:
        """Path of the backing file (None when the object is in memory)."""
        return self._filename

    @property
    def filemode(self) -> str | None:
        """``"r"`` or ``"r+"``."""
        return self._filemode

    @property
    def is_open(self) -> bool:
        """Whether the file is currently open."""
        return self._file is not None and bool(self._file.id.valid)

    def open(self, filename: str | os.PathLike | None = None, filemode: Literal["r", "r+"] | None = None) -> None:
        """(Re)open the backing file, optionally a new one or in another mode."""
        if filename is not None:
            self._filename = Path(filename)
        if filemode is not None:
            self._filemode = filemode
        if self._filename is None:
            raise ValueError("Cannot open backing file if backing not initialized.")
        mode = self._filemode or "r"
        if mode not in ("r", "r+"):
            raise ValueError(f"filemode must be 'r' or 'r+', got {mode!r}")
        self._filemode = mode
        self.close()
        self._file = h5py.File(self._filename, mode)
        self._stat = _file_identity(self._filename)

    def close(self) -> None:
        """Close the backing file (``adata.X`` reopens it)."""
        self._cache.clear()
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None

    def _detach(self) -> None:
        """Close and forget the file: the object is in memory now."""
        self.close()
        self._filename = None
        self._filemode = None

    def _ensure_open(self) -> h5py.File:
        if self._filename is None:
            raise ValueError("This AnnData object is not backed by a file.")
        if not self.is_open:
            self.open()
        elif self._stat is not None and _file_identity(self._filename) not in (self._stat, None):
            self.open()  # the file was replaced on disk (atomic rewrite): follow it
        return self._file  # type: ignore[return-value]

    def __getitem__(self, key: str) -> Any:
        return self._ensure_open()[key]

    def __contains__(self, key: str) -> bool:
        return key in self._ensure_open()

    def __repr__(self) -> str:
        if self._filename is None:
            return "Backing file manager: no file is set."
        return f"Backing file manager of file {self._filename}."

    # -- elements --------------------------------------------------------------------------
    def _element(self, *keys: str) -> Any:
        f = self._ensure_open()
        for key in keys:
            if key in self._cache:
                return self._cache[key]
            if key in f:
                value = _backed_element(f[key])
                self._cache[key] = value
                return value
        return None

    def get_X(self) -> Any:
        """``X`` of the file: an ``h5py.Dataset`` (dense) or a sparse dataset; None if absent."""
        return self._element("X")

    def get_raw_X(self) -> Any:
        """``raw/X`` (or legacy ``raw.X``) of the file, like :meth:`get_X`."""
        return self._element("raw/X", "raw.X")

    def set_X(self, value: Any) -> None:
        """Replace ``X`` in the file (``"r+"`` only); ``None`` deletes it."""
        f = self._ensure_open()
        if self._filemode != "r+":
            raise ValueError(f"{self._filename}: opened read-only (backed='r'); cannot write /X")
        from .registry import write_elem

        tmp = "__annio_new_X__"
        if tmp in f:
            del f[tmp]
        try:
            if value is not None:
                write_elem(f, tmp, value)  # the old X stays readable while the new one is written
        except BaseException:
            if tmp in f:
                del f[tmp]
            raise
        self._cache.clear()
        if "X" in f:
            del f["X"]
        if value is not None:
            f.move(tmp, "X")
        f.flush()


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _backed_element(obj: Any) -> Any:
    """An on-disk X: the h5py dataset itself (dense) or a sparse dataset (group)."""
    if isinstance(obj, h5py.Dataset):
        return obj
    node = wrap(obj)
    try:
        return sparse_dataset(node)
    except ValueError as err:
        if isinstance(err, FormatError):
            raise
        raise FormatError(node.path, f"backed mode supports dense arrays and csr/csc matrices only: {err}") from err


# ============================================================================= AnnData hooks
def _check_mode(filemode: Any) -> Literal["r", "r+"]:
    mode = "r" if filemode is None else filemode
    if mode not in ("r", "r+"):
        raise ValueError(f"filemode must be 'r' or 'r+', got {filemode!r}")
    return mode


def _as_path(filename: Any) -> Path:
    if isinstance(filename, h5py.File):
        return Path(filename.filename)
    if isinstance(filename, bytes):
        filename = filename.decode()
    if not isinstance(filename, str | os.PathLike):
        raise TypeError(f"backed mode needs a file path, got {type(filename).__name__}")
    from .stores import _local_path, is_url

    if is_url(filename):
        raise NotImplementedError(f"{filename}: backed mode needs a local file")
    return _local_path(filename)


def open_backed(adata: Any, filename: Any, filemode: Any) -> None:
    """Constructor hook: back ``adata`` by ``filename`` (opened in ``filemode``)."""
    manager = AnnDataFileManager(_as_path(filename), _check_mode(filemode))
    manager.open()
    adata._file = manager


def _to_memory_mode(adata: Any) -> None:
    """Read the backed X (and raw X) into memory and forget the file."""
    manager = adata._file
    X = adata._get_actual_X()
    adata._X = None if X is None else _load(X)
    raw = adata._raw
    if raw is not None and raw._X is None:
        raw_X = manager.get_raw_X()
        raw._X = None if raw_X is None else _load(raw_X)
    if isinstance(manager, AnnDataFileManager):
        manager._detach()


def _load(x: Any) -> Any:
    if hasattr(x, "to_memory"):
        return x.to_memory()
    return x[()] if getattr(x, "ndim", 1) == 0 else x[...]


def set_filename(adata: Any, value: Any) -> None:
    """``adata.filename = value``: ``None`` loads X into memory and closes the file; a path
    writes the object there (X dense, like anndata) and backs it by that file (``"r+"``)."""
    if adata.is_view:
        raise ValueError("Cannot change the backing file of a view; call `.copy()` first.")
    if value is None:
        if adata.isbacked:
            _to_memory_mode(adata)
        return
    new = _as_path(value)
    if adata.isbacked:
        old = adata.filename
        if new.absolute() == Path(old).absolute():
            return
        from .files import write_h5ad

        write_h5ad(new, adata)  # X streamed from the old file into a complete new file
        adata._file._detach()
        os.remove(old)  # anndata moves the file: the old name is gone
    else:
        from .files import write_h5ad

        as_dense = ("X", "raw/X") if adata._raw is not None else ("X",)
        write_h5ad(new, adata, as_dense=as_dense)
    manager = adata._file if isinstance(adata._file, AnnDataFileManager) else AnnDataFileManager()
    manager.open(new, "r+")
    adata._file = manager
    adata._X = None
    if adata._raw is not None and "raw/X" in manager:
        adata._raw._X = None


def copy_backed(adata: Any, filename: Any) -> Any:
    """``adata.copy(filename)`` of a backed object (or view): write it to ``filename`` and
    open that file in the same mode."""
    if filename is None:
        raise ValueError(
            "To copy an AnnData object in backed mode, pass a filename: `.copy(filename='myfilename.h5ad')`. "
            "To load the object into memory, use `.to_memory()`."
        )
    target = _as_path(filename)
    if target.absolute() == Path(adata.filename).absolute():
        raise ValueError(f"{target}: cannot copy a backed object onto its own backing file")
    from .files import write_h5ad

    write_h5ad(target, adata)
    return read_h5ad_backed(target, adata.file.filemode or "r")


def write_backing_file(adata: Any, **kwargs: Any) -> None:
    """Rewrite the backing file with the current state of ``adata`` (``adata.write_h5ad()``
    without a filename): written to a temporary sibling, renamed into place, reopened."""
    from .files import write_h5ad

    manager = adata._file
    write_h5ad(manager.filename, adata, **kwargs)
    manager.open()


# ============================================================================= read_h5ad
def _stored_shape(f: h5py.File, key: str) -> tuple[int, ...] | None:
    if key not in f:
        return None
    obj = f[key]
    if isinstance(obj, h5py.Dataset):
        return tuple(obj.shape) if obj.shape is not None else None
    return sparse_shape(wrap(obj))


def read_h5ad_backed(filename: Any, mode: Literal["r", "r+"] = "r") -> Any:
    """``read_h5ad(filename, backed=mode)``: everything but ``X`` and ``raw/X`` in memory,
    those two read from the file on access."""
    from ..core import AnnData, Raw
    from .encodings.anndata_group import check_shapes
    from .files import read_root

    mode = _check_mode(mode)
    path = _as_path(filename)
    with h5py.File(path, "r") as f:
        parts = read_root(f, skip=("X", "raw/X"))
        x_shape = _stored_shape(f, "X")
        raw_x_shape = _stored_shape(f, "raw/X") or _stored_shape(f, "raw.X")
    raw = parts.pop("raw", None)
    check_shapes("/", parts)
    n_obs = len(parts["obs"]) if parts.get("obs") is not None else (x_shape[0] if x_shape else None)
    n_vars = len(parts["var"]) if parts.get("var") is not None else (x_shape[1] if x_shape else None)
    if x_shape is not None and (len(x_shape) != 2 or (n_obs, n_vars) != tuple(x_shape)):
        raise FormatError("/X", f"shape {x_shape} does not fit the object ({n_obs}, {n_vars})")
    kwargs: dict[str, Any] = dict(parts)
    if n_obs is not None and (parts.get("obs") is None or parts.get("var") is None):
        kwargs["shape"] = (n_obs, n_vars)
    try:
        adata = AnnData(**kwargs, filename=path, filemode=mode)
    except (ValueError, TypeError) as err:
        if isinstance(err, FormatError):
            raise
        raise FormatError("/", f"stored elements do not form a valid AnnData: {err}") from err
    if raw:
        var = raw.get("var")
        if var is None:
            n = raw_x_shape[1] if raw_x_shape else 0
            var = pd.DataFrame(index=pd.RangeIndex(n).astype(str))
        if raw_x_shape is not None and (raw_x_shape[0] != adata.n_obs or raw_x_shape[1] != len(var)):
            adata.file.close()
            raise FormatError("/raw/X", f"shape {raw_x_shape} does not fit ({adata.n_obs}, {len(var)})")
        adata._raw = Raw._from_parts(adata, None, var, dict(raw.get("varm") or {}), None)
    return adata
