"""The one storage adapter: h5py groups/datasets and zarr (v2 or v3) groups/arrays behind a
single small interface.

Encodings (``annio.io._encodings``) only ever talk to :class:`StorageGroup` and
:class:`StorageArray`; every difference between HDF5, zarr v2 and zarr v3 — string dtypes,
attribute quirks (byte strings, empty ``float64`` arrays), chunking, sharding, compression
options, scalars and null datasets — is handled here and nowhere else.

Helpers beside it: ``attrs``, ``dtypes``, ``h5_chunks``/``h5_pread`` (parallel gzip, ranged
direct chunk reads), ``zarr_shards``/``zarr_ranges`` (parallel zstd for local sharded v3, whole
/ ranges), ``zarr_small``/``zarr_tree``/``zarr_v2_read`` (local zarr without zarr objects).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, Literal

import h5py
import numpy as np
import zarr
from zarr.dtype import VariableLengthUTF8

from annio.errors import FormatError, MissingElementError
from annio.io._storage import create, guards, h5_chunks, h5_pread, h5_small, opened, zarr_ranges, zarr_shards, zarr_small, zarr_v2_read
from annio.io._storage.attrs import Attributes, KnownAttributes, attr_to_json, dumps_json
from annio.io._storage.dtypes import read_strings, zdtype
from annio.io._storage.ranges import gather_index, read_merged

__all__ = ["StorageNode", "StorageGroup", "StorageArray", "Attributes", "wrap", "is_storage_object", "dumps_json"]

Backend = Literal["hdf5", "zarr"]

# dataset_kwargs understood by each backend; anything else is passed through unchanged.
_ANNIO_KEYS = {"dtype", "indptr_dtype"}  # consumed by encodings, never by a backend

# Errors h5py and zarr raise for damaged files (unreadable bytes, metadata that is not JSON,
# zero chunk sizes that end in ZeroDivisionError in zarr): FormatError at this layer.
_BACKEND_ERRORS = (OSError, RuntimeError, ValueError, ZeroDivisionError, TypeError, IndexError)

_COVER_FRACTION = 0.5  # read_ranges: one covering slice when the values fill this share of it
# read_ranges, HDF5 without gzip: merge ranges separated by fewer bytes than this (HDF5
# reads exactly the requested bytes, so merging across real gaps only adds work)
_H5_MERGE_GAP_BYTES = 512


def is_storage_object(obj: Any) -> bool:
    """Whether ``obj`` is an h5py or zarr group/array, or already wrapped."""
    return isinstance(obj, StorageNode | h5py.Group | h5py.Dataset | zarr.Group | zarr.Array)


_TREE_ROOT: list[Any] = []  # provided by annio.io._storage.zarr_tree


def provide_tree_root(factory: Any) -> None:
    """Register ``factory(zarr_group) -> StorageGroup | None`` (see zarr_tree)."""
    _TREE_ROOT[:] = [factory]


def wrap(obj: Any) -> StorageGroup | StorageArray:
    """Wrap an h5py File/Group/Dataset or a zarr Group/Array in the adapter."""
    if isinstance(obj, StorageNode):
        return obj  # type: ignore[return-value]
    if isinstance(obj, h5py.File):
        return StorageGroup(obj["/"])
    if isinstance(obj, zarr.Group) and _TREE_ROOT and (root := _TREE_ROOT[0](obj)) is not None:
        return root  # a local store read from its consolidated metadata (zarr_tree)
    if isinstance(obj, h5py.Group | zarr.Group):
        return StorageGroup(obj)
    if isinstance(obj, h5py.Dataset | zarr.Array):
        node = StorageArray(obj)
        if node.backend == "zarr":
            node.check_grid()
        return node
    raise TypeError(f"expected an h5py or zarr group/array, got {type(obj).__name__}")

# ----------------------------------------------------------------------------- nodes
class StorageNode:
    """A group or array in an h5py file or a zarr store."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.backend: Backend = "hdf5" if isinstance(raw, h5py.HLObject) else "zarr"

    @property
    def path(self) -> str:
        """Absolute element path inside the store, e.g. ``/obsm/X_pca``; the root is ``/``."""
        if self.backend == "hdf5":
            return self.raw.name or "/"
        return "/" + self.raw.path.strip("/")

    @property
    def name(self) -> str:
        """The last component of :attr:`path` (empty for the root)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def attrs(self) -> Attributes:
        return Attributes(self)

    @property
    def zarr_format(self) -> int | None:
        """2 or 3 for zarr nodes, None for HDF5."""
        return None if self.backend == "hdf5" else self.raw.metadata.zarr_format

    is_group = property(lambda self: isinstance(self, StorageGroup))

    @property
    def identity(self) -> Any:
        """A hashable identity of the stored object, equal for every link to it (HDF5 hard
        links can make a group its own descendant); None for zarr, which has no links."""
        return self.raw.id if self.backend == "hdf5" else None

    def resolve_reference(self, ref: Any) -> StorageGroup | StorageArray:
        """The node an attribute points at: an HDF5 object reference, resolved in this
        node's file, or (zarr) a path relative to this node's parent group."""
        if isinstance(ref, bytes):
            ref = ref.decode("utf-8")
        if isinstance(ref, str):
            if not ref or ref.startswith("/") or ".." in ref.split("/"):
                raise FormatError(self.path, f"reference {ref!r} must be a relative path inside the parent group")
            parent = self.path.rsplit("/", 1)[0] or "/"
            root = self.raw.file if self.backend == "hdf5" else zarr.open_group(self.raw.store, mode="r", path="")
            return wrap(root[f"{parent.strip('/')}/{ref}".strip("/")])
        if self.backend != "hdf5":
            raise FormatError(self.path, f"unsupported reference of type {type(ref).__name__}")
        try:
            return wrap(self.raw.file[ref])
        except (ValueError, KeyError, TypeError, OSError, RuntimeError) as err:
            raise FormatError(self.path, f"dangling object reference: {err}") from err

    @property
    def filename(self) -> str | None:
        """Path of the h5 file, or a string describing the zarr store."""
        return self.raw.file.filename if self.backend == "hdf5" else str(self.raw.store)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend} {self.path!r}>"


class StorageArray(StorageNode):
    """A dataset (h5) or array (zarr)."""

    @property
    def shape(self) -> tuple[int, ...]:
        shape = self.raw.shape
        return () if shape is None else tuple(shape)  # h5 null dataspace has shape None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_null(self) -> bool:
        """An h5 dataset with a null dataspace (anndata's ``None``)."""
        return self.backend == "hdf5" and self.raw.shape is None

    @cached_property  # a node's dtype never changes; h5py builds it anew on each access
    def is_string(self) -> bool:
        if self.backend == "hdf5":
            return h5py.check_string_dtype(self.raw.dtype) is not None or self.raw.dtype.kind == "S"
        return isinstance(zdtype(self.raw), VariableLengthUTF8) or self.raw.dtype.kind in "UOT"

    @cached_property
    def dtype(self) -> np.dtype:
        """Numpy dtype; variable-length strings are reported as ``object``."""
        if self.is_string and self.dtype_is_vlen:
            return np.dtype(object)
        return np.dtype(self.raw.dtype)

    @cached_property
    def dtype_is_vlen(self) -> bool:
        if self.backend == "hdf5":
            info = h5py.check_string_dtype(self.raw.dtype)
            return info is not None and info.length is None
        return isinstance(zdtype(self.raw), VariableLengthUTF8) or self.raw.dtype.kind in "OT"

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self.raw.chunks if self.raw.chunks is None else tuple(self.raw.chunks)

    @property
    def shards(self) -> tuple[int, ...] | None:
        return getattr(self.raw, "shards", None) if self.backend == "zarr" else None

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def check_grid(self) -> None:
        """Refuse chunk or shard sizes below 1 (see :mod:`~annio.io._storage.guards`)."""
        guards.check_grid(self)

    def check_size(self, nbytes: int | None = None) -> None:
        """Refuse a read of ``nbytes`` (default: all) that cannot be real (see guards)."""
        guards.check_size(self, nbytes)

    def check_stored(self) -> None:
        """Refuse a declared size the file cannot hold (see guards)."""
        guards.check_stored(self)

    def read(self, selection: Any = ...) -> np.ndarray:
        """Read ``selection`` (anything h5py/zarr basic indexing accepts) into memory.

        Strings come back as ``object`` arrays of ``str`` from every backend; fixed-length
        byte strings are decoded as UTF-8.
        """
        nbytes = guards.selection_nbytes(self, selection)
        if nbytes is not None:
            self.check_size(nbytes)
        try:
            if selection is Ellipsis and self.backend == "zarr" and (whole := zarr_v2_read.read_all(self.raw)) is not None:
                return whole
            if self.is_string:
                return read_strings(self.raw, selection)
            if self.backend == "hdf5" and selection is Ellipsis and self.raw.shape is not None:
                out = np.empty(self.raw.shape, dtype=self.raw.dtype)
                self._read_h5_into(out)
                return out
            if selection is Ellipsis and self.backend == "zarr" and zarr_shards.can_read_direct(self.raw):
                return zarr_shards.read_all(self.raw)
            return np.asarray(self.raw[selection])
        except _BACKEND_ERRORS as err:
            if isinstance(err, FormatError):
                raise
            raise FormatError(self.path, f"could not read data: {err}") from err

    def read_into(self, out: np.ndarray, queue: Any = None) -> None:
        """Read the whole numeric array into ``out`` (C-contiguous, of its shape and dtype),
        e.g. one row of a DataFrame block: no intermediate array where the backend allows;
        decompression may be left to a :class:`~annio.io._storage.decode_queue.DecodeQueue`."""
        if self.backend != "hdf5" or self.raw.dtype != out.dtype or self.raw.shape != out.shape:
            out[...] = self.read()
            return
        self.check_size(out.nbytes)
        try:
            self._read_h5_into(out)
        except _BACKEND_ERRORS as err:
            raise err if isinstance(err, FormatError) else FormatError(self.path, f"could not read data: {err}") from err

    def _read_h5_into(self, out: np.ndarray) -> None:
        mode = h5_chunks.read_mode(self.raw) if out.size else None
        if mode is not None:
            h5_chunks.read_chunks(self.raw, out, parallel=mode == "parallel")
        elif out.size:
            h5_pread.read_into(self.raw, out)

    def read_ranges(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """The concatenation of ``self[starts[i]:stops[i]]`` for sorted, non-overlapping
        ranges of a 1-D array (empty ranges allowed), in as few backend calls as possible:
        HDF5 gzip-only: :func:`~annio.io._storage.h5_chunks.read_ranges`; local sharded v3:
        :mod:`~annio.io._storage.zarr_ranges`; one range, or ranges covering most of their
        span: one slice read; other HDF5: ranges closer than a gap merged; zarr: ``oindex``."""
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        keep = stops > starts
        if not keep.all():
            starts, stops = starts[keep], stops[keep]
        dtype = self.dtype
        if starts.size == 0:
            return np.zeros(0, dtype=dtype)
        lengths = stops - starts
        lo, hi = int(starts[0]), int(stops[-1])
        direct = self.backend == "hdf5" and h5_chunks.can_read_ranges(self.raw)
        try:
            if direct and (starts.size > 1 or int(lengths.sum()) * dtype.itemsize >= h5_chunks.RANGES_PARALLEL_BYTES):
                return h5_chunks.read_ranges(self.raw, starts, stops)
            if self.backend == "zarr" and zarr_ranges.can_read_ranges(self.raw):
                return zarr_ranges.read_ranges(self.raw, starts, stops)
            if starts.size == 1:
                return self.read(slice(lo, hi))
            if int(lengths.sum()) >= _COVER_FRACTION * (hi - lo):
                return self.read(slice(lo, hi))[gather_index(starts - lo, lengths)]
            if self.backend == "hdf5":
                return read_merged(self.raw, starts, stops, max(1, _H5_MERGE_GAP_BYTES // max(1, dtype.itemsize)))
            return np.asarray(self.raw.oindex[gather_index(starts, lengths)])
        except _BACKEND_ERRORS as err:
            if isinstance(err, FormatError):
                raise
            raise FormatError(self.path, f"could not read data: {err}") from err

    def read_scalar(self) -> Any:
        """Read a 0-d (or legacy 1-element) array as a Python/numpy scalar."""
        value = self.read(())
        if value.ndim:
            value = value.reshape(-1)[0]
        return value[()] if isinstance(value, np.ndarray) else value

    def write(self, selection: Any, values: Any) -> None:
        if self.backend == "hdf5" or not zarr_shards.write_rows(self.raw, selection, values):
            self.raw[selection] = values

    def resize(self, length: int) -> None:
        """Grow or shrink a 1-D array along its only axis."""
        self.raw.resize((length,))


class StorageGroup(StorageNode):
    """A group in an h5py file or a zarr store."""

    def keys(self) -> list[str]:
        try:
            names = opened.member_names(self, wrap)
            return list(self.raw.keys()) if names is None else names
        except _BACKEND_ERRORS as err:
            for name in guards.stored_member_names(self):
                self[name]  # raises a FormatError naming the damaged member
            raise FormatError(self.path, f"could not list the group's members: {err}") from err

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        if opened.remembers(self):
            return opened.contains(self, key)
        try:
            return key in self.raw
        except KeyError:
            return False
        except _BACKEND_ERRORS as err:  # e.g. a member whose metadata is not JSON
            raise FormatError(self._child_path(str(key)), f"could not open element: {err}") from err

    def __getitem__(self, key: str) -> StorageGroup | StorageArray:
        return opened.child(self, key, self._open)

    def _open(self, key: str) -> StorageGroup | StorageArray:
        try:
            child = opened.consolidated_child(self.raw, key) if self.backend == "zarr" else None
            if child is None:
                child = self.raw[key]
        except KeyError as err:
            if self.backend == "hdf5" and "doesn't exist" not in str(err) and "not found" not in str(err).lower():
                # h5py raises KeyError for damaged object headers too
                raise FormatError(self._child_path(key), f"could not open element: {err.args[0] if err.args else err}") from err
            raise MissingElementError(self._child_path(key), "element is missing") from None
        except _BACKEND_ERRORS as err:
            raise FormatError(self._child_path(key), f"could not open element: {err}") from err
        return wrap(child)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self) -> Iterator[tuple[str, StorageGroup | StorageArray]]:
        for key in self.keys():
            yield key, self[key]

    def _child_path(self, key: str) -> str:
        return f"{self.path.rstrip('/')}/{key.strip('/')}"

    def __delitem__(self, key: str) -> None:
        del self.raw[key]

    def clear(self) -> None:
        """Delete every child and every attribute of this group."""
        for key in self.keys():
            del self.raw[key]
        for key in list(self.raw.attrs.keys()):
            del self.raw.attrs[key]

    # -- creation -------------------------------------------------------------------------
    def require_group(self, key: str) -> StorageGroup:
        """The child group ``key``, created (without attributes) when absent."""
        if key in self:
            child = self[key]
            if not isinstance(child, StorageGroup):
                raise ValueError(f"{child.path}: is an array, cannot hold child elements")
            return child
        return StorageGroup(self.raw.create_group(key))

    def create_group(self, key: str, *, attrs: Mapping[str, Any] | None = None, many_attributes: bool = False) -> StorageGroup:
        """Create (replacing any existing) child group ``key`` with attributes ``attrs``.

        ``many_attributes`` asks HDF5 for dense attribute storage, needed when an attribute
        (e.g. a dataframe's ``column-order``) would exceed HDF5's 64 KiB header limit.
        """
        directory = self._replace_child(key)
        if self.backend == "hdf5":
            group = StorageGroup(self.raw.create_group(key, track_order=True if many_attributes else None))
            if attrs:
                group.attrs.update(attrs)
            return group
        if directory is not None:
            return StorageGroup(zarr_small.create_group(self.raw, directory, key, attr_to_json(dict(attrs or {}))))
        return StorageGroup(self.raw.create_group(key, attributes=attr_to_json(dict(attrs or {}))))

    def _replace_child(self, key: str) -> Any:
        """Delete child ``key`` if present; returns the group's directory for zarr groups in
        writable local stores (checked on disk, not through zarr), else None."""
        directory = zarr_small.local_dir(self.raw) if self.backend == "zarr" else None
        if directory is None:
            if key in self:
                del self.raw[key]
        elif zarr_small.child_exists(directory, key):
            zarr_small.remove_child(directory, key)
        return directory

    def create_array(
        self,
        key: str,
        data: np.ndarray,
        *,
        dataset_kwargs: Mapping[str, Any] | None = None,
        resizable: bool = False,
        shardable: bool = True,
        attrs: Mapping[str, Any] | None = None,
    ) -> StorageArray:
        """Write a numeric, boolean, string or structured numpy array as child ``key``.

        Chunking, sharding and compression follow ``dataset_kwargs`` where given and
        annio's layout policy (:mod:`annio.io._storage.layout`) otherwise. 0-d arrays are never
        chunked, compressed or sharded.
        """
        data = np.asarray(data)
        return self._create(key, data.shape, data.dtype, data, dataset_kwargs or {}, resizable, shardable, attrs)

    def create_empty_array(
        self,
        key: str,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        dataset_kwargs: Mapping[str, Any] | None = None,
        resizable: bool = False,
        shardable: bool = True,
        attrs: Mapping[str, Any] | None = None,
    ) -> StorageArray:
        """Create an array to be filled block by block (streamed writes)."""
        return self._create(key, tuple(shape), np.dtype(dtype), None, dataset_kwargs or {}, resizable, shardable, attrs)

    def create_scalar(self, key: str, value: Any, *, attrs: Mapping[str, Any] | None = None) -> StorageArray:
        """Write a 0-d numeric, boolean or string value."""
        arr = np.asarray(value)
        if arr.dtype.kind in "UOT":
            arr = np.array(str(value), dtype=object)
        return self._create(key, (), arr.dtype, arr, {}, False, False, attrs)

    def create_null(self, key: str, *, attrs: Mapping[str, Any] | None = None) -> StorageArray:
        """Write anndata's ``null`` element: an h5 null dataspace, or a zarr 0-d bool array
        with no chunk."""
        if key in self:
            del self.raw[key]
        if self.backend == "hdf5":
            node = StorageArray(self.raw.create_dataset(key, data=h5py.Empty("f")))
            node.attrs.update(attrs or {})
            return node
        return StorageArray(self.raw.create_array(key, shape=(), dtype=bool, fill_value=False, attributes=attr_to_json(dict(attrs or {}))))

    def _create(
        self,
        key: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        data: np.ndarray | None,
        dataset_kwargs: Mapping[str, Any],
        resizable: bool,
        shardable: bool,
        attrs: Mapping[str, Any] | None = None,
    ) -> StorageArray:
        self._replace_child(key)
        kwargs = {k: v for k, v in dataset_kwargs.items() if k not in _ANNIO_KEYS}
        is_string = dtype.kind in "UOT"
        if self.backend == "hdf5":
            node = StorageArray(create.create_h5(self.raw, self._child_path(key), key, shape, dtype, data, kwargs, resizable, is_string))
            if attrs and h5_small.all_strings(attrs):
                h5_small.set_string_attrs(node.raw, attrs, fresh=True)
            elif attrs:
                node.attrs.update(attrs)
            return node
        kwargs["attributes"] = attr_to_json(dict(attrs or {}))
        made = create.create_zarr(self.raw, self.zarr_format, self._child_path(key), key, shape, dtype, data, kwargs, shardable, is_string)
        if made is not None:
            return StorageArray(made)
        return _WrittenArray(self.raw, key, self._child_path(key), kwargs["attributes"])


class _WrittenArray(StorageArray):
    """An array annio wrote straight to a local store (:mod:`~annio.io._storage.zarr_small`);
    zarr-python opens it only when something asks for more than its path and attributes."""

    def __init__(self, parent: Any, key: str, path: str, attributes: dict[str, Any]) -> None:  # no super(): raw is deferred
        self.backend = "zarr"
        self._parent, self._key, self._path, self._attributes = parent, key, path, attributes

    @property
    def raw(self) -> Any:  # type: ignore[override]
        raw = self.__dict__.get("_raw")
        if raw is None:
            raw = self.__dict__["_raw"] = self._parent[self._key]
        return raw

    @property
    def path(self) -> str:
        return self._path

    @property
    def attrs(self) -> Attributes:
        return KnownAttributes(self, self._attributes)
