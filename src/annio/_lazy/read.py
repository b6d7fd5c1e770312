"""``read_lazy`` (a whole AnnData whose elements stay on disk) and ``read_elem_lazy``.

Opening reads only metadata and the obs/var indexes: with consolidated zarr metadata that is
one metadata request plus one read per index. ``X``, layers, obsm/varm/obsp/varp arrays
become dask arrays, data frames :class:`~annio._lazy.frame.Dataset2D`; scalars, ``null``,
rec-arrays, awkward arrays and legacy elements are read eagerly (they are small).
"""

from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from typing import Any

import h5py
import zarr

from annio.errors import FormatError
from annio.io._encodings import legacy
from annio.io._encodings.registry import REGISTRY, Reader, get_spec
from annio.io._root import refuse_container
from annio.io._storage.adapter import StorageArray, StorageGroup, wrap
from annio.settings import settings

__all__ = ["read_lazy", "read_elem_lazy", "LazyFile"]

ANNDATA_KEYS = ("obs", "var", "obsm", "varm", "obsp", "varp", "layers", "X", "raw", "uns")
#: Elements whose lazy open reads objects (indexes, uns values): opened after the others.
_READS_PREFETCHED = frozenset({"obs", "var", "raw", "uns"})


class LazyFile:
    """The store a lazily read AnnData keeps open (``adata.file``); close it when done.

    ``filename`` is None so the object does not count as *backed* (its elements are dask
    arrays and lazy frames, not backed datasets); the location is in :attr:`path`.
    """

    filename = None
    filemode = "r"

    def __init__(self, handle: Any, path: Any, *, owned: bool) -> None:
        self._handle = handle
        self.path = path
        self._owned = owned

    @property
    def is_open(self) -> bool:
        if isinstance(self._handle, h5py.File):
            return bool(self._handle.id.valid)
        return self._handle is not None

    def open(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("A lazily read AnnData cannot be reopened; call annio._lazy.read_lazy again.")

    def close(self) -> None:
        """Close the file (HDF5) or store this object opened; tasks of its dask arrays
        reopen HDF5 files by path when they run afterwards."""
        if self._owned and self._handle is not None:
            close = getattr(self._handle, "close", None)
            if close is not None:
                close()
        if not isinstance(self._handle, h5py.File):
            self._handle = None

    def __enter__(self) -> LazyFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<LazyFile {state} {self.path!s}>"


# ----------------------------------------------------------------------------- opening
def _is_h5_target(store: Any) -> bool:
    from annio.io._storage.stores import is_h5ad, is_url

    if isinstance(store, str) and is_url(store):
        return store.split("?", 1)[0].lower().endswith((".h5ad", ".h5", ".hdf5"))
    return is_h5ad(store)


def _open(store: Any, storage_options: Any = None) -> tuple[Any, LazyFile | None, bool]:
    """The root group for ``store``, the file manager to attach, and whether every child
    of the root can be listed cheaply (h5, consolidated zarr)."""
    from annio.io._storage.stores import _local_path, is_url, open_h5_file, open_zarr_group, zarr_store

    if isinstance(store, h5py.Dataset):
        raise TypeError("read_lazy needs a group (an AnnData); use read_elem_lazy for a single dataset")
    if isinstance(store, h5py.Group):
        return store, LazyFile(store.file, store.file.filename, owned=False), True
    if isinstance(store, zarr.Group):
        return store, LazyFile(store, store.store, owned=False), True
    if isinstance(store, str | os.PathLike) and _is_h5_target(store):
        if isinstance(store, str) and is_url(store):
            from annio.io._storage import remote  # type: ignore[attr-defined]

            f = remote.open_h5_file_from_url(store, storage_options=storage_options)
            if not isinstance(f, h5py.File):  # pragma: no cover - remote returns a file object
                f = h5py.File(f, "r")
        else:
            f = open_h5_file(store, "r")
        return f, LazyFile(f, store, owned=True), True
    if isinstance(store, str) and is_url(store):
        from annio.io._storage import remote  # type: ignore[attr-defined]

        zstore = remote.zarr_store_from_url(store, storage_options=storage_options)
    else:
        if isinstance(store, str | os.PathLike) and not _local_path(store).exists():
            raise FileNotFoundError(f"No such file or directory: {str(_local_path(store))!r}")
        zstore = zarr_store(store, mode="r")
    from annio.io._storage.zarr_tree import open_tree

    tree_root = open_tree(zstore)  # local + consolidated: no zarr object per node
    if tree_root is not None:
        group, listable = tree_root, True
    else:
        group, listable = open_zarr_group(zstore, where=store)
    if not listable:
        warnings.warn("Did not read zarr as consolidated. Consider consolidating your metadata.", UserWarning, stacklevel=3)
    owned = zstore is not store and isinstance(zstore, zarr.storage.ZipStore)
    return group, LazyFile(zstore if owned else group, store, owned=owned), listable


def _children(root: StorageGroup, listable: bool) -> list[str]:
    if listable:
        return root.keys()
    return [k for k in ANNDATA_KEYS if k in root]  # probe only the names an AnnData can have


# ----------------------------------------------------------------------------- public API
def read_lazy(store: Any, *, load_annotation_index: bool = True, storage_options: Any = None) -> Any:
    """Open an AnnData lazily: nothing but metadata and the obs/var indexes is read.

    Parameters
    ----------
    store
        An ``h5py.File``/``Group``, a path to an ``.h5ad`` file (opened read-only and kept
        open: close it with ``adata.file.close()``), a ``zarr.Group``, a zarr store, a path
        to a zarr directory or ``.zip`` (opened from consolidated metadata when present, so
        opening is one metadata read) or a URL.
    load_annotation_index
        Read the obs/var indexes. When False, rows are labelled ``"0"``, ``"1"``, ... and the
        real indexes stay on disk (uniqueness is not checked).
    storage_options
        For ``s3://`` and ``http(s)://`` URLs: endpoint, credentials, ``anon`` ... (see
        :mod:`annio.io._storage.remote`).

    Returns
    -------
    An :class:`annio.AnnData` holding dask arrays and :class:`~annio._lazy.frame.Dataset2D`
    frames. Subsetting it reads nothing; ``.to_memory()`` reads the selection.
    """
    from annio.io._encodings.anndata_group import build_anndata

    group, file, listable = _open(store, storage_options)
    try:
        root = wrap(group)
        if not isinstance(root, StorageGroup):
            raise FormatError(root.path, "expected an AnnData group, found an array")
        refuse_container(root)
        use_range = not load_annotation_index
        reader = Reader(lazy=True)
        parts: dict[str, Any] = {}
        override = settings.override(check_uniqueness=False) if use_range else nullcontext()
        from annio._lazy.plans import open_h5_objects, open_keys
        from annio.io._storage.h5_prefetch import prefetching_datasets
        from annio.io._storage.prefetch import prefetching

        keys = open_keys(group, load_annotation_index=not use_range)
        h5_objects = open_h5_objects(group, load_annotation_index=not use_range)
        with override, prefetching(group, keys, overlap=True), prefetching_datasets(h5_objects, overlap=True):
            # what needs no prefetched object (arrays are opened, not read) is built while the
            # prefetch is in flight; the frames' indexes and uns, which read them, come last
            children = [k for k in _children(root, listable) if k in ANNDATA_KEYS]
            for key in sorted(children, key=lambda k: k in _READS_PREFETCHED):
                node = root[key]
                if key in ("obs", "var"):
                    parts[key] = _read_frame(node, reader, use_range)
                elif key == "raw":
                    raw = _read_raw(node, reader, use_range)
                    if raw:
                        parts["raw"] = raw
                else:
                    parts[key] = reader.read_elem(node)
            # files of every era open the same way eager reads open them
            if any(k in root for k in ("raw.X", "raw.var", "raw.varm")):  # < 0.7 raw
                if "raw" in parts:
                    raise FormatError(root.path, "the file has both legacy (raw.X) and current (raw/) raw formats")
                parts["raw"] = legacy.read_legacy_raw(root, reader)
            obs_was_dataset = "obs" in parts and isinstance(root["obs"], StorageArray)
            legacy.apply_legacy_fixups(parts, obs_was_dataset=obs_was_dataset)
            adata = build_anndata(root.path, parts)
    except BaseException:
        if file is not None:
            file.close()
        raise
    adata._file = file
    return adata


def _read_frame(node: Any, reader: Reader, use_range: bool) -> Any:
    if isinstance(node, StorageArray):  # < 0.7 compound dataset: eager
        from annio.io._encodings import legacy

        return legacy.read_dataframe_legacy(node)
    spec = get_spec(node)
    if spec.encoding_type == "dataframe" and spec.encoding_version == "0.2.0":
        from annio._lazy.frame import read_frame_lazy

        return read_frame_lazy(node, reader, use_range_index=use_range)
    return reader.read_elem(node)


def _read_raw(node: Any, reader: Reader, use_range: bool) -> dict[str, Any] | None:
    if not isinstance(node, StorageGroup):
        if reader.read_elem(node) is None:  # raw=None written as a `null` element
            return None
        raise FormatError(node.path, "expected a group for raw, found an array")
    raw: dict[str, Any] = {}
    for key in ("X", "var", "varm"):
        if key in node:
            raw[key] = _read_frame(node[key], reader, use_range) if key == "var" else reader.read_elem(node[key])
    return raw


def read_elem_lazy(elem: Any, chunks: tuple[int | None, ...] | None = None, **kwargs: Any) -> Any:
    """Read one stored element lazily.

    Parameters
    ----------
    elem
        An h5py Group/Dataset or zarr Group/Array.
    chunks
        Dask chunks. Dense arrays: one entry per axis (``-1``/``None`` = the whole axis);
        default the zarr shard (or chunk) shape, the HDF5 chunk shape, or ``min(1000, n)``
        per axis for contiguous HDF5 datasets. Sparse matrices: only the major axis may be
        chunked, e.g. ``(1000, -1)`` for CSR; default 1000 (or the storage chunking of
        ``indptr``/``data`` when larger).
    **kwargs
        Passed to the encoding (``use_range_index`` for data frames).

    Returns
    -------
    A dask array (dense or of scipy sparse blocks), a
    :class:`~annio._lazy.frame.Dataset2D`, a dict of lazy elements, a lazy AnnData, or, for
    small elements without a lazy form (scalars, ...), the value itself.
    """
    node = wrap(elem)
    encoding = REGISTRY.reader_for(node, get_spec(node))
    if chunks is not None:
        kwargs["chunks"] = chunks
    return encoding.read_lazy(node, Reader(lazy=True), **kwargs)

