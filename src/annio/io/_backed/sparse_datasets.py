"""``sparse_dataset``: CSR/CSC matrices in an h5ad file or zarr store, read piece by piece.

:func:`sparse_dataset` works for HDF5 and zarr groups and returns a :class:`CSRDataset` or
:class:`CSCDataset`; indexing reads only the needed ``data``/``indices`` ranges (see
:mod:`annio.io._storage.sparse_read`), ``append`` grows the stored arrays in place. Backed mode
(:mod:`annio.io._backed.file_backing`) uses them for a sparse ``X``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from annio.io._encodings.sparse import read_components, result_class, stored_parts, validate_indptr
from annio.io._storage.adapter import StorageGroup, wrap
from annio.io._storage.sparse_read import read_major_rows, read_major_slice

__all__ = ["BackedSparseDataset", "CSRDataset", "CSCDataset", "sparse_dataset"]

_FORMATS = ("csr", "csc")


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


class _Full:
    """The whole axis (``slice(None)``, normalised)."""


_FULL = _Full()


def _positions(idx: Any, n: int) -> np.ndarray:
    """A normalised axis indexer as an array of positions."""
    if idx is _FULL:
        return np.arange(n, dtype=np.int64)
    if isinstance(idx, slice):
        return np.arange(*idx.indices(n), dtype=np.int64)
    if isinstance(idx, int):
        return np.array([idx], dtype=np.int64)
    return np.asarray(idx, dtype=np.int64)


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
    """The stored arrays of a dataset, as :mod:`annio.io._storage.sparse_read` wants them."""

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
        self._node = node
        self._data, self._indices, self._indptr_node, self._shape = stored_parts(node, fmt)
        self._should_cache_indptr = should_cache_indptr
        self._indptr_cache: np.ndarray | None = None

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
        cls = result_class(self.format)
        return out if type(out) is cls else cls(out)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Overwrite stored entries in place (anndata 0.12's backed sparse assignment).

        Every selected position must already be stored: the sparsity structure cannot change
        on disk (ValueError). Row and column selections combine as an outer product.
        """
        row, col = _split_index(index)
        n_rows, n_cols = self.shape
        rows = _positions(_normalize_axis(row, n_rows, 0), n_rows)
        cols = _positions(_normalize_axis(col, n_cols, 1), n_cols)
        values = value.toarray() if sp.issparse(value) else np.asarray(value)
        try:
            values = np.broadcast_to(values, (len(rows), len(cols)))
        except ValueError as err:
            raise ValueError(f"{self._node.path}: cannot assign shape {values.shape} to a ({len(rows)}, {len(cols)}) selection") from err
        major, minor = (rows, cols) if self.format == "csr" else (cols, rows)
        if self.format == "csc":
            values = values.T
        if not len(major) or not len(minor):
            return
        indptr = self._indptr()
        if indptr is None:
            indptr = self._indptr_node.read().astype(np.int64, copy=False)
        start, stop = int(indptr[major].min()), int(indptr[major + 1].max())
        stored_minor = self._indices.read(slice(start, stop))
        block = self._data.read(slice(start, stop))
        for i, m in enumerate(major):
            lo, hi = int(indptr[m]) - start, int(indptr[m + 1]) - start
            where = {int(k): lo + p for p, k in enumerate(stored_minor[lo:hi])}
            try:
                block[[where[int(k)] for k in minor]] = values[i]
            except KeyError:
                raise ValueError(
                    f"{self._node.path}: You cannot change the sparsity structure of a SparseDataset "
                    "(only stored entries can be assigned)."
                ) from None
        self._data.write(slice(start, stop), block)

    def to_memory(self) -> sp.csr_matrix | sp.csc_matrix | sp.csr_array | sp.csc_array:
        """The whole matrix in memory (validated)."""
        data, indices, indptr, shape = read_components(self._node, self.format)
        return result_class(self.format)((data, indices, indptr), shape=shape, copy=False)

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
