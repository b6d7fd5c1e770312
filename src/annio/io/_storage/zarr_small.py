"""Small zarr arrays and groups written straight to a local store, without zarr-python.

zarr-python spends a few milliseconds of CPU (and an event-loop round trip) on every array
it creates; a ``uns`` with 20,000 scalars, or a dataframe with 2,000 columns, is dominated
by that. For arrays held in one chunk (and at most one shard) in a
:class:`zarr.storage.LocalStore`, annio writes the metadata documents (``zarr.json``, or
``.zarray`` + ``.zattrs``) and the chunk file itself:

* the metadata document is zarr-python's own: a *template* is made once per (format, dtype,
  rank, options, zarr config) by creating a 1-element array with zarr-python in a
  :class:`~zarr.storage.MemoryStore`; only the shape, the chunk (and inner chunk) shape and
  the attributes are filled in, and the JSON is dumped as zarr-python dumps it;
* the chunk is encoded with the same numcodecs codecs zarr-python calls (``bytes``,
  ``vlen-utf8``, ``zstd``, and v2 compressors/filters by their numcodecs config), with a
  one-chunk ``sharding_indexed`` index (``bytes`` + ``crc32c``) around it when sharded; a chunk
  holding only the fill value is not written, as ``array.write_empty_chunks=False`` does.

Any other codec, chunk key encoding or layout, and any other store, leaves the work to
zarr-python (:func:`write_array` returns None). Groups are written with zarr-python's own
``GroupMetadata`` serialiser and wrapped in a ``zarr.Group`` object without any I/O.
Part of the storage adapter: encodings never see it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import get_codec
from numcodecs import zstd as _zstd
from numcodecs.vlen import VLenUTF8
from zarr.storage import LocalStore, MemoryStore

__all__ = ["local_dir", "child_exists", "remove_child", "write_array", "create_group", "json_bytes"]

_VLEN = VLenUTF8()
_TEMPLATES: dict[Any, Any] = {}
_MAX_TEMPLATES = 512
_TEMPLATE_KEYS_SKIP = {"attributes", "chunks", "shards"}


def local_dir(group: zarr.Group) -> Path | None:
    """The directory of a zarr group in a writable local store, else None."""
    store = group.store
    if type(store) is not LocalStore or store.read_only:
        return None
    return Path(store.root, group.path) if group.path else Path(store.root)


def child_exists(directory: Path, key: str) -> bool:
    """Whether ``key`` is a zarr node (v2 or v3) or any entry inside ``directory``."""
    return os.path.lexists(directory / key)


def remove_child(directory: Path, key: str) -> None:
    """Delete the child ``key`` (a node's directory or a stray file)."""
    path = directory / key
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def json_bytes(value: Any) -> bytes:
    """JSON exactly as zarr-python writes its metadata documents."""
    return json.dumps(value, indent=zarr.config.get("json_indent"), allow_nan=True).encode()


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------- groups
def create_group(parent: zarr.Group, directory: Path, key: str, attributes: dict[str, Any]) -> zarr.Group:
    """Write group ``key`` (its metadata documents) under ``directory`` and return the
    ``zarr.Group`` for it, built without reading the store."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import AsyncGroup, GroupMetadata

    meta = GroupMetadata(attributes=attributes, zarr_format=parent.metadata.zarr_format)
    target = directory / key
    target.mkdir(parents=True, exist_ok=True)
    for name, buf in meta.to_buffer_dict(default_buffer_prototype()).items():
        _write(target / name, buf.to_bytes())
    return zarr.Group(AsyncGroup(metadata=meta, store_path=parent._async_group.store_path / key))


# ----------------------------------------------------------------------------- templates
def _fingerprint(kwargs: dict[str, Any]) -> str | None:
    try:
        return repr(sorted((k, v) for k, v in kwargs.items() if k not in _TEMPLATE_KEYS_SKIP))
    except Exception:  # unorderable / odd values: no template, zarr-python writes
        return None


def _template(fmt: int, dtype: np.dtype, is_string: bool, ndim: int, sharded: bool, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """zarr-python's metadata document for a 1-element array made with these options, with
    what :func:`write_array` needs to encode chunks; None when the layout is not supported."""
    fp = _fingerprint(kwargs)
    if fp is None:
        return None
    key = (fmt, "string" if is_string else dtype.str, ndim, sharded, fp, repr(zarr.config.get("array")), zarr.config.get("json_indent"))
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    store = MemoryStore()
    ones = (1,) * ndim
    options = {k: v for k, v in kwargs.items() if k not in _TEMPLATE_KEYS_SKIP}
    if ndim:
        options["chunks"] = ones
        if sharded:
            options["shards"] = ones
    from zarr.dtype import VariableLengthUTF8

    # through a group, as annio creates arrays (zarr.create_array picks other v2 defaults)
    zarr.open_group(store, mode="w", zarr_format=fmt).create_array("t", shape=ones, dtype=VariableLengthUTF8() if is_string else dtype, **options)  # type: ignore[arg-type]
    files = {k: v.to_bytes() for k, v in store._store_dict.items()}
    if fmt == 3:
        doc = json.loads(files["t/zarr.json"])
        plan = _plan_v3(doc, dtype, is_string)
    else:
        doc = json.loads(files["t/.zarray"])
        plan = _plan_v2(doc, dtype, is_string)
    if len(_TEMPLATES) >= _MAX_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[key] = plan
    return plan


def _bytes_codec_ok(codec: dict[str, Any], dtype: np.dtype) -> bool:
    endian = (codec.get("configuration") or {}).get("endian")
    return endian == "little" or (endian is None and dtype.itemsize == 1)


def _plan_v3(doc: dict[str, Any], dtype: np.dtype, is_string: bool) -> dict[str, Any] | None:
    cke = doc.get("chunk_key_encoding", {})
    if cke.get("name") != "default" or (cke.get("configuration") or {}).get("separator", "/") != "/":
        return None
    if doc.get("storage_transformers") or doc.get("chunk_grid", {}).get("name") != "regular":
        return None
    codecs = doc["codecs"]
    sharded = bool(codecs) and codecs[0].get("name") == "sharding_indexed"
    if sharded:
        conf = codecs[0]["configuration"]
        index = conf.get("index_codecs", [])
        if len(codecs) != 1 or conf.get("index_location", "end") != "end" or [c.get("name") for c in index] != ["bytes", "crc32c"] or not _bytes_codec_ok(index[0], np.dtype("<u8")):
            return None
        codecs = conf["codecs"]
    steps = _v3_steps(codecs, dtype, is_string)
    if steps is None:
        return None
    return {"fmt": 3, "doc": doc, "sharded": sharded, "steps": steps, "fill": doc["fill_value"], "is_string": is_string, "dtype": dtype}


def _v3_steps(codecs: list[dict[str, Any]], dtype: np.dtype, is_string: bool) -> list[Any] | None:
    if not codecs:
        return None
    first, rest = codecs[0], codecs[1:]
    if is_string and first.get("name") != "vlen-utf8":
        return None
    if not is_string and (first.get("name") != "bytes" or not _bytes_codec_ok(first, dtype)):
        return None
    steps: list[Any] = []
    for codec in rest:
        if codec.get("name") != "zstd":
            return None
        conf = codec.get("configuration") or {}
        steps.append(("zstd", int(conf.get("level", 0)), bool(conf.get("checksum", False))))
    return steps


def _plan_v2(doc: dict[str, Any], dtype: np.dtype, is_string: bool) -> dict[str, Any] | None:
    if doc.get("order") != "C" or doc.get("dimension_separator", ".") != ".":
        return None
    filters = doc.get("filters") or []
    if is_string:
        if doc.get("dtype") != "|O" or [f.get("id") for f in filters] != ["vlen-utf8"]:
            return None
    elif filters or np.dtype(doc["dtype"]) != dtype.newbyteorder("<") and dtype.itemsize > 1:
        return None
    compressor = doc.get("compressor")
    steps = [("numcodecs", get_codec(dict(compressor)))] if compressor else []
    return {"fmt": 2, "doc": doc, "sharded": False, "steps": steps, "fill": doc["fill_value"], "is_string": is_string, "dtype": dtype}


# ----------------------------------------------------------------------------- arrays
def _is_fill(data: np.ndarray, plan: dict[str, Any]) -> bool:
    fill = plan["fill"]
    if plan["is_string"]:
        return bool(np.all(data.reshape(-1) == ("" if fill is None else fill)))
    if fill is None:  # v2 arrays without a fill value: every chunk is written
        return False
    dtype = data.dtype
    if dtype.kind == "c" or not isinstance(fill, bool | int | float):
        return False
    utype = np.dtype(f"<u{dtype.itemsize}")
    bits = np.asarray(fill, dtype=dtype).reshape(1).view(utype)[0]  # compare bit patterns, like zarr
    flat = np.ascontiguousarray(data).reshape(-1).view(utype)
    return bool(flat[0] == bits and not np.any(flat != bits))


def _encode(data: np.ndarray, plan: dict[str, Any]) -> bytes:
    if plan["is_string"]:
        buf: Any = _VLEN.encode(np.ascontiguousarray(data, dtype=object).reshape(-1))
    else:
        # an array, not bytes: blosc's shuffle takes the item size from it, as in zarr v2
        buf = np.ascontiguousarray(data, dtype=plan["dtype"].newbyteorder("<"))
    for step in plan["steps"]:
        if step[0] == "zstd":
            buf = _zstd.compress(buf, step[1], step[2])
        else:
            buf = step[1].encode(buf)
    buf = bytes(buf)
    if plan["sharded"]:
        index = np.array([[0, len(buf)]], dtype="<u8").tobytes()
        buf = buf + index + google_crc32c.value(index).to_bytes(4, "little")
    return buf


_SHAPE, _ATTRS = "\x00annio-shape\x00", "\x00annio-attributes\x00"


def _with_placeholders(plan: dict[str, Any]) -> dict[str, Any]:
    doc = plan["doc"]
    if plan["fmt"] == 2:
        return {**doc, "shape": _SHAPE, "chunks": _SHAPE}
    grid = doc["chunk_grid"]
    out = {**doc, "shape": _SHAPE, "chunk_grid": {**grid, "configuration": {**grid["configuration"], "chunk_shape": _SHAPE}}, "attributes": _ATTRS}
    if plan["sharded"]:
        shard = doc["codecs"][0]
        out["codecs"] = [{**shard, "configuration": {**shard["configuration"], "chunk_shape": _SHAPE}}]
    return out


def _text_parts(plan: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """The template's JSON text cut at the placeholders: (text, placeholder, indentation of
    its line), so a document is rendered by joining (json.dumps with ``indent`` is pure
    Python and slow; the values put in are small)."""
    parts = plan.get("parts")
    if parts is None:
        text = json.dumps(_with_placeholders(plan), indent=zarr.config.get("json_indent"), allow_nan=True)
        parts = []
        marks = {json.dumps(_SHAPE): _SHAPE, json.dumps(_ATTRS): _ATTRS}
        pos = 0
        while True:
            hits = [(text.find(m, pos), m) for m in marks if text.find(m, pos) >= 0]
            if not hits:
                parts.append((text[pos:], None, ""))
                break
            at, mark = min(hits)
            line = text[text.rfind("\n", 0, at) + 1 : at]
            parts.append((text[pos:at], marks[mark], line[: len(line) - len(line.lstrip(" "))]))
            pos = at + len(mark)
        plan["parts"] = parts
    return parts


def _render(plan: dict[str, Any], shape: list[int], attributes: dict[str, Any]) -> bytes:
    indent = zarr.config.get("json_indent")
    values = {
        _SHAPE: json.dumps(shape, indent=indent) if shape else "[]",
        _ATTRS: json.dumps(attributes, indent=indent, allow_nan=True) if attributes else "{}",
    }
    out = []
    for text, mark, pad in _text_parts(plan):
        out.append(text)
        if mark is not None:
            value = values[mark]
            out.append(value.replace("\n", "\n" + pad) if pad else value)
    return "".join(out).encode()


def write_array(group: zarr.Group, directory: Path, key: str, data: np.ndarray, kwargs: dict[str, Any], is_string: bool) -> bool:
    """Write ``data`` as array ``key`` of ``group`` (at ``directory``) when it fits one chunk
    of a supported layout; False (nothing written) otherwise."""
    shape = data.shape
    chunks, shards = kwargs.get("chunks"), kwargs.get("shards")
    if shape:
        if chunks is None or tuple(chunks) != shape or (shards is not None and tuple(shards) != shape) or 0 in shape:
            return False
    elif shards is not None:
        return False
    if (not is_string and data.dtype.kind not in "biuf") or "config" in kwargs:
        return False
    fmt = group.metadata.zarr_format
    plan = _template(fmt, data.dtype, is_string, len(shape), shards is not None, kwargs)
    if plan is None:
        return False
    attributes = kwargs.get("attributes") or {}
    target = directory / key
    target.mkdir(parents=True, exist_ok=True)
    dims = list(shape)
    if fmt == 3:
        _write(target / "zarr.json", _render(plan, dims, attributes))
        chunk_path = target / "c" / "/".join(["0"] * len(shape)) if shape else target / "c"
    else:
        _write(target / ".zarray", _render(plan, dims, {}))
        _write(target / ".zattrs", json_bytes(attributes))
        chunk_path = target / (".".join(["0"] * len(shape)) if shape else "0")
    write_empty = bool(zarr.config.get("array.write_empty_chunks", False))
    if write_empty or not _is_fill(data, plan):
        if chunk_path.parent != target:
            chunk_path.parent.mkdir(parents=True, exist_ok=True)
        _write(chunk_path, _encode(data, plan))
    return True
