"""Whole-object readers and writers: ``read_h5ad``, ``read_zarr``, ``write_h5ad``, ``write_zarr``.

Reading builds the object from the root's children (so files of every anndata era read the
same way, see :mod:`annio.io.legacy`). Writing to a path never destroys what was there on
failure: the new file or store is written into a hidden temporary sibling and only renamed
into place when complete; a failed write deletes the partial output and re-raises. Writing
into an open ``h5py.File``/``Group`` or ``zarr.Group`` (or a zarr store object) writes in
place.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import h5py
import pandas as pd
import zarr
from scipy import sparse

from ..errors import AnnioWarning, FormatError
from . import legacy
from .registry import Reader, Writer, _ensure_encodings
from .storage import StorageArray, StorageGroup, wrap
from .stores import _local_path, is_url, is_zip_path, open_h5_read, open_zarr_read, zarrs_context
from .zarr_consolidated import writable_group

__all__ = ["read_h5ad", "read_zarr", "write_h5ad", "write_zarr", "read_root", "atomic_output"]

# children of the root group an AnnData object is built from
_PARTS = ("X", "obs", "var", "uns", "obsm", "varm", "obsp", "varp", "layers", "raw")


# ============================================================================= reading
def _normalize_as_sparse(as_sparse: str | Sequence[Any]) -> set[str]:
    items = [as_sparse] if isinstance(as_sparse, str) else list(as_sparse)
    out = set()
    for item in items:
        if item in {("raw", "X"), "raw.X", "raw/X"}:
            out.add("raw/X")
        elif item == "X":
            out.add("X")
        else:
            raise NotImplementedError("Currently only `X` and `raw/X` can be read as sparse.")
    return out


def _sparse_format(fmt: Any) -> Literal["csr", "csc"]:
    if fmt is None:
        return "csr"
    if isinstance(fmt, str) and fmt in ("csr", "csc"):
        return fmt  # type: ignore[return-value]
    if isinstance(fmt, type) and issubclass(fmt, sparse.csr_matrix | sparse.csr_array):
        return "csr"
    if isinstance(fmt, type) and issubclass(fmt, sparse.csc_matrix | sparse.csc_array):
        return "csc"
    raise NotImplementedError("Dense formats can only be read to CSR or CSC matrices at this time.")


def _read_dense_as_sparse(node: StorageArray, fmt: Literal["csr", "csc"], chunk_size: int) -> sparse.spmatrix:
    """Read a dense 2-D array block by block (``chunk_size`` rows) into a sparse matrix."""
    if node.ndim != 2:
        raise FormatError(node.path, f"can only read a 2-D array as sparse, found shape {node.shape}")
    n = node.shape[0]
    step = max(1, int(chunk_size))
    blocks = [sparse.csr_matrix(node.read((slice(i, min(i + step, n)), slice(None)))) for i in range(0, n, step)]
    out = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix(node.shape, dtype=node.dtype)
    return out.asformat(fmt)


class _RootReader:
    """Reads the parts of an AnnData object from a root group, applying the legacy fix-ups."""

    def __init__(self, root: StorageGroup, *, as_sparse: set[str] = frozenset(), sparse_fmt: str = "csr", chunk_size: int = 6000, skip: Sequence[str] = ()) -> None:
        _ensure_encodings()
        self.root = root
        self.reader = Reader()
        self.as_sparse = as_sparse
        self.sparse_fmt = sparse_fmt
        self.chunk_size = chunk_size
        self.skip = set(skip)

    def read_x(self, node: Any, name: str) -> Any:
        if name in self.as_sparse and isinstance(node, StorageArray):
            return _read_dense_as_sparse(node, self.sparse_fmt, self.chunk_size)  # type: ignore[arg-type]
        return self.reader.read_elem(node)

    def read_dataframe(self, node: Any) -> pd.DataFrame:
        if isinstance(node, StorageArray):
            return legacy.read_dataframe_legacy(node)  # < 0.7: a compound dataset
        return self.reader.read_elem(node)

    def read_raw(self, node: StorageGroup) -> dict[str, Any]:
        if not isinstance(node, StorageGroup):
            raise FormatError(node.path, "expected a group for raw, found an array")
        raw: dict[str, Any] = {}
        for key in node.keys():
            child = node[key]
            if key == "X":
                if "raw/X" not in self.skip:
                    raw["X"] = self.read_x(child, "raw/X")
            elif key == "var":
                raw["var"] = self.read_dataframe(child)
            elif key == "varm":
                raw["varm"] = self.reader.read_elem(child)
        return raw

    def read_parts(self) -> dict[str, Any]:
        root = self.root
        keys = root.keys()
        if "raw" in keys and any(k.startswith("raw.") for k in keys):
            raise FormatError(root.path, f"{root.filename} has both legacy and current raw formats.")
        parts: dict[str, Any] = {}
        for key in keys:
            if key.startswith("raw.") or key in self.skip:
                continue
            if key not in _PARTS:
                warnings.warn(
                    f"{root.path.rstrip('/')}/{key}: not an AnnData element (expected one of {', '.join(_PARTS)}); ignored",
                    AnnioWarning,
                    stacklevel=4,
                )
                continue
            node = root[key]
            if key == "X":
                parts["X"] = self.read_x(node, "X")
            elif key in ("obs", "var"):
                parts[key] = self.read_dataframe(node)
            elif key == "raw":
                if isinstance(node, StorageArray) and self.reader.read_elem(node) is None:
                    continue  # anndata 0.13's zarr writer stores a missing raw as a `null` element
                parts["raw"] = self.read_raw(node)
            else:
                parts[key] = self.reader.read_elem(node)
        if "raw.X" in keys or "raw.var" in keys or "raw.varm" in keys:
            read_x = (lambda n: self.read_x(n, "raw/X")) if "raw/X" not in self.skip else None
            raw = legacy.read_legacy_raw(root, self.reader, read_x)
            if "raw/X" in self.skip:
                raw.pop("X", None)
            parts["raw"] = raw
        obs_was_dataset = "obs" in keys and isinstance(root["obs"], StorageArray)
        legacy.apply_legacy_fixups(parts, obs_was_dataset=obs_was_dataset)
        return parts


def read_root(group: Any, **kwargs: Any) -> dict[str, Any]:
    """The parts (``X``, ``obs``, ``var``, ``uns``, ``raw`` as a mapping, ...) of the AnnData
    stored in ``group``, with legacy fix-ups applied. Used by the readers and backed mode."""
    root = wrap(group)
    if not isinstance(root, StorageGroup):
        raise FormatError(root.path, "expected an AnnData group, found an array")
    return _RootReader(root, **kwargs).read_parts()


def _build_adata(parts: dict[str, Any]) -> Any:
    """Construct an :class:`annio.AnnData` from its parts (raw given as a mapping)."""
    from .encodings.anndata_group import build_anndata

    parts = dict(parts)
    if not parts.get("raw", True):  # an empty raw mapping: no raw
        parts.pop("raw")
    return build_anndata("/", parts)


def read_h5ad(
    filename: str | os.PathLike | h5py.File | h5py.Group,
    backed: Literal["r", "r+"] | bool | None = None,
    *,
    as_sparse: str | Sequence[str] = (),
    as_sparse_fmt: Any = None,
    chunk_size: int = 6000,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Read an ``.h5ad`` file into an :class:`annio.AnnData`.

    Parameters
    ----------
    filename
        Path of the file, an ``s3://`` or ``http(s)://`` URL, or an open
        ``h5py.File``/``Group``.
    backed
        ``"r"``/``"r+"`` (or ``True`` = ``"r+"``): keep ``X`` (and ``raw/X``) on disk; see
        :mod:`annio.io.backed`.
    as_sparse
        ``"X"`` and/or ``"raw/X"``: read these (stored dense) as sparse matrices.
    as_sparse_fmt
        ``scipy.sparse.csr_matrix`` (default) or ``csc_matrix`` (or ``"csr"``/``"csc"``).
    chunk_size
        Rows read per block when converting a dense array to sparse.
    storage_options
        For URLs: endpoint, credentials, ``anon`` ... (see :mod:`annio.io.remote`).
    """
    if backed not in (None, False):
        mode = "r+" if backed is True else backed
        if mode not in ("r", "r+"):
            raise ValueError(f"backed must be 'r', 'r+', True or None, got {backed!r}")
        return _read_h5ad_backed(filename, mode)
    targets = _normalize_as_sparse(as_sparse)
    fmt = _sparse_format(as_sparse_fmt)
    with open_h5_read(filename, storage_options=storage_options) as f:
        parts = read_root(f, as_sparse=targets, sparse_fmt=fmt, chunk_size=chunk_size)
    return _build_adata(parts)


def _read_h5ad_backed(filename: Any, mode: str) -> Any:
    """Backed mode: everything but ``X`` (and ``raw/X``) read with ``read_root(..., skip=
    ("X", "raw/X"))``, ``X`` left in the file. Comes with the backed-mode issue."""
    from .backed import read_h5ad_backed

    return read_h5ad_backed(filename, mode)


def read_zarr(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Any:
    """Read a zarr store (v2 or v3 format; directory, ``.zip`` file, ``s3://`` or
    ``http(s)://`` URL, store object or ``zarr.Group``) into an :class:`annio.AnnData`.
    Consolidated metadata is used when present (one request to open a remote store);
    ``storage_options`` configure URL access (endpoint, credentials, ``anon``)."""
    with zarrs_context(), open_zarr_read(store, storage_options=storage_options) as group:
        parts = read_root(group)
    return _build_adata(parts)


# ============================================================================= writing
def _strings_to_categoricals(df: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy of ``df`` whose string columns with repeated values are categoricals
    (natsorted categories); ``df`` itself is never modified."""
    from ..core.names import strings_to_categoricals

    return strings_to_categoricals(df)


def _is_sparse(value: Any) -> bool:
    return sparse.issparse(value) or type(value).__name__ in {"CSRDataset", "CSCDataset", "_CSRDataset", "_CSCDataset"}


def _make_write_callback(
    *,
    convert_strings: bool,
    as_dense: set[str] = frozenset(),
    x_chunks: tuple[int, ...] | None = None,
) -> Callable[..., None]:
    """The write callback: converts obs/var/raw.var string columns (on copies), writes
    ``as_dense`` elements densely and applies ``chunks`` to a dense root ``X``."""

    def callback(write_func: Any, store: Any, elem_name: str, elem: Any, *, iospec: Any, dataset_kwargs: Mapping[str, Any]) -> None:
        parent = wrap(store).path.rstrip("/")
        path = f"{parent}/{elem_name.lstrip('/')}"
        if convert_strings and path in ("/obs", "/var", "/raw/var") and isinstance(elem, pd.DataFrame):
            elem = _strings_to_categoricals(elem)
        if path in ("/X", "/raw/X"):
            if x_chunks is not None and path == "/X" and not _is_sparse(elem):
                dataset_kwargs = {**dataset_kwargs, "chunks": tuple(x_chunks)}
            if path.lstrip("/") in as_dense and _is_sparse(elem):
                dense = elem.toarray() if hasattr(elem, "toarray") else elem.to_memory().toarray()
                Writer(callback=callback).write_elem(store, elem_name, dense, dataset_kwargs=dataset_kwargs)
                return
        write_func(store, elem_name, elem, dataset_kwargs=dataset_kwargs)

    return callback


def _write_root(group: Any, adata: Any, callback: Callable[..., None], dataset_kwargs: Mapping[str, Any]) -> None:
    """Replace the content of ``group`` (a root) with ``adata``."""
    _ensure_encodings()
    with writable_group(group) as root:
        if root.path == "/":
            root.clear()
        Writer(callback=callback).write_elem(root, "/", adata, dataset_kwargs=dataset_kwargs)
        root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})


def _hidden_sibling(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.annio-{tag}-{uuid.uuid4().hex[:10]}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def atomic_output(target: str | os.PathLike, *, directory: bool) -> Iterator[Path]:
    """Yield a temporary sibling path of ``target`` to write into; on success move it into
    place (a file with ``os.replace``; a directory by renaming the old one away, renaming
    the new one in and deleting the old one), on any failure delete it and re-raise."""
    target = Path(target).absolute()
    if not target.parent.is_dir():
        raise FileNotFoundError(f"directory {str(target.parent)!r} does not exist")
    tmp = _hidden_sibling(target, "tmp")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    try:
        if not directory and not target.is_dir():
            os.replace(tmp, target)
            return
        old = None
        if target.exists() or target.is_symlink():
            old = _hidden_sibling(target, "old")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            _remove(old)
    except BaseException:
        _remove(tmp)
        raise


def write_h5ad(
    filepath: str | os.PathLike | h5py.File | h5py.Group,
    adata: Any,
    *,
    compression: str | None = None,
    compression_opts: Any = None,
    as_dense: str | Sequence[str] = (),
    convert_strings_to_categoricals: bool = True,
    dataset_kwargs: Mapping[str, Any] = {},  # noqa: B006 - read only
    **kwargs: Any,
) -> None:
    """Write ``adata`` as an ``.h5ad`` file.

    The caller's object is not modified (string columns are converted on copies). Writing to
    a path writes a hidden temporary file next to it and renames it into place, so an
    existing file survives a failed write. An open ``h5py.File``/``Group`` is written in place.

    Parameters
    ----------
    compression, compression_opts
        HDF5 compression for every non-scalar dataset (e.g. ``"gzip"``, ``4``).
    as_dense
        ``"X"`` and/or ``"raw/X"``: write these sparse matrices densely.
    convert_strings_to_categoricals
        Write string columns of obs/var/raw.var with repeated values as categoricals.
    dataset_kwargs, **kwargs
        Further options for every dataset (``chunks``, ``shuffle``, ...).
    """
    dense = {"raw/X" if d in ("raw.X", ("raw", "X")) else d for d in ([as_dense] if isinstance(as_dense, str) else as_dense)}
    if not dense <= {"X", "raw/X"}:
        raise NotImplementedError("Currently, only `X` and `raw/X` are supported values in `as_dense`")
    ds_kwargs = {**dict(dataset_kwargs), **kwargs}
    if compression is not None:
        ds_kwargs["compression"] = compression
    if compression_opts is not None:
        ds_kwargs["compression_opts"] = compression_opts
    callback = _make_write_callback(convert_strings=convert_strings_to_categoricals, as_dense=dense)
    if isinstance(filepath, h5py.Group):
        _write_root(filepath, adata, callback, ds_kwargs)
        return
    if is_url(filepath):
        raise NotImplementedError(f"{filepath}: writing h5ad to remote locations is not supported")
    target = _local_path(filepath)
    with atomic_output(target, directory=False) as tmp:
        with h5py.File(tmp, "w") as f:
            _write_root(f, adata, callback, ds_kwargs)


def write_zarr(
    store: Any,
    adata: Any,
    *,
    chunks: tuple[int, ...] | None = None,
    zarr_format: Literal[2, 3] | None = None,
    consolidate_metadata: bool = True,
    convert_strings_to_categoricals: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    **dataset_kwargs: Any,
) -> None:
    """Write ``adata`` as a zarr store (a path, ``.zip`` path, ``s3://`` URL, store or group).

    Parameters
    ----------
    store
        A directory path, a path ending in ``.zip`` (a zip archive is written), a zarr store
        object or a ``zarr.Group`` (written in place). Paths are written to a hidden
        temporary sibling and swapped in only when the write succeeded.
    chunks
        Chunk shape of a dense root ``X``.
    zarr_format
        2 or 3; defaults to ``annio.settings.zarr_write_format`` (a group keeps its own).
    consolidate_metadata
        Consolidate the metadata afterwards (one read to open the store).
    convert_strings_to_categoricals
        Write string columns of obs/var/raw.var with repeated values as categoricals.
    storage_options
        For ``s3://`` URLs: endpoint, credentials (see :mod:`annio.io.remote`).
    **dataset_kwargs
        Options for every array (``compressors``, ``shards``, ...).
    """
    from ..settings import settings

    fmt = zarr_format if zarr_format is not None else settings.zarr_write_format
    if fmt not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {fmt!r}")
    callback = _make_write_callback(convert_strings=convert_strings_to_categoricals, x_chunks=chunks)

    def write_into(group: zarr.Group) -> None:
        _write_root(group, adata, callback, dataset_kwargs)
        if consolidate_metadata:
            with warnings.catch_warnings():  # "not part of the zarr v3 specification" (as anndata)
                warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
                zarr.consolidate_metadata(group.store, path=group.path or None)

    with zarrs_context():
        if isinstance(store, zarr.Group):
            write_into(store)
            return
        if not isinstance(store, str | os.PathLike):  # a zarr store object: in place
            write_into(zarr.open_group(store, mode="w", zarr_format=fmt))
            return
        if is_url(store):  # object stores have no rename: written in place
            from .remote import zarr_store_from_url

            write_into(zarr.open_group(zarr_store_from_url(store, storage_options=storage_options, read_only=False), mode="w", zarr_format=fmt))
            return
        target = _local_path(store)
        if is_zip_path(target):
            # zip archives cannot rewrite entries: build a directory store, then zip it up
            with atomic_output(target, directory=False) as tmp_zip:
                staging = _hidden_sibling(target, "staging")
                try:
                    write_into(zarr.open_group(zarr.storage.LocalStore(staging), mode="w", zarr_format=fmt))
                    _zip_directory(staging, tmp_zip)
                finally:
                    _remove(staging)
            return
        with atomic_output(target, directory=True) as tmp:
            write_into(zarr.open_group(zarr.storage.LocalStore(tmp), mode="w", zarr_format=fmt))


def _zip_directory(source: Path, dest: Path) -> None:
    """Zip the content of ``source`` into ``dest`` (stored, not deflated: zarr chunks are
    already compressed), with ``/``-separated relative names as zarr's ZipStore expects."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                zf.write(full, full.relative_to(source).as_posix())
