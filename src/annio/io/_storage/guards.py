"""Checks that keep hostile files from costing more than they hold: sizes validated before
anything is allocated, chunk grids that zarr would divide by zero on, and the search for the
member whose damaged metadata stops a zarr group from being listed."""

from __future__ import annotations

import functools
import os
from typing import Any

import h5py
import numpy as np

from annio.errors import FormatError

__all__ = ["declared_nbytes", "memory_limit", "check_grid", "check_size", "check_stored", "selection_nbytes", "stored_member_names"]


def declared_nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    """Bytes of an array of ``shape`` (Python ints: no overflow for hostile shapes)."""
    n = 1
    for d in shape:
        n *= max(0, int(d))
    return n * max(1, np.dtype(dtype).itemsize)


@functools.cache  # asked once per element read: 20,000 times for a large uns
def memory_limit() -> int:
    """The largest single read annio allocates: the machine's physical memory."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def _h5_file_size(dataset: h5py.Dataset) -> int | None:
    try:
        return int(dataset.file.id.get_filesize())
    except (OSError, RuntimeError, ValueError):  # pragma: no cover - driver without a size
        return None


def fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_grid(node: Any) -> None:
    """Refuse chunk or shard sizes below 1 (zarr would divide by zero on them).

    Newer zarr releases read such a document leniently (a stored size 0 taken as another
    size, with a warning) and keep the document as stored on the metadata object; the
    sizes *stored* are what another reader sees, so those are checked too: reading chunks
    under a size the writer never used could give silently wrong data.
    """
    stored = _stored_grid(node)
    for what, sizes in (("chunk", node.chunks), ("shard", node.shards), *stored):
        if sizes is not None and any(not isinstance(c, int) or int(c) < 1 for c in sizes):
            raise FormatError(node.path, f"{what} shape {tuple(sizes)} has sizes below 1 (array shape {node.shape})")


def _stored_grid(node: Any) -> list[tuple[str, Any]]:
    """The chunk sizes of the metadata document as stored, when zarr repaired it on read."""
    doc = getattr(getattr(node.raw, "metadata", None), "_stored_document", None)
    if not isinstance(doc, dict):
        return []
    if "chunks" in doc:  # zarr v2
        return [("chunk", doc["chunks"])] if isinstance(doc["chunks"], list) else []
    found: list[tuple[str, Any]] = []
    grid = (doc.get("chunk_grid") or {}).get("configuration") or {}
    if isinstance(grid.get("chunk_shape"), list):
        found.append(("stored chunk grid", grid["chunk_shape"]))
    for codec in doc.get("codecs") or []:
        if isinstance(codec, dict) and codec.get("name") == "sharding_indexed":
            inner = (codec.get("configuration") or {}).get("chunk_shape")
            if isinstance(inner, list):
                found.append(("inner chunk", inner))
    return found


def check_size(node: Any, nbytes: int | None = None) -> None:
    """Refuse a read of ``nbytes`` (default: the whole array) that cannot be real.

    Nothing is allocated for a read beyond what this machine could hold: a damaged or
    hostile file can declare a shape of petabytes over a few bytes of data. Refused
    too: an HDF5 contiguous dataset declaring more bytes than its whole file has.
    """
    if nbytes is None:
        nbytes = declared_nbytes(node.shape, node.raw.dtype)
    if nbytes:
        check_stored(node)
    limit = memory_limit()
    if nbytes > limit:
        raise FormatError(
            node.path,
            f"reading it needs {fmt_bytes(nbytes)} (shape {node.shape}, dtype {node.raw.dtype}), more "
            f"than this machine's memory ({fmt_bytes(limit)}): the declared shape is damaged, or the "
            "element must be read lazily (annio.experimental.read_lazy)",
        )


def check_stored(node: Any) -> None:
    """Refuse an HDF5 contiguous dataset that declares more bytes than its whole file
    has (nothing else can be told without reading: chunks may be compressed or absent)."""
    if node.backend != "hdf5" or node.raw.chunks is not None or node.raw.shape is None:
        return
    declared = declared_nbytes(node.shape, node.raw.dtype)
    size = _h5_file_size(node.raw)
    if size is not None and declared > size:
        raise FormatError(
            node.path,
            f"declares shape {node.shape} ({fmt_bytes(declared)}), more than the whole file "
            f"holds ({fmt_bytes(size)}): the file is damaged",
        )


def selection_nbytes(node: Any, selection: Any) -> int | None:
    """Bytes a basic selection reads (None when it cannot be told cheaply)."""
    shape = node.shape
    if selection is Ellipsis:
        return declared_nbytes(shape, node.raw.dtype)
    sel = selection if isinstance(selection, tuple) else (selection,)
    if any(s is Ellipsis for s in sel) or len(sel) > len(shape):
        return None
    dims = []
    for s, n in zip(sel, shape, strict=False):
        if isinstance(s, slice):
            dims.append(len(range(*s.indices(n))))
        elif isinstance(s, int | np.integer):
            continue
        else:
            return None
    dims.extend(shape[len(sel):])
    return declared_nbytes(tuple(dims), node.raw.dtype)


def stored_member_names(node: Any) -> list[str]:
    """Names of a zarr group's members from a plain listing of the store (no metadata
    parsed), used to find the member whose metadata is damaged."""
    if node.backend != "zarr":
        return []
    from zarr.core.sync import sync

    async def listing() -> list[str]:
        prefix = node.raw.path.strip("/")
        return [name async for name in node.raw.store.list_dir(prefix)]

    try:
        names = sync(listing())
    except Exception:
        return []
    return sorted(n.rstrip("/") for n in names if not n.startswith(".") and n not in ("zarr.json",))
