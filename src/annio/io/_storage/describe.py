"""What a person asks about a stored array or store, from metadata only: its codec, and the
size and file count on disk. Part of the storage adapter (the one place backends differ)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annio.io._storage.urls import is_url

if TYPE_CHECKING:
    from annio.io._storage.adapter import StorageArray

__all__ = ["codec", "h5_codec", "disk_usage"]


def h5_codec(dataset: Any) -> str:
    """How an h5py dataset is compressed, e.g. ``gzip:4``, ``lzf+shuffle``, ``none``."""
    if dataset.compression is None:
        return "none"
    text = str(dataset.compression)
    if dataset.compression_opts is not None and not isinstance(dataset.compression_opts, tuple):
        text += f":{dataset.compression_opts}"
    return text + ("+shuffle" if dataset.shuffle else "")


def _codec_name(c: Any) -> str:
    name = getattr(c, "codec_id", None) or type(c).__name__.removesuffix("Codec").lower()
    level = getattr(c, "level", None)
    if level is None:
        level = getattr(c, "clevel", None)
    inner = getattr(c, "cname", None)
    inner = getattr(inner, "value", inner)  # zarr's BloscCname enum: its value, e.g. lz4
    text = f"{name}({inner})" if inner else name
    return f"{text}:{level}" if level is not None else text


def codec(arr: StorageArray) -> str:
    """A short description of how ``arr`` is compressed, e.g. ``gzip:4``, ``zstd:0``,
    ``blosc(lz4):5+shuffle``, ``none``."""
    raw = arr.raw
    if arr.backend == "hdf5":
        return h5_codec(raw)
    parts = [_codec_name(c) for c in (*getattr(raw, "filters", ()), *getattr(raw, "compressors", ()))]
    return "+".join(parts) if parts else "none"


def disk_usage(store: Any) -> tuple[int, int] | None:
    """``(bytes, files)`` of a local file or store directory; None for remote stores."""
    if is_url(store) or not isinstance(store, str | os.PathLike):
        return None
    path = Path(store).expanduser()
    if path.is_file():
        return path.stat().st_size, 1
    total = files = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
    return total, files
