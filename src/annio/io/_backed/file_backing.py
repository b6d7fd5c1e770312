"""Backed mode: an AnnData whose ``X`` (and ``raw/X``) stay in an ``.h5ad`` file.

* :func:`read_h5ad_backed` (``read_h5ad(path, backed="r" | "r+")``) reads everything but
  ``X`` and ``raw/X`` into memory and keeps the file open through an
  :class:`AnnDataFileManager` (``adata.file``).
* ``adata.X`` of a backed object is the ``h5py.Dataset`` (dense) or a
  :class:`CSRDataset`/:class:`CSCDataset` (sparse); views read only their rows.
* The model's backed-mode services (:mod:`annio._core.services`) are provided here: :func:`open_backed`,
  :func:`set_filename`, :func:`copy_backed`.
* The sparse datasets themselves (:func:`sparse_dataset`, :class:`CSRDataset`,
  :class:`CSCDataset`) live in :mod:`annio.io._backed.sparse_datasets` and are re-exported here.

Backed mode is HDF5 only (anndata has no backed zarr either).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import h5py
import pandas as pd

from annio._core.services import provide, service
from annio.errors import FormatError
from annio.io._backed.sparse_datasets import BackedSparseDataset, CSCDataset, CSRDataset, sparse_dataset
from annio.io._encodings.sparse import sparse_shape
from annio.io._root import read_root
from annio.io._storage.adapter import wrap
from annio.io._storage.stores import open_h5_file

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
        self._filemode = mode = _check_mode(self._filemode or None)
        self.close()
        self._file = open_h5_file(self._filename, mode)
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
        f = wrap(self._ensure_open())  # damaged elements: FormatError naming them
        for key in keys:
            if key in self._cache:
                return self._cache[key]
            if key in f:
                value = _backed_element(f[key].raw)
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
        from annio.io._encodings.registry import write_elem

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
    if isinstance(filename, h5py.Group) or type(filename).__module__.startswith("zarr"):
        raise TypeError(
            f"backed mode keeps a whole .h5ad file open and supports only a file path (or an open "
            f"h5py.File) whose root is the AnnData; got {type(filename).__name__} "
            f"{getattr(filename, 'name', None) or getattr(filename, 'path', '')!r}. For an AnnData "
            "stored in a group of a file (e.g. f['mod/rna'] of a MuData file) use "
            "annio.experimental.read_lazy(group) (elements stay on disk) or annio.read_h5ad(group) (in memory)"
        )
    if isinstance(filename, bytes):
        filename = filename.decode()
    if not isinstance(filename, str | os.PathLike):
        raise TypeError(f"backed mode needs a file path, got {type(filename).__name__}")
    from annio.io._storage.stores import _local_path, is_url

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
        write_h5ad = service("write_h5ad")

        write_h5ad(new, adata)  # X streamed from the old file into a complete new file
        adata._file._detach()
        os.remove(old)  # anndata moves the file: the old name is gone
    else:
        write_h5ad = service("write_h5ad")

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
    write_h5ad = service("write_h5ad")

    write_h5ad(target, adata)
    return read_h5ad_backed(target, adata.file.filemode or "r")


def write_backing_file(adata: Any, **kwargs: Any) -> None:
    """Rewrite the backing file with the current state of ``adata`` (``adata.write_h5ad()``
    without a filename): written to a temporary sibling, renamed into place, reopened."""
    write_h5ad = service("write_h5ad")

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
    from annio._core import AnnData, Raw
    from annio.io._encodings.anndata_group import check_shapes

    mode = _check_mode(mode)
    path = _as_path(filename)
    with open_h5_file(path, "r") as f:
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


provide("open_backed", open_backed)
provide("set_filename", set_filename)
provide("copy_backed", copy_backed)
