"""One registry of encodings, and the read/write dispatch built on it.

An *encoding* is a small class (see :class:`Encoding`) registered with the
``(encoding-type, encoding-version)`` pair it writes, the older pairs it also reads, and the
Python types it writes. Write dispatch walks the value's MRO, so view classes and subclasses
need no registration of their own; among encodings registered for the same type the first
whose :meth:`Encoding.accepts` says yes wins (numpy arrays are told apart by dtype kind).
Read dispatch is on the stored pair and whether the node is a group or an array; nodes
without encoding attributes go to the legacy reader (``IOSpec("", "")``).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np

from annio._bridge import as_annio
from annio.errors import FormatError, IORegistryError, UnknownEncodingError, UnsafeElementNameWarning
from annio.io._encodings.containers import container_error
from annio.io._encodings.depth import StackRoom, nesting_depth
from annio.io._storage.adapter import StorageGroup, StorageNode, wrap

__all__ = [
    "IOSpec",
    "Encoding",
    "GroupEncoding",
    "ArrayEncoding",
    "Registry",
    "REGISTRY",
    "register",
    "Reader",
    "Writer",
    "read_elem",
    "write_elem",
    "read_dispatched",
    "write_dispatched",
    "get_spec",
    "provide_lazy_builder",
    "lazy_builder",
]

EMPTY: Mapping[str, Any] = MappingProxyType({})
_UNSAFE_URL_CHARS = "%#?"


@dataclass(frozen=True)
class IOSpec:
    """An ``(encoding-type, encoding-version)`` pair."""

    encoding_type: str
    encoding_version: str

    @classmethod
    def of(cls, spec: IOSpec | Mapping[str, str]) -> IOSpec:
        if isinstance(spec, IOSpec):
            return spec
        return cls(spec["encoding-type"], spec["encoding-version"])

    def as_attrs(self) -> dict[str, str]:
        return {"encoding-type": self.encoding_type, "encoding-version": self.encoding_version}


LEGACY = IOSpec("", "")


def get_spec(node: Any) -> IOSpec:
    """The encoding pair stored on ``node`` (``IOSpec("", "")`` when absent)."""
    attrs = wrap(node).attrs
    return IOSpec(str(attrs.get("encoding-type", "") or ""), str(attrs.get("encoding-version", "") or ""))


class Encoding:
    """Base class of every encoding. Subclass :class:`GroupEncoding` or :class:`ArrayEncoding`.

    Class attributes
    ----------------
    spec
        The pair this encoding writes (and reads).
    also_reads
        Older pairs it reads too.
    python_types
        Types it writes: classes, or qualified names (``"dask.array.core.Array"``) for
        optional dependencies that must not be imported eagerly.
    """

    spec: ClassVar[IOSpec]
    also_reads: ClassVar[tuple[IOSpec, ...]] = ()
    python_types: ClassVar[tuple[type | str, ...]] = ()
    node_kind: ClassVar[Literal["group", "array"]]
    #: False for write-only encodings (e.g. writing lazy frames as ``dataframe``): they must
    #: not replace the reader registered for the same pair.
    reads: ClassVar[bool] = True

    def accepts(self, value: Any) -> bool:
        """Refine type-based dispatch (e.g. on dtype kind). Default: accept."""
        return True

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageNode:
        raise NotImplementedError

    def read(self, node: Any, reader: Reader) -> Any:
        raise NotImplementedError

    def read_lazy(self, node: Any, reader: Reader, **kwargs: Any) -> Any:
        """Lazy read; encodings without a lazy form read eagerly."""
        return self.read(node, reader)


class GroupEncoding(Encoding):
    """An encoding stored as a group; subclasses implement :meth:`write_into`."""

    node_kind: ClassVar[Literal["group", "array"]] = "group"

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageGroup:
        attrs = {**self.spec.as_attrs(), **self.group_attrs(value)}
        if key in ("", "/"):
            group = parent
            group.attrs.update(attrs)
        else:
            group = parent.create_group(key, attrs=attrs, many_attributes=self.needs_many_attributes(value))
        self.write_into(group, value, writer, dataset_kwargs)
        return group

    def needs_many_attributes(self, value: Any) -> bool:
        return False

    def group_attrs(self, value: Any) -> dict[str, Any]:
        """Attributes of the group besides the encoding pair, set when it is created."""
        return {}

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        raise NotImplementedError


class ArrayEncoding(Encoding):
    """An encoding stored as a single array/dataset."""

    node_kind: ClassVar[Literal["group", "array"]] = "array"


@functools.lru_cache(maxsize=1024)
def _type_names(cls: type) -> tuple[type | str, ...]:
    out: list[type | str] = []
    for base in cls.__mro__:
        out.extend((base, f"{base.__module__}.{base.__qualname__}"))
    return tuple(out)


class Registry:
    """Maps Python types to writing encodings and stored pairs to reading encodings."""

    def __init__(self) -> None:
        self._writers: dict[type | str, list[Encoding]] = {}
        self._readers: dict[tuple[IOSpec, str], Encoding] = {}

    def register(self, cls: type[Encoding]) -> type[Encoding]:
        encoding = cls()
        if cls.reads:
            for spec in (cls.spec, *cls.also_reads):
                self._readers[(spec, cls.node_kind)] = encoding
        for t in cls.python_types:
            self._writers.setdefault(t, []).append(encoding)
        return cls

    def writer_for(self, value: Any) -> Encoding:
        for t in _type_names(type(value)):
            for encoding in self._writers.get(t, ()):
                if encoding.accepts(value):
                    return encoding
        detail = f" of dtype {value.dtype}" if hasattr(value, "dtype") else ""
        raise IORegistryError(f"No method registered for writing {type(value).__name__}{detail}")

    def reader_for(self, node: StorageNode, spec: IOSpec) -> Encoding:
        kind = "group" if node.is_group else "array"
        encoding = self._readers.get((spec, kind))
        if encoding is None:
            if spec == LEGACY or (spec, kind) not in self._readers and spec.encoding_type == "":
                encoding = self._readers.get((LEGACY, kind))
            if encoding is None:
                if spec.encoding_type == "MuData" and isinstance(node, StorageGroup):
                    raise container_error(node)
                raise UnknownEncodingError(node.path, spec.encoding_type, spec.encoding_version)
        return encoding

    def spec_for(self, value: Any) -> IOSpec:
        return self.writer_for(value).spec

    def has_reader(self, spec: IOSpec, kind: str) -> bool:
        return (spec, kind) in self._readers


REGISTRY = Registry()

# Lazy elements (dask arrays, lazy columns and frames) are built by ``annio._lazy``, a layer
# above the encodings: it hands its builders in here when it is imported, so an encoding's
# ``read_lazy`` names what it needs without importing upward.
_LAZY_BUILDERS: dict[str, Callable[..., Any]] = {}


def provide_lazy_builder(name: str, builder: Callable[..., Any]) -> None:
    """Register ``builder`` as the lazy element builder called ``name``."""
    _LAZY_BUILDERS[name] = builder


def lazy_builder(name: str) -> Callable[..., Any]:
    """The lazy element builder ``name`` (``dense_array``, ``sparse_array``,
    ``categorical``, ``masked``, ``frame``, ``write_frame``)."""
    try:
        return _LAZY_BUILDERS[name]
    except KeyError:
        raise IORegistryError(
            f"lazy element builder {name!r} is not available: lazy reading goes through "
            "annio.experimental.read_lazy / read_elem_lazy"
        ) from None
register = REGISTRY.register


def _note(err: BaseException, message: str) -> None:
    if not getattr(err, "_annio_noted", False):
        err.add_note(message)
        try:
            err._annio_noted = True  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exotic exception types
            pass


ReadCallback = Callable[..., Any]
WriteCallback = Callable[..., None]


# What h5py, zarr, numpy and encodings raise on damaged input; a Reader turns them into a
# FormatError naming the element being read (the deepest one: inner Readers translate first).
_DAMAGE_ERRORS = (OSError, RuntimeError, ZeroDivisionError, KeyError, IndexError, json.JSONDecodeError, UnicodeDecodeError)


class Reader:
    """Reads elements recursively, optionally through a user callback or lazily.

    Every error a damaged element provokes comes out as a :class:`~annio.errors.FormatError`
    naming that element. Groups being read are tracked by identity, so HDF5 links forming a
    cycle are reported instead of recursing forever.
    """

    def __init__(self, registry: Registry = REGISTRY, callback: ReadCallback | None = None, *, lazy: bool = False, lazy_kwargs: Mapping[str, Any] = EMPTY) -> None:
        self.registry = registry
        self.callback = callback
        self.lazy = lazy
        self.lazy_kwargs = dict(lazy_kwargs)
        self._open_groups: dict[Any, str] = {}
        self._room = StackRoom()

    def read_elem(self, elem: Any) -> Any:
        if self.callback is None:
            return self._read_elem(elem)
        # a user callback recurses through every level (it calls back for each child)
        with self._room.level():
            return self._read_elem(elem)

    def _read_elem(self, elem: Any) -> Any:
        node = wrap(elem)
        try:
            spec = get_spec(node)
            encoding = self.registry.reader_for(node, spec)
        except FormatError:
            raise
        except (*_DAMAGE_ERRORS, ValueError, TypeError) as err:
            raise FormatError(node.path, f"could not read the element's metadata: {err}") from err
        entered = self.enter_group(node)
        try:
            if self.callback is not None:
                return self.callback(lambda e: self._read_with(encoding, wrap(e)), node.path, node.raw, iospec=spec)
            return self._read_with(encoding, node)
        except FormatError as err:
            _note(err, f"Error raised while reading element {node.path!r}")
            raise
        except RecursionError:
            raise FormatError(node.path, "elements are nested too deeply to read") from None
        except _DAMAGE_ERRORS as err:
            raise FormatError(node.path, f"could not read element: {type(err).__name__}: {err}") from err
        except Exception as err:
            _note(err, f"Error raised while reading element {node.path!r}")
            raise
        finally:
            if entered:
                self.leave_group(node)

    def read_into(self, elem: Any, out: np.ndarray, queue: Any = None) -> None:
        """Read the whole numeric array element ``elem`` into ``out`` (of its shape and
        dtype), bypassing encodings and callbacks: for readers of plain ``array`` elements
        (DataFrame columns into one block), decompressing through ``queue`` if given (see
        :mod:`~annio.io._storage.decode_queue`). Errors come out as from :meth:`read_elem`."""
        node = wrap(elem)
        try:
            node.read_into(out, queue)  # type: ignore[union-attr]
        except FormatError:
            raise
        except _DAMAGE_ERRORS as err:
            raise FormatError(node.path, f"could not read element: {type(err).__name__}: {err}") from err

    def enter_group(self, node: StorageNode) -> bool:
        """Record that ``node`` is being read; a group already being read (an HDF5 link
        back to an ancestor) is a FormatError. Returns whether it was recorded."""
        ident = node.identity if node.is_group else None
        if ident is None:
            return False
        if ident in self._open_groups:
            raise FormatError(node.path, f"HDF5 links form a cycle: this group is its own ancestor {self._open_groups[ident]!r}")
        self._open_groups[ident] = node.path
        return True

    def leave_group(self, node: StorageNode) -> None:
        self._open_groups.pop(node.identity, None)

    def _read_with(self, encoding: Encoding, node: StorageNode) -> Any:
        if self.lazy:
            return encoding.read_lazy(node, self, **self.lazy_kwargs)
        return encoding.read(node, self)


def _normalize_value(value: Any) -> Any:
    value = as_annio(value)  # an ``anndata.AnnData`` (anywhere, e.g. in uns) is written as annio's
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind != "V":
        return value[()]
    if isinstance(value, list):
        return np.asarray(value)
    return value


class Writer:
    """Writes elements recursively, optionally through a user callback."""

    def __init__(self, registry: Registry = REGISTRY, callback: WriteCallback | None = None) -> None:
        self.registry = registry
        self.callback = callback
        self._depth = 0

    def write_elem(self, parent: Any, key: str, value: Any, *, dataset_kwargs: Mapping[str, Any] = EMPTY) -> None:
        if self._depth:
            self._write_elem(parent, key, value, dataset_kwargs=dataset_kwargs)
            return
        # the outermost call: make room on the stack for a deeply nested value
        with StackRoom().levels(nesting_depth(value)):
            self._depth += 1
            try:
                self._write_elem(parent, key, value, dataset_kwargs=dataset_kwargs)
            finally:
                self._depth -= 1

    def _write_elem(self, parent: Any, key: str, value: Any, *, dataset_kwargs: Mapping[str, Any] = EMPTY) -> None:
        group = wrap(parent)
        if not isinstance(group, StorageGroup):
            raise TypeError(f"can only write into a group, got {group!r}")
        key = _check_key(group, key)
        value = _normalize_value(value)
        encoding = self.registry.writer_for(value)

        def write_func(store: Any, k: str, elem: Any, *, dataset_kwargs: Mapping[str, Any] = EMPTY) -> None:
            self._write_with(encoding, wrap(store), k, elem, dataset_kwargs)

        try:
            if self.callback is not None:
                self.callback(write_func, group.raw, key, value, iospec=encoding.spec, dataset_kwargs=dataset_kwargs)
            else:
                self._write_with(encoding, group, key, value, dataset_kwargs)
        except Exception as err:
            where = f"{group.path.rstrip('/')}/{key}" if key not in ("", "/") else group.path
            _note(err, f"Error raised while writing {type(value).__name__} to element {where!r}")
            raise

    def _write_with(self, encoding: Encoding, group: StorageGroup, key: str, value: Any, dataset_kwargs: Mapping[str, Any]) -> None:
        node = encoding.write(group, key, value, self, dataset_kwargs)  # replaces an existing `key`
        attrs = node.attrs
        missing = {k: v for k, v in encoding.spec.as_attrs().items() if k not in attrs}
        if missing:
            attrs.update(missing)


def _check_key(group: StorageGroup, key: str) -> str:
    from annio.settings import settings

    if key in ("", "/"):
        if group.path != "/":
            raise ValueError(f"{group.path}: writing to '/' is only allowed on a store's root group")
        return "/"
    key = key.lstrip("/")
    if "/" in key:
        if group.backend == "zarr" or settings.disallow_forward_slash_in_h5ad:
            raise ValueError(f"{group.path}: element name {key!r} contains '/', which is not allowed")
        warnings.warn(
            f"{group.path}: element name {key!r} contains '/'; this creates nested groups and will be an error",
            FutureWarning,
            stacklevel=4,
        )
    if group.backend == "zarr" and any(c in key for c in _UNSAFE_URL_CHARS):
        warnings.warn(
            f"{group.path}: element name {key!r} contains one of {_UNSAFE_URL_CHARS!r}, "
            "which breaks URL-based zarr readers (HTTP, JavaScript viewers)",
            UnsafeElementNameWarning,
            stacklevel=4,
        )
    return key


# ----------------------------------------------------------------------------- public API
def read_elem(elem: Any) -> Any:
    """Read an element (group or array of an h5py file or zarr store) into memory.

    Parameters
    ----------
    elem
        An h5py File/Group/Dataset or zarr Group/Array. From a remote (URL-opened) zarr
        store, every object below the element is fetched concurrently first.
    """
    from annio.io._storage import prefetch

    with prefetch.prefetching(elem, prefetch.plan_tree(elem)):
        return Reader().read_elem(elem)


def write_elem(store: Any, k: str, elem: Any, *, dataset_kwargs: Mapping[str, Any] = EMPTY) -> None:
    """Write ``elem`` as child ``k`` of ``store`` in the anndata format.

    Parameters
    ----------
    store
        An h5py File/Group or zarr Group. Writing into a zarr store with consolidated
        metadata reopens it without, writes, and consolidates again.
    k
        Name of the element; ``"/"`` writes into the root and replaces its whole content.
        A path such as ``"mod/rna"`` writes below ``store``, creating the intermediate
        groups (as MuData files hold one AnnData per modality).
    elem
        The value: anything annio can write (arrays, sparse matrices, DataFrames, dicts,
        scalars, AnnData, ...).
    dataset_kwargs
        Passed to every array created below the element (``compression``, ``chunks``,
        ``compressors``, ``shards``, ...).
    """
    from annio.io._storage.zarr_consolidated import writable_group

    with writable_group(store) as group:
        if k in ("", "/") and group.path == "/":
            group.clear()
        group, k = _intermediate_groups(group, k)
        Writer().write_elem(group, k, elem, dataset_kwargs=dataset_kwargs)


def _intermediate_groups(group: StorageGroup, key: str) -> tuple[StorageGroup, str]:
    """For a path key (``"mod/rna"``): the parent group (created as needed) and the last
    name. Names inside written mappings are checked separately (see ``_check_key``)."""
    parts = [p for p in key.strip("/").split("/") if p]
    if len(parts) <= 1:
        return group, key
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"{group.path}: element path {key!r} may not contain '.' or '..'")
    for name in parts[:-1]:
        group = group.require_group(name)
    return group, parts[-1]


def read_dispatched(elem: Any, callback: ReadCallback) -> Any:
    """Read ``elem`` with ``callback(read_func, elem_name, elem, *, iospec)`` replacing the
    default recursion at every node; ``read_func(elem)`` continues with the default."""
    return Reader(callback=callback).read_elem(elem)


def write_dispatched(store: Any, key: str, elem: Any, callback: WriteCallback, *, dataset_kwargs: Mapping[str, Any] = EMPTY) -> None:
    """Write with ``callback(write_func, store, elem_name, elem, *, iospec, dataset_kwargs)``
    called at every node; ``write_func(store, key, elem, dataset_kwargs=...)`` writes by
    default."""
    from annio.io._storage.zarr_consolidated import writable_group

    with writable_group(store) as group:
        if key in ("", "/") and group.path == "/":
            group.clear()
        group, key = _intermediate_groups(group, key)
        Writer(callback=callback).write_elem(group, key, elem, dataset_kwargs=dataset_kwargs)

