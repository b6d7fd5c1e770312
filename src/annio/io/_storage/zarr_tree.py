"""Reading zarr v3 stores (local, or remote and fetched ahead) from their consolidated metadata, without a zarr-python
object per node.

Opening a consolidated store with zarr-python parses every node's document into metadata
objects, and each child it opens, each small array it reads, costs an event-loop round
trip: ~1 ms per element, most of a read of a ``uns`` with 20,000 entries. For a read-only
:class:`zarr.storage.LocalStore` whose root ``zarr.json`` holds inline consolidated
metadata, :func:`open_tree` parses that JSON once; the adapter's nodes then answer
membership, attributes, shapes and dtypes from it, and arrays held in one chunk of a plain
layout (``bytes`` or ``vlen-utf8``, then ``zstd``, optionally inside a one-chunk
``sharding_indexed`` shard) are decoded from their chunk file directly. Everything else —
other arrays' data, other dtypes, selections — goes through the zarr-python object of the
node, opened on first use from its own ``zarr.json``.

Consolidated metadata that this module does not recognise entirely leaves the whole store
to zarr-python (which validates it and warns as before).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import zstd as _zstd
from numcodecs.vlen import VLenUTF8
from zarr.storage import LocalStore

from annio.errors import FormatError, MissingElementError
from annio.io._storage import adapter, guards, zarr_shards
from annio.io._storage.attrs import Attributes, KnownAttributes, loads_json
from annio.io._storage.zarr_tree_layout import doc_layout, zstd_content_size

__all__ = ["open_tree", "tree_root_group"]

_VLEN = VLenUTF8()
_EMPTY = 2**64 - 1
_MISS = object()
_NUMERIC = {
    "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4", "uint32": "<u4",
    "int64": "<i8", "uint64": "<u8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
}  # fmt: skip


class _Tree:
    """The parsed consolidated metadata of one store."""

    def __init__(self, store: Any, root_group: zarr.Group, docs: dict[str, dict[str, Any]], children: dict[str, list[str]]) -> None:
        self.store, self.root_group, self.docs, self.children = store, root_group, docs, children
        self.zarr_nodes: dict[str, Any] = {}
        self.local = type(store) is LocalStore
        self.directory = str(store.root) if self.local else ""

    def zarr_node(self, path: str) -> Any:
        """The zarr-python node at ``path``, built from its document (no store access, no
        event-loop round trip); zarr-python opens it itself when it rejects the document."""
        if not path:
            return self.root_group
        node = self.zarr_nodes.get(path)
        if node is None:
            node = self.zarr_nodes[path] = self._zarr_node_from_doc(path)
        return node

    def _zarr_node_from_doc(self, path: str) -> Any:
        from zarr.core.array import AsyncArray
        from zarr.core.group import AsyncGroup, GroupMetadata
        from zarr.core.metadata import ArrayV3Metadata
        from zarr.storage import StorePath

        doc = dict(self.docs[path])
        doc.pop("consolidated_metadata", None)  # a child's own view of its members: none listed
        try:
            where = StorePath(self.store, path)
            if doc["node_type"] == "array":
                return zarr.Array(AsyncArray(metadata=ArrayV3Metadata.from_dict(doc), store_path=where))
            return zarr.Group(AsyncGroup(metadata=GroupMetadata.from_dict(doc), store_path=where))
        except (TypeError, ValueError, KeyError):
            # zarr-python reads the node's own document (not the consolidated copy) and says what is wrong
            unserve = getattr(self.store, "unserve_node_document", None)
            if unserve is not None:
                unserve(path)
            return self.root_group[path]

    def object_bytes(self, key: str) -> Any:
        """The object ``key`` (None: absent); :data:`_MISS` when a remote store has not
        fetched it ahead (then zarr-python reads it)."""
        if not self.local:
            return self.store.cached_object(key, _MISS)
        try:
            fd = os.open(f"{self.directory}/{key}", os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:  # two system calls, not open()'s file objects: chunk files are many and small
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
            while len(data) < size and (more := os.read(fd, size - len(data))):
                data += more
            return data
        finally:
            os.close(fd)


def _ints(value: Any, minimum: int) -> bool:
    if type(value) is not list:
        return False
    for v in value:
        if type(v) is not int or v < minimum:
            return False
    return True


def _recognised(doc: Any) -> bool:
    """A document whose structure this module understands (values zarr would reject, e.g.
    chunk sizes below 1, are not recognised: zarr-python judges those)."""
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or not isinstance(doc.get("attributes", {}), dict):
        return False
    if doc.get("node_type") == "group":
        return doc.get("consolidated_metadata") in (None, {"kind": "inline", "must_understand": False, "metadata": {}})
    if doc.get("node_type") != "array":
        return False
    grid = doc.get("chunk_grid")
    shape = doc.get("shape")
    if not (_ints(shape, 0) and isinstance(grid, dict) and grid.get("name") == "regular"):
        return False
    chunk_shape = (grid.get("configuration") or {}).get("chunk_shape")
    codecs = doc.get("codecs")
    if not (_ints(chunk_shape, 1) and len(chunk_shape) == len(shape) and isinstance(codecs, list) and codecs and all(isinstance(c, dict) for c in codecs)):
        return False
    if codecs[0].get("name") == "sharding_indexed":
        inner = (codecs[0].get("configuration") or {}).get("chunk_shape")
        if not (_ints(inner, 1) and len(inner) == len(shape)):
            return False
    return isinstance(doc.get("data_type"), str | dict) and "fill_value" in doc


def open_tree(store: Any) -> zarr.Group | None:
    """A root ``zarr.Group`` (built without zarr-python reading the consolidated metadata)
    carrying the parsed tree for the adapter; None when the store is not a local zarr v3
    store with consolidated metadata this module recognises. (Remote stores:
    :func:`annio.io._storage.zarr_tree_plan.open_remote_tree`.)"""
    if type(store) is not LocalStore or not store.read_only:
        return None
    try:
        doc = (Path(store.root) / "zarr.json").read_bytes()
    except OSError:
        return None
    return tree_root_group(store, doc)


def tree_root_group(store: Any, doc: bytes) -> zarr.Group | None:
    """The root group of ``store`` carrying the tree parsed from its root ``zarr.json``
    ``doc``; None unless that is a zarr v3 group with inline consolidated metadata this
    module recognises entirely."""
    try:
        root_doc = loads_json(doc)
    except ValueError:
        return None
    if not isinstance(root_doc, dict) or root_doc.get("zarr_format") != 3 or root_doc.get("node_type") != "group":
        return None
    parsed = _parse_tree(root_doc)
    if parsed is None:
        return None
    from zarr.core.group import AsyncGroup, GroupMetadata
    from zarr.storage import StorePath

    try:
        meta = GroupMetadata(attributes=root_doc.get("attributes", {}), zarr_format=3)
    except (TypeError, ValueError):
        return None
    group = zarr.Group(AsyncGroup(metadata=meta, store_path=StorePath(store, "")))
    object.__setattr__(group, "_annio_tree", _Tree(store, group, *parsed))
    return group


def _parse_tree(root_doc: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]] | None:
    """(documents by path, children by group path) of a root document with inline
    consolidated metadata this module recognises entirely, else None."""
    consolidated = root_doc.get("consolidated_metadata")
    if not isinstance(consolidated, dict) or consolidated.get("kind") != "inline" or not isinstance(consolidated.get("metadata"), dict):
        return None
    if not isinstance(root_doc.get("attributes", {}), dict):
        return None
    docs: dict[str, dict[str, Any]] = {"": root_doc}
    children: dict[str, list[str]] = {"": []}
    for key, doc in consolidated["metadata"].items():
        if not isinstance(key, str) or not key or key.startswith("/") or not _recognised(doc):
            return None
        parent, _, name = key.rpartition("/")
        if parent not in children:
            return None  # a child listed before (or without) its parent group
        docs[key] = doc
        children[parent].append(name)
        if doc["node_type"] == "group":
            children[key] = []
    return docs, children


# ----------------------------------------------------------------------------- nodes
class _TreeNode:
    """What group and array nodes of the tree answer alike, from their documents."""

    _tree: _Tree
    _key: str

    @property
    def path(self) -> str:
        return "/" + self._key

    @property
    def zarr_format(self) -> int:
        return 3

    @property
    def attrs(self) -> Attributes:
        return KnownAttributes(self, dict(self._tree.docs[self._key].get("attributes", {})))

    @property
    def filename(self) -> str:
        return str(self._tree.store)


class TreeGroup(_TreeNode, adapter.StorageGroup):
    """A group answered from the consolidated metadata."""

    def __init__(self, tree: _Tree, path: str) -> None:  # no super(): raw is deferred
        self.backend = "zarr"
        self._tree, self._key = tree, path
        self._names = tree.children[path]
        self._members = set(self._names)
        self._opened: dict[str, Any] = {}

    @property
    def raw(self) -> Any:  # type: ignore[override]
        raw = self.__dict__.get("_raw")
        if raw is None:
            raw = self.__dict__["_raw"] = self._tree.zarr_node(self._key)
        return raw

    def keys(self) -> list[str]:
        return list(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __getitem__(self, key: str) -> Any:
        node = self._opened.get(key)
        if node is None:
            node = self._opened[key] = self._open(key)
        return node

    def _open(self, key: str) -> Any:
        if key not in self._members:
            raise MissingElementError(self._child_path(key), "element is missing")
        path = f"{self._key}/{key}" if self._key else key
        doc = self._tree.docs[path]
        if doc["node_type"] == "group":
            return TreeGroup(self._tree, path)
        data_type = doc["data_type"]
        if isinstance(data_type, str) and (data_type == "string" or data_type in _NUMERIC):
            return TreeArray(self._tree, path, doc)
        try:
            return adapter.wrap(self._tree.zarr_node(path))
        except FormatError:
            raise
        except adapter._BACKEND_ERRORS as err:
            raise FormatError(self._child_path(key), f"could not open element: {err}") from err


class TreeArray(_TreeNode, adapter.StorageArray):
    """A numeric or string array answered from the consolidated metadata; one-chunk arrays
    of a plain layout are decoded here, everything else through zarr-python."""

    def __init__(self, tree: _Tree, path: str, doc: dict[str, Any]) -> None:  # no super(): raw is deferred
        self.backend = "zarr"
        self._tree, self._key, self._doc = tree, path, doc
        self._string = doc["data_type"] == "string"
        codecs = doc["codecs"]
        grid = tuple(doc["chunk_grid"]["configuration"]["chunk_shape"])
        if codecs[0].get("name") == "sharding_indexed":
            self._chunks, self._shards = tuple(codecs[0]["configuration"]["chunk_shape"]), grid
        else:
            self._chunks, self._shards = grid, None

    @property
    def raw(self) -> Any:  # type: ignore[override]
        raw = self.__dict__.get("_raw")
        if raw is None:
            try:
                raw = self._tree.zarr_node(self._key)
            except adapter._BACKEND_ERRORS as err:
                raise FormatError(self.path, f"could not open element: {err}") from err
            self.__dict__["_raw"] = raw
        return raw

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._doc["shape"])

    @property
    def is_string(self) -> bool:
        return self._string

    @property
    def dtype_is_vlen(self) -> bool:
        return self._string

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object) if self._string else np.dtype(_NUMERIC[self._doc["data_type"]])

    @property
    def chunks(self) -> tuple[int, ...]:
        return self._chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self._shards

    def read(self, selection: Any = ...) -> np.ndarray:
        if selection is Ellipsis or (type(selection) is tuple and not selection and not self._doc["shape"]):
            steps = self._plan()
            if steps is not None:
                shape = self.shape
                self.check_size(guards.declared_nbytes(shape, self.dtype if not self._string else np.dtype(object)))
                return self._read_chunk(steps, shape)
            lay = None if self._string else self._layout()
            if lay is not None:
                out = np.empty(self.shape, dtype=self.dtype)
                self.check_size(out.nbytes)
                try:
                    if out.size:
                        zarr_shards.read_layout(lay, out)
                except OSError as err:
                    raise FormatError(self.path, f"could not read data: {err}") from err
                return out
        if not self._tree.local:
            out = self._read_cached(selection)
            if out is not None:
                return out
        return super().read(selection)

    def read_into(self, out: np.ndarray, queue: Any = None) -> None:
        steps = None if self._string or out.dtype != self.dtype or out.shape != self.shape or not out.flags.c_contiguous else self._plan()
        if steps is None:
            return super().read_into(out)
        self.check_size(out.nbytes)
        if (values := self._read_chunk(steps, out.shape, out, queue)) is not out:
            out[...] = values

    def _read_cached(self, selection: Any) -> np.ndarray | None:
        """A selection of a 1-D numeric or string array decoded from bytes a remote prefetch holds
        (:mod:`~annio.io._storage.zarr_tree_rows`); None: zarr-python reads it."""
        from annio.io._storage import zarr_tree_rows

        lookup = getattr(self._tree.store, "cached_bytes", None)
        if lookup is None or len(self._doc["shape"]) != 1:
            return None
        request = zarr_tree_rows.row_request(selection, self._doc["shape"][0])
        if request is None:
            return None
        lay = self.__dict__.get("_rlay", False)
        if lay is False:
            lay = self.__dict__["_rlay"] = doc_layout(self._doc, self.path, self.dtype, self._chunks, self._shards, self._key)
        if lay is None:
            return None
        return zarr_tree_rows.read_cached_rows(lay, *request, lookup, self._tree.store.NOT_CACHED)

    def _layout(self) -> zarr_shards.Layout | None:
        """The chunk layout of a numeric array of several chunks (or shards) that
        :func:`~annio.io._storage.zarr_shards.read_layout` decodes (``bytes`` then optionally
        ``zstd``, inside a ``sharding_indexed`` codec or not), read without zarr-python."""
        lay = self.__dict__.get("_lay", False)
        if lay is False and not self._tree.local:  # read_layout reads chunk files from a local directory
            lay = self.__dict__["_lay"] = None
        if lay is False:
            lay = self.__dict__["_lay"] = doc_layout(self._doc, self.path, self.dtype, self._chunks, self._shards, f"{self._tree.directory}/{self._key}")
        return lay

    def _plan(self) -> list[tuple[int, bool]] | None:
        """The zstd steps of a one-chunk plain layout (decoded here), else None."""
        plan = self.__dict__.get("_steps", False)
        if plan is not False:
            return plan
        plan = None
        doc, shape = self._doc, tuple(self._doc["shape"])
        codecs = doc["codecs"]
        if self._shards is not None:
            conf = codecs[0].get("configuration") or {}
            index = conf.get("index_codecs") or []
            ok = (
                len(codecs) == 1 and self._shards == shape and self._chunks == shape and conf.get("index_location", "end") == "end"
                and [c.get("name") for c in index] == ["bytes", "crc32c"] and (index[0].get("configuration") or {}).get("endian", "little") == "little"
            )  # fmt: skip
            codecs = conf.get("codecs") if ok else None
        elif self._chunks != shape:
            codecs = None
        cke = doc.get("chunk_key_encoding") or {}
        if codecs and cke.get("name") == "default" and (cke.get("configuration") or {}).get("separator", "/") == "/" and not doc.get("storage_transformers") and 0 not in shape:
            first = codecs[0]
            endian = (first.get("configuration") or {}).get("endian", "little")
            if (first.get("name") == ("vlen-utf8" if self._string else "bytes")) and (self._string or endian == "little"):
                steps = []
                for codec in codecs[1:]:
                    conf = codec.get("configuration") or {}
                    if codec.get("name") != "zstd":
                        break
                    steps.append((int(conf.get("level", 0)), bool(conf.get("checksum", False))))
                else:
                    plan = steps
        self.__dict__["_steps"] = plan
        return plan

    def _read_chunk(self, steps: list[tuple[int, bool]], shape: tuple[int, ...], out: np.ndarray | None = None, queue: Any = None) -> np.ndarray:
        """The array's one chunk, decoded; straight into ``out`` (C-contiguous, native) when
        its zstd frame declares exactly that size, then by ``queue`` if given."""
        rel = "c/" + "/".join(["0"] * len(shape)) if shape else "c"
        try:
            payload: Any = self._tree.object_bytes(f"{self._key}/{rel}")
        except OSError as err:
            raise FormatError(self.path, f"could not read data: {err}") from err
        if payload is _MISS:
            return super().read(...)
        try:
            if payload is not None and self._shards is not None:
                payload = self._inner(payload)
            if payload is None:
                return self._filled(shape)
            dtype = self.dtype
            if len(steps) == 1 and not self._string and zstd_content_size(payload) == math.prod(shape) * dtype.itemsize:
                if out is None:
                    out = np.empty(shape, dtype=dtype.newbyteorder("="))
                if queue is not None:
                    queue.add(payload, out, self.path)
                else:
                    _zstd.decompress(payload, out)  # the frame fills exactly `out`: no copy
                return out
            for _level, _checksum in steps:
                payload = _zstd.decompress(payload)
            if self._string:
                out = _VLEN.decode(payload)
                if out.size != math.prod(shape):
                    raise ValueError(f"chunk holds {out.size} strings, expected {math.prod(shape)}")
                return out.reshape(shape)
            flat = np.frombuffer(payload, dtype=dtype)
            if flat.size != math.prod(shape):
                raise ValueError(f"chunk holds {flat.size} values, expected {math.prod(shape)}")
            return flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
        except FormatError:
            raise
        except (ValueError, RuntimeError, TypeError) as err:
            raise FormatError(self.path, f"could not decode chunk {rel!r}: {err}") from err

    def _inner(self, shard: bytes) -> bytes | None:
        if len(shard) < 20:
            raise FormatError(self.path, "shard is shorter than its index — corrupt shard")
        raw, crc = shard[-20:-4], shard[-4:]
        if google_crc32c.value(raw) != int.from_bytes(crc, "little"):
            raise FormatError(self.path, "shard index checksum (crc32c) mismatch — corrupt shard")
        offset, nbytes = (int(v) for v in np.frombuffer(raw, dtype="<u8"))
        if offset == _EMPTY and nbytes == _EMPTY:
            return None
        if offset + nbytes > len(shard) - 20:
            raise FormatError(self.path, "shard index points past the shard's data — corrupt shard")
        return memoryview(shard)[offset : offset + nbytes]

    def _filled(self, shape: tuple[int, ...]) -> np.ndarray:
        fill = self._doc["fill_value"]
        if self._string:
            return np.full(shape, "" if fill is None else fill, dtype=object)
        dtype = np.dtype(_NUMERIC[self._doc["data_type"]]).newbyteorder("=")
        if isinstance(fill, str):  # "NaN", "Infinity", "-Infinity" or hex
            fill = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(fill)
            if fill is None:
                return super().read(...)
        return np.full(shape, fill, dtype=dtype)


def _wrap_tree_root(group: Any) -> Any:
    tree = getattr(group, "_annio_tree", None)
    return None if tree is None else TreeGroup(tree, "")


adapter.provide_tree_root(_wrap_tree_root)
