"""Metadata-only views of a local store, at the cost of what the format itself needs: h5py
for an ``.h5ad`` file, nothing but :mod:`json` for a zarr store with consolidated metadata
(``zarr.json`` / ``.zmetadata``). ``annio info`` reads through these, so it starts without
zarr, pandas or scipy.

The nodes have the part of the adapter's interface that describing a store needs (``name``,
``is_group``, ``attrs.get``, ``keys``, ``[]``, ``shape``, ``dtype``, ``is_string``, ``chunks``,
``shards``, :func:`codec_of`) and report what :class:`~annio.io._storage.adapter.
StorageArray` reports for the same element (a zarr array's ``dtype`` is numpy's name of it,
a string: printing it needs no numpy). Anything they do not understand for certain (a
zip store, a URL, a store without consolidated metadata, a codec or data type not listed
here, damaged metadata) raises :class:`Unsupported`: the caller then opens the store through
the full adapter, which gives the usual answers and errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from annio.io._storage.urls import is_url

__all__ = ["Unsupported", "open_metadata", "codec_of", "local_kind"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class Unsupported(Exception):
    """The fast metadata view cannot answer for this store: use the full adapter."""


def local_kind(path: Any) -> str | None:
    """``"h5ad"`` for a local HDF5 file, ``"zarr"`` for a local store directory, None otherwise
    (URLs, zip archives, missing paths, objects)."""
    if not isinstance(path, str | os.PathLike) or is_url(path):
        return None
    text = os.fspath(path)
    if isinstance(text, bytes):
        return None
    p = Path(text.removeprefix("file://")).expanduser()
    if p.is_dir():
        return "zarr"
    if p.is_file():
        try:
            with p.open("rb") as fh:
                return "h5ad" if fh.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC else None
        except OSError:
            return None
    return None


@contextmanager
def open_metadata(path: Any) -> Iterator[Any]:
    """Yield the root node of the local store ``path``; raises :class:`Unsupported` when the
    fast view does not apply."""
    kind = local_kind(path)
    if kind is None:
        raise Unsupported(path)
    p = Path(os.fspath(path).removeprefix("file://")).expanduser()
    if kind == "zarr":
        yield _zarr_root(p)
        return
    import h5py

    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise Unsupported(str(err)) from err
    try:
        yield _H5Group(f["/"])
    finally:
        f.close()


def codec_of(node: Any) -> str:
    """How the array ``node`` is compressed (``gzip:4``, ``zstd:0``, ``none``, ...), for a
    node of this module or of the full adapter."""
    if isinstance(node, _Node):
        return node.codec
    from annio.io._storage.describe import codec

    return codec(node)


# ----------------------------------------------------------------------------- nodes
class _Node:
    is_group = False
    zarr_format: int | None = None

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


class _H5Attrs(Mapping):
    """h5py attributes decoded as the adapter decodes them (str, lists, Python scalars)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> Any:
        import numpy as np

        value = self._raw[key]
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "SO" or _h5_string_info(value.dtype) is not None:
                return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]
            if value.ndim == 0:
                return value.item()
            if value.size == 0 and value.dtype.kind == "f":
                return []
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw.keys())

    def __len__(self) -> int:
        return len(self._raw)


def _h5_string_info(dtype: Any) -> Any:
    import h5py

    return h5py.check_string_dtype(dtype)


class _H5Group(_Node):
    is_group = True

    def __init__(self, raw: Any) -> None:
        super().__init__(raw.name)
        self.raw = raw
        self.attrs = _H5Attrs(raw.attrs)

    def keys(self) -> list[str]:
        return list(self.raw.keys())

    def __getitem__(self, key: str) -> _Node:
        import h5py

        child = self.raw[key]
        if isinstance(child, h5py.Group):
            return _H5Group(child)
        if isinstance(child, h5py.Dataset):
            return _H5Array(child)
        raise Unsupported(f"{child!r}")


class _H5Array(_Node):
    def __init__(self, raw: Any) -> None:
        super().__init__(raw.name)
        self.raw = raw
        self.attrs = _H5Attrs(raw.attrs)
        self.shards = None

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.raw.shape is None else tuple(self.raw.shape)

    @property
    def is_string(self) -> bool:
        return _h5_string_info(self.raw.dtype) is not None or self.raw.dtype.kind == "S"

    @property
    def dtype(self) -> Any:
        import numpy as np

        info = _h5_string_info(self.raw.dtype)
        if info is not None and info.length is None:
            return np.dtype(object)
        return np.dtype(self.raw.dtype)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return None if self.raw.chunks is None else tuple(self.raw.chunks)

    @property
    def codec(self) -> str:
        from annio.io._storage.describe import h5_codec

        return h5_codec(self.raw)


# ----------------------------------------------------------------------------- zarr (JSON)
def _load(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError) as err:
        raise Unsupported(f"{path}: {err}") from err


def _zarr_root(root: Path) -> _ZarrGroup:
    """The root of a store from its consolidated metadata (v3 inline, or v2 ``.zmetadata``)."""
    v3, v2 = root / "zarr.json", root / ".zgroup"
    if v3.is_file() == v2.is_file():
        raise Unsupported("not exactly one of zarr.json and .zgroup")
    if v3.is_file():
        meta = _load(v3)
        cons = meta.get("consolidated_metadata") if isinstance(meta, dict) else None
        if meta.get("node_type") != "group" or not isinstance(cons, dict) or cons.get("kind") != "inline":
            raise Unsupported("no inline consolidated metadata")
        nodes = {"": meta, **cons["metadata"]}
        return _ZarrGroup("", 3, nodes, _children(nodes))
    cons = _load(root / ".zmetadata") if (root / ".zmetadata").is_file() else None
    if not isinstance(cons, dict) or not isinstance(cons.get("metadata"), dict):
        raise Unsupported("no consolidated metadata")
    flat: dict[str, dict[str, Any]] = {}
    for key, value in cons["metadata"].items():
        node, _, doc = key.rpartition("/")
        if doc in (".zarray", ".zgroup"):
            flat.setdefault(node, {})["node"] = value
            flat[node]["node_type"] = "array" if doc == ".zarray" else "group"
        elif doc == ".zattrs":
            flat.setdefault(node, {})["attributes"] = value
    nodes = {k: {**v["node"], "node_type": v["node_type"], "attributes": v.get("attributes", {})} for k, v in flat.items() if "node" in v}
    if "" not in nodes or nodes[""]["node_type"] != "group":
        raise Unsupported("no root group")
    return _ZarrGroup("", 2, nodes, _children(nodes))


def _children(nodes: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each group's members in the order the consolidated metadata lists them (zarr's order)."""
    out: dict[str, list[str]] = {}
    for key in nodes:
        if key:
            parent, _, name = key.rpartition("/")
            out.setdefault(parent, []).append(name)
    return out


class _ZarrGroup(_Node):
    is_group = True

    def __init__(self, key: str, zarr_format: int, nodes: dict[str, Any], children: dict[str, list[str]]) -> None:
        super().__init__("/" + key)
        self.zarr_format = zarr_format
        self._key, self._nodes, self._children = key, nodes, children
        attrs = nodes[key].get("attributes", {})
        if not isinstance(attrs, dict):
            raise Unsupported(f"{self.path}: attributes are not an object")
        self.attrs = attrs

    def keys(self) -> list[str]:
        return list(self._children.get(self._key, []))

    def __getitem__(self, name: str) -> _Node:
        key = f"{self._key}/{name}" if self._key else name
        meta = self._nodes.get(key)
        if meta is None:
            raise KeyError(name)
        if meta.get("node_type") == "group":
            return _ZarrGroup(key, self.zarr_format, self._nodes, self._children)
        if meta.get("node_type") == "array":
            return (_ZarrArrayV3 if self.zarr_format == 3 else _ZarrArrayV2)("/" + key, meta)
        raise Unsupported(f"/{key}: unknown node type")


def _ints(value: Any, what: str, minimum: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        raise Unsupported(f"{what}: {value!r}")
    return tuple(value)


# numpy's names of the v3 data types this view knows (anything else: the full adapter)
_V3_TYPES = {f"{k}{n}" for k, sizes in (("int", (8, 16, 32, 64)), ("uint", (8, 16, 32, 64)), ("float", (16, 32, 64)),
                                         ("complex", (64, 128))) for n in sizes} | {"bool"}
_V2_KINDS = {"b": "bool", "i": "int", "u": "uint", "f": "float", "c": "complex"}


def _v2_dtype(text: Any) -> str:
    """numpy's name of a v2 ``dtype`` string, e.g. ``<f4`` -> ``float32``."""
    if text == "|O":
        return "object"
    if not isinstance(text, str) or len(text) < 3:
        raise Unsupported(f"dtype {text!r}")
    order, kind, size = text[0], text[1], text[2:]
    if order in "<|" and kind in _V2_KINDS and size.isdigit():
        return "bool" if kind == "b" and size == "1" else f"{_V2_KINDS[kind]}{int(size) * 8}"
    if kind in "US" and size.isdigit():
        return text
    raise Unsupported(f"dtype {text!r}")


def _codec_text(name: str, level: Any, cname: Any = None) -> str:
    text = f"{name}({cname})" if cname else name
    return f"{text}:{level}" if level is not None else text


class _ZarrArray(_Node):
    def __init__(self, path: str, meta: dict[str, Any]) -> None:
        super().__init__(path)
        self.attrs = meta.get("attributes", {})
        if not isinstance(self.attrs, dict):
            raise Unsupported(f"{path}: attributes are not an object")
        self.shape = _ints(meta.get("shape"), f"{path} shape", 0)

    @property
    def dtype(self) -> str:
        """numpy's name of the dtype (``str(adapter_node.dtype)``): no numpy import needed."""
        return self._dtype_name


class _ZarrArrayV3(_ZarrArray):
    _SERIALIZERS = ("bytes", "vlen-utf8")

    def __init__(self, path: str, meta: dict[str, Any]) -> None:
        super().__init__(path, meta)
        grid = meta.get("chunk_grid") or {}
        if grid.get("name") != "regular":
            raise Unsupported(f"{path}: chunk grid {grid.get('name')!r}")
        outer = _ints(grid.get("configuration", {}).get("chunk_shape"), f"{path} chunks", 1)
        codecs = meta.get("codecs")
        if not isinstance(codecs, list) or not codecs or not all(isinstance(c, dict) for c in codecs):
            raise Unsupported(f"{path}: codecs")
        if codecs[0].get("name") == "sharding_indexed":
            config = codecs[0].get("configuration", {})
            self.chunks, self.shards = _ints(config.get("chunk_shape"), f"{path} inner chunks", 1), outer
            codecs = config.get("codecs")
            if not isinstance(codecs, list) or not all(isinstance(c, dict) for c in codecs):
                raise Unsupported(f"{path}: inner codecs")
        else:
            self.chunks, self.shards = outer, None
        self._codecs = codecs
        data_type = meta.get("data_type")
        self.is_string = data_type == "string"
        if not self.is_string and data_type not in _V3_TYPES:
            raise Unsupported(f"{path}: data type {data_type!r}")
        self._dtype_name = "object" if self.is_string else data_type

    @property
    def codec(self) -> str:
        parts = []
        for c in self._codecs:
            name, config = c.get("name"), c.get("configuration") or {}
            if name in self._SERIALIZERS:
                continue
            if name in ("zstd", "gzip"):
                parts.append(_codec_text(name, config.get("level")))
            elif name == "blosc":
                parts.append(_codec_text("blosc", config.get("clevel"), config.get("cname")))
            elif name in ("crc32c", "transpose"):
                parts.append(name)
            else:
                raise Unsupported(f"{self.path}: codec {name!r}")
        return "+".join(parts) if parts else "none"


class _ZarrArrayV2(_ZarrArray):
    _IDS = ("blosc", "zstd", "gzip", "zlib", "bz2", "lz4", "vlen-utf8")

    def __init__(self, path: str, meta: dict[str, Any]) -> None:
        super().__init__(path, meta)
        self.chunks, self.shards = _ints(meta.get("chunks"), f"{path} chunks", 1), None
        self._dtype_name = _v2_dtype(meta.get("dtype"))
        self.is_string = self._dtype_name == "object" or self._dtype_name[1:2] == "U"
        filters, compressor = meta.get("filters") or [], meta.get("compressor")
        self._codecs = [*filters, *([compressor] if compressor is not None else [])]
        if not all(isinstance(c, dict) for c in self._codecs):
            raise Unsupported(f"{path}: codecs")

    @property
    def codec(self) -> str:
        parts = []
        for c in self._codecs:
            if c.get("id") not in self._IDS:
                raise Unsupported(f"{self.path}: codec {c.get('id')!r}")
            level = c.get("level")
            parts.append(_codec_text(c["id"], level if level is not None else c.get("clevel"), c.get("cname")))
        return "+".join(parts) if parts else "none"
