"""Store-likes → opened h5py files and zarr groups.

Everything that turns what a user passes (a path, a URL, a zarr store object, an open
``h5py.File`` or ``zarr.Group``) into something the storage adapter can wrap lives here:

* :func:`is_h5ad` — cheap format sniffing (extension, then HDF5 magic bytes);
* :func:`zarr_store` — the one place that maps a store-like to a zarr store object
  (local directory, ``.zip`` file; ``s3://`` / ``http(s)://`` plug in here later);
* :func:`open_read` / :func:`open_write` — context managers yielding an opened h5py file or
  zarr group, closing only what they opened themselves;
* :func:`zarrs_context` — run zarr I/O through the ``zarrs`` codec pipeline when enabled.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import h5py
import zarr
from zarr.abc.store import Store

from annio.errors import FormatError

#: HDF5 files annio creates start objects of 1 MiB or more (the uncompressed chunks of the
#: streamed writers among them) on 4 KiB boundaries, so they can be written past the page
#: cache (:class:`~annio.io._storage.direct_write.DirectSink`); at most 4 KiB per object.
H5_ALIGNMENT = {"alignment_threshold": 1 << 20, "alignment_interval": 4096}

__all__ = [
    "HDF5_MAGIC",
    "is_url",
    "is_h5ad",
    "is_zip_path",
    "zarr_store",
    "open_read",
    "open_h5_file",
    "open_zarr_group",
    "open_h5_read",
    "open_zarr_read",
    "open_write",
    "zarrs_context",
]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_H5_EXTENSIONS = (".h5ad", ".h5", ".hdf5", ".hdf")
_ZARR_EXTENSIONS = (".zarr", ".zip")

StoreLike = str | os.PathLike | Store | MutableMapping | zarr.Group | h5py.Group


def is_url(store: Any) -> bool:
    """Whether ``store`` is a string naming a remote location (``scheme://...``)."""
    from annio.io._storage.remote import is_url as _is_url

    return _is_url(store)


def _local_path(store: str | os.PathLike) -> Path:
    text = os.fspath(store)
    if isinstance(text, bytes):
        text = text.decode()
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser()


def is_zip_path(store: Any) -> bool:
    """Whether ``store`` is a local path naming a zip archive (``*.zip``)."""
    return isinstance(store, str | os.PathLike) and not is_url(store) and _local_path(store).suffix.lower() == ".zip"


def is_h5ad(store: Any) -> bool:
    """Whether ``store`` is (or names) an HDF5 file.

    h5py objects are HDF5; zarr objects and URLs are not. A local path is HDF5 when its
    first 8 bytes are the HDF5 signature; when the file does not exist (yet), its extension
    decides (``.h5ad``, ``.h5``, ``.hdf5``).
    """
    if isinstance(store, h5py.HLObject):
        return True
    if isinstance(store, zarr.Group | zarr.Array | Store | MutableMapping):
        return False
    if is_url(store):
        return store.split("?", 1)[0].rstrip("/").lower().endswith(_H5_EXTENSIONS)
    if not isinstance(store, str | os.PathLike):
        return False
    path = _local_path(store)
    if path.is_file():
        try:
            with path.open("rb") as fh:
                return fh.read(len(HDF5_MAGIC)) == HDF5_MAGIC
        except OSError:
            return False
    if path.is_dir():
        return False
    return path.suffix.lower() in _H5_EXTENSIONS


# ----------------------------------------------------------------------------- zarr
def zarr_store(store: Any, *, mode: Literal["r", "w", "a"] = "r", storage_options: Mapping[str, Any] | None = None) -> Any:
    """Map a store-like to something ``zarr.open_group`` accepts.

    * ``zarr`` store objects and mappings pass through unchanged;
    * a path ending in ``.zip`` becomes a :class:`zarr.storage.ZipStore`;
    * any other local path (or ``file://`` URL) becomes a :class:`zarr.storage.LocalStore`;
    * remote URLs (``s3://``, ``http(s)://``, ...) are the extension point for remote stores.
    """
    if isinstance(store, zarr.Group):
        return store.store
    if isinstance(store, Store | MutableMapping):
        return store
    if is_url(store):
        from annio.io._storage.remote import zarr_store_from_url

        return zarr_store_from_url(store, storage_options=storage_options, read_only=mode == "r")
    if isinstance(store, str | os.PathLike):
        path = _local_path(store)
        if path.suffix.lower() == ".zip":
            return zarr.storage.ZipStore(path, mode="r" if mode == "r" else mode)
        return zarr.storage.LocalStore(path, read_only=mode == "r")
    raise TypeError(f"cannot open {type(store).__name__} as a zarr store")


@contextmanager
def zarrs_context() -> Iterator[None]:
    """Use the ``zarrs`` codec pipeline inside the block when ``settings.use_zarrs`` is on and
    ``zarrs`` is importable; its fallback warnings for unsupported arrays are silenced."""
    from importlib.util import find_spec

    from annio.settings import settings

    if not settings.use_zarrs or find_spec("zarrs") is None:
        yield
        return
    with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unsupported by ZarrsCodecPipeline.*", category=UserWarning)
        yield


# ----------------------------------------------------------------------------- opening
def open_h5_file(path: str | os.PathLike, mode: Literal["r", "r+"] = "r") -> h5py.File:
    """Open a local HDF5 file; a truncated or otherwise unreadable one is a FormatError."""
    path = _local_path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    try:
        return h5py.File(path, mode)
    except OSError as err:
        if mode != "r" and "lock" in str(err).lower():
            raise
        raise FormatError("/", f"{path} is not a readable HDF5 file (truncated or corrupt?): {err}") from err


def _json_error(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, json.JSONDecodeError | UnicodeDecodeError):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def open_zarr_group(zstore: Any, *, where: Any = None, consolidated: bool | None = None) -> tuple[zarr.Group, bool]:
    """Open the root group of a zarr store read-only; returns it and whether consolidated
    metadata is in use.

    Metadata that is not JSON, or no group at all, is a :class:`FormatError` naming the
    root. Consolidated metadata that parses as JSON but that zarr rejects (e.g. an array
    with chunk sizes below 1) is set aside with a warning: each element's own document is
    read instead, so the error, if the element's own metadata is damaged too, names it.
    """
    where = zstore if where is None else where
    try:
        if consolidated is None or consolidated:
            from annio.io._storage.zarr_tree_plan import open_remote_tree

            tree_root = open_remote_tree(zstore)  # remote + consolidated v3: parsed once, by annio
            if tree_root is not None:
                return tree_root, True
            try:
                group = zarr.open_group(zstore, mode="r", use_consolidated=consolidated)
            except (ValueError, TypeError, KeyError, ZeroDivisionError) as err:
                if _json_error(err) or isinstance(err, zarr.errors.GroupNotFoundError):
                    raise
                if consolidated:  # asked for consolidated metadata only
                    raise
                warnings.warn(
                    f"{where}: consolidated metadata could not be used ({err}); reading each element's own metadata",
                    UserWarning,
                    stacklevel=3,
                )
                return zarr.open_group(zstore, mode="r", use_consolidated=False), False
            return group, getattr(group.metadata, "consolidated_metadata", None) is not None
        return zarr.open_group(zstore, mode="r", use_consolidated=False), False
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise FormatError("/", f"{where}: no zarr group found: {err}") from err
    except (ValueError, KeyError, OSError, TypeError, ZeroDivisionError) as err:
        if _json_error(err):
            raise FormatError("/", f"{where}: the root's metadata is not valid JSON: {err}") from err
        raise FormatError("/", f"{where}: could not open zarr group: {err}") from err


@contextmanager
def open_h5_read(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Iterator[h5py.Group]:
    """Yield an h5py group to read from; paths and URLs are opened read-only and closed
    afterwards."""
    if isinstance(store, h5py.Group):
        yield store
        return
    if is_url(store):
        from annio.io._storage.remote import open_h5_file_from_url

        with open_h5_file_from_url(store, storage_options=storage_options) as f:
            yield f
        return
    if not isinstance(store, str | os.PathLike):
        raise TypeError(f"cannot read h5ad from {type(store).__name__}")
    f = open_h5_file(store, "r")
    try:
        yield f
    finally:
        f.close()


@contextmanager
def open_zarr_read(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Iterator[zarr.Group]:
    """Yield a zarr group to read from (consolidated metadata is used when present)."""
    if isinstance(store, zarr.Group):
        yield store
        return
    if isinstance(store, str | os.PathLike) and not is_url(store) and not _local_path(store).exists():
        raise FileNotFoundError(f"No such file or directory: {str(_local_path(store))!r}")
    zstore = zarr_store(store, mode="r", storage_options=storage_options)
    try:
        from annio.io._storage.zarr_tree import open_tree

        group = open_tree(zstore)  # local + consolidated: no zarr object per node
        if group is None:
            group, _ = open_zarr_group(zstore, where=store)
        yield group
    finally:
        if zstore is not store and isinstance(zstore, zarr.storage.ZipStore):
            zstore.close()


@contextmanager
def open_read(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Iterator[h5py.Group | zarr.Group]:
    """Yield an opened h5py file or zarr group for ``store``, whichever format it is."""
    opener = open_h5_read if is_h5ad(store) else open_zarr_read
    with opener(store, storage_options=storage_options) as group:
        yield group


@contextmanager
def open_write(store: Any, zarr_format: int | None = None, *, h5: bool | None = None) -> Iterator[h5py.Group | zarr.Group]:
    """Yield a fresh (emptied) root group to write into, closing what was opened here.

    An open ``h5py.File``/``Group`` or ``zarr.Group`` is written in place. No temporary files
    are involved here; :mod:`annio.io._files` handles atomic replacement of paths.
    """
    if isinstance(store, h5py.Group | zarr.Group):
        yield store
        return
    if h5 is None:
        h5 = is_h5ad(store)
    if h5:
        f = h5py.File(_local_path(store), "w", **H5_ALIGNMENT)
        try:
            yield f
        finally:
            f.close()
        return
    if zarr_format is None:
        from annio.settings import settings

        zarr_format = settings.zarr_write_format
    zstore = zarr_store(store, mode="w")
    try:
        yield zarr.open_group(zstore, mode="w", zarr_format=zarr_format)
    finally:
        if zstore is not store and isinstance(zstore, zarr.storage.ZipStore):
            zstore.close()
