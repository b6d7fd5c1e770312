"""Chunk layouts annio decodes itself, read from a zarr v3 array's metadata document
(see :class:`annio.io._storage.zarr_tree.TreeArray`): ``bytes`` (little-endian) then
optionally one ``zstd``, alone or inside a ``sharding_indexed`` codec whose index is
``bytes`` + ``crc32c`` at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annio.io._storage import zarr_shards

__all__ = ["doc_layout", "doc_key_encoder", "plain_level", "FILLS"]

FILLS = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


def doc_key_encoder(doc: dict[str, Any]) -> Any:
    """``encode(coords)`` → the key (relative to the array) of the chunk or shard object at
    grid ``coords`` (``()`` for a 0-d array), per the document's ``chunk_key_encoding``."""
    encoding = doc.get("chunk_key_encoding") or {"name": "default"}
    default = encoding.get("name", "default") == "default"
    sep = (encoding.get("configuration") or {}).get("separator", "/" if default else ".")

    def encode(coords: tuple[int, ...]) -> str:
        if not coords:
            return "c" if default else "0"
        return ("c" + sep if default else "") + sep.join(map(str, coords))

    return encode


def plain_level(codecs: Any, dtype: np.dtype) -> int | None | bool:
    """``bytes`` (little-endian; ``vlen-utf8`` for strings, ``dtype`` object) then optionally
    one checksum-free ``zstd``: the zstd level (None: uncompressed); False for any other codec
    list."""
    if not isinstance(codecs, list) or not 1 <= len(codecs) <= 2 or not all(isinstance(c, dict) for c in codecs):
        return False
    first = codecs[0]
    if dtype == np.dtype(object):
        if first.get("name") != "vlen-utf8":
            return False
    else:
        endian = (first.get("configuration") or {}).get("endian", "little")
        if first.get("name") != "bytes" or not (endian == "little" or (endian is None and dtype.itemsize == 1)):
            return False
    if len(codecs) == 1:
        return None
    conf = codecs[1].get("configuration") or {}
    if codecs[1].get("name") != "zstd" or conf.get("checksum", False) or type(conf.get("level", 0)) is not int:
        return False
    return int(conf.get("level", 0))


def doc_layout(doc: dict[str, Any], name: str, dtype: np.dtype, chunks: tuple[int, ...], shards: tuple[int, ...] | None, directory: str) -> zarr_shards.Layout | None:
    """A :class:`~annio.io._storage.zarr_shards.Layout` for the array ``doc`` describes, when
    its layout is one annio decodes itself (see :meth:`TreeArray._layout`), else None."""
    shape = tuple(doc["shape"])
    cke = doc.get("chunk_key_encoding") or {}
    sep = (cke.get("configuration") or {}).get("separator", "/")
    if not shape or cke.get("name") != "default" or sep not in ("/", ".") or doc.get("storage_transformers"):
        return None
    codecs = doc["codecs"]
    if shards is not None:
        conf = codecs[0].get("configuration") or {}
        index = conf.get("index_codecs")
        if len(codecs) != 1 or conf.get("index_location", "end") != "end" or plain_level(index[:1] if isinstance(index, list) else None, np.dtype("u8")) is not None:
            return None
        if len(index) != 2 or not isinstance(index[1], dict) or index[1].get("name") != "crc32c" or any(s % c for s, c in zip(shards, chunks, strict=True)):
            return None
        codecs = conf.get("codecs")
    level = plain_level(codecs, dtype)
    fill = doc["fill_value"]
    strings = dtype == np.dtype(object)
    if level is False or (strings and not isinstance(fill, str)) or (not strings and isinstance(fill, str) and fill not in FILLS):
        return None
    try:
        fill_value = np.asarray(fill if strings else FILLS.get(fill, fill) if isinstance(fill, str) else fill, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return None

    def key(coords: tuple[int, ...]) -> str:
        return "c" + sep + sep.join(map(str, coords))

    return zarr_shards.Layout(
        name, shape, shards or chunks, chunks, dtype.newbyteorder("<"), fill_value, level, Path(directory), key, sharded=shards is not None
    )


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_FCS_BYTES = (0, 2, 4, 8)


def zstd_content_size(frame: bytes | memoryview) -> int | None:
    """The decompressed size a zstd frame's header declares, or None when the header does
    not declare one (streamed frames) or is not a zstd frame header.

    Used to decompress straight into a preallocated array only when the frame's own header
    says it fills exactly that array; anything else takes the allocating path, which checks
    the size after decompressing.
    """
    if len(frame) < 6 or bytes(frame[:4]) != _ZSTD_MAGIC:
        return None
    descriptor = frame[4]
    single_segment = bool(descriptor & 0x20)
    fcs_flag = descriptor >> 6
    dict_bytes = (0, 1, 2, 4)[descriptor & 0x03]
    fcs_bytes = 1 if fcs_flag == 0 and single_segment else _FCS_BYTES[fcs_flag]
    if not fcs_bytes:
        return None
    start = 5 + (0 if single_segment else 1) + dict_bytes
    field = bytes(frame[start : start + fcs_bytes])
    if len(field) != fcs_bytes:
        return None
    size = int.from_bytes(field, "little")
    return size + 256 if fcs_bytes == 2 else size
