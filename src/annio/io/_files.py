"""Whole-object readers and writers: ``read_h5ad``, ``read_zarr``, ``write_h5ad``, ``write_zarr``.

Reading builds the object from the root's children (so files of every anndata era read the
same way, see :mod:`annio.io._encodings.legacy`). Writing to a path never destroys what was there on
failure: the new file or store is written into a hidden temporary sibling and only renamed
into place when complete; a failed write deletes the partial output and re-raises. Writing
into an open ``h5py.File``/``Group`` or ``zarr.Group`` (or a zarr store object) writes in
place.
"""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import h5py
import pandas as pd
import zarr
from scipy import sparse

from annio._bridge import as_annio
from annio._core.services import provide
from annio.io._backed.file_backing import read_h5ad_backed
from annio.io._encodings.registry import Writer
from annio.io._root import build_adata, normalize_as_sparse, read_root, sparse_format
from annio.io._storage.adapter import wrap
from annio.io._storage.gc_pause import gc_paused
from annio.io._storage.stores import (
    H5_ALIGNMENT,
    _local_path,
    is_url,
    is_zip_path,
    open_h5_read,
    open_zarr_read,
    zarrs_context,
)
from annio.io._storage.zarr_consolidated import writable_group
from annio.io._storage.zarr_meta import consolidate

__all__ = ["read_h5ad", "read_zarr", "write_h5ad", "write_zarr", "atomic_output", "zarr_read_parts"]

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
        :mod:`annio.io._backed.file_backing`.
    as_sparse
        ``"X"`` and/or ``"raw/X"``: read these (stored dense) as sparse matrices.
    as_sparse_fmt
        ``scipy.sparse.csr_matrix`` (default) or ``csc_matrix`` (or ``"csr"``/``"csc"``).
    chunk_size
        Rows read per block when converting a dense array to sparse.
    storage_options
        For URLs: endpoint, credentials, ``anon`` ... (see :mod:`annio.io._storage.remote`).
    """
    if backed not in (None, False):
        mode = "r+" if backed is True else backed
        if mode not in ("r", "r+"):
            raise ValueError(f"backed must be 'r', 'r+', True or None, got {backed!r}")
        return _read_h5ad_backed(filename, mode)
    targets = normalize_as_sparse(as_sparse)
    fmt = sparse_format(as_sparse_fmt)
    return _read_h5ad_parts(filename, storage_options, dict(as_sparse=targets, sparse_fmt=fmt, chunk_size=chunk_size))


def _read_h5ad_parts(filename: Any, storage_options: Mapping[str, Any] | None, kwargs: dict[str, Any], data: Any = None) -> Any:
    """Read an h5ad (a URL: fetched with concurrent large ranges first, see
    :mod:`annio.io._storage.h5_remote`; ``data``: its bytes, already fetched)."""
    from annio.io._storage import h5_remote
    from annio.io._storage.stores import is_url

    if is_url(filename):
        opener = h5_remote.open_h5_url_read(filename, storage_options=storage_options, data=data)
    else:
        opener = open_h5_read(filename, storage_options=storage_options)
    with gc_paused(), opener as f:
        parts = read_root(f, **kwargs)
        return build_adata(parts)


def _read_h5ad_backed(filename: Any, mode: str) -> Any:
    """Backed mode: everything but ``X`` (and ``raw/X``) read with ``read_root(..., skip=
    ("X", "raw/X"))``, ``X`` left in the file. Comes with the backed-mode issue."""
    return read_h5ad_backed(filename, mode)


def read_zarr(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Any:
    """Read a zarr store (v2 or v3 format; directory, ``.zip`` file, ``s3://`` or
    ``http(s)://`` URL, store object or ``zarr.Group``) into an :class:`annio.AnnData`.
    Consolidated metadata is used when present (one request to open a remote store);
    ``storage_options`` configure URL access (endpoint, credentials, ``anon``)."""
    from annio.io._storage import prefetch

    with gc_paused(), zarrs_context(), open_zarr_read(store, storage_options=storage_options) as group:
        with prefetch.prefetching(group, prefetch.plan_tree(group)):  # remote: all objects at once
            return zarr_read_parts(group)


def zarr_read_parts(group: Any) -> Any:
    """The AnnData in an opened zarr group (its objects already prefetched when remote);
    shared by :func:`read_zarr` and :func:`annio.aio.read_zarr`."""
    return build_adata(read_root(group))


# ============================================================================= writing
def _strings_to_categoricals(df: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy of ``df`` whose string columns with repeated values are categoricals
    (natsorted categories); ``df`` itself is never modified."""
    from annio._core.names import strings_to_categoricals

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
    dataset_kwargs: Mapping[str, Any] = {},
    **kwargs: Any,
) -> None:
    """Write ``adata`` (an :class:`annio.AnnData` or an ``anndata.AnnData``) as an ``.h5ad`` file.

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
    adata = as_annio(adata)  # an anndata.AnnData is written without copying its data
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
    with gc_paused(), atomic_output(target, directory=False) as tmp:
        with h5py.File(tmp, "w", **H5_ALIGNMENT) as f:
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
    """Write ``adata`` (an :class:`annio.AnnData` or an ``anndata.AnnData``) as a zarr store
    (a path, ``.zip`` path, ``s3://`` URL, store or group).

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
        For ``s3://`` URLs: endpoint, credentials (see :mod:`annio.io._storage.remote`).
    **dataset_kwargs
        Options for every array (``compressors``, ``shards``, ...).
    """
    from annio.settings import settings

    adata = as_annio(adata)  # an anndata.AnnData is written without copying its data
    fmt = zarr_format if zarr_format is not None else settings.zarr_write_format
    if fmt not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {fmt!r}")
    callback = _make_write_callback(convert_strings=convert_strings_to_categoricals, x_chunks=chunks)

    def write_into(group: zarr.Group) -> None:
        _write_root(group, adata, callback, dataset_kwargs)
        if consolidate_metadata:
            consolidate(group.store, group.path or None)

    with gc_paused(), zarrs_context():
        if isinstance(store, zarr.Group):
            write_into(store)
            return
        if not isinstance(store, str | os.PathLike):  # a zarr store object: in place
            write_into(zarr.open_group(store, mode="w", zarr_format=fmt))
            return
        if is_url(store):  # object stores have no rename: written in place
            from annio.io._storage.remote import zarr_store_from_url

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


provide("write_h5ad", write_h5ad)
provide("write_zarr", write_zarr)
