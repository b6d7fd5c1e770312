"""Row selections of 1-D numeric and string arrays of a remote zarr tree, decoded from the bytes a
prefetch already holds.

A lazy selection loaded from a remote store (``lazy[20000:25000].to_memory()``, a frame's
columns, the ``indptr``/``data``/``indices`` ranges of sparse rows) first fetches exactly
the shard indexes and inner chunks it needs (:mod:`annio.io._storage.row_fetch`); reading
them back through zarr-python then costs an event-loop round trip and a codec pipeline per
array — most of the load's time once the bytes are local. For the plain layouts annio
decodes itself (``bytes`` — ``vlen-utf8`` for strings — + optional ``zstd``, inside a ``sharding_indexed`` codec with a
``crc32c``-checked index at the end, or unsharded), :func:`read_cached_rows` decodes the
wanted inner chunks straight from the prefetch cache. If any byte it needs was not fetched
ahead it gives up (None) and zarr-python reads the selection as before — never a request
from here, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import zstd as _zstd
from numcodecs.vlen import VLenUTF8
from zarr.abc.store import RangeByteRequest, SuffixByteRequest

from annio.errors import FormatError
from annio.io._storage import zarr_shards

__all__ = ["read_cached_rows", "row_request"]

_EMPTY = 2**64 - 1
_STRINGS = np.dtype(object)
_VLEN = VLenUTF8()
#: Shard size passed to the index parser when only the index (a suffix) is held: the
#: index's offsets are then checked by the range lookups instead (an offset outside what
#: was fetched is a miss, and zarr-python reads and judges the shard).
_UNKNOWN_SIZE = 2**62


def row_request(selection: Any, n: int) -> tuple[int, int, np.ndarray | None] | None:
    """``(start, stop, positions)`` for a selection of a 1-D array of length ``n``: a slice
    with step 1 (``positions`` None), ``...``, or a sorted array of unique positions; None
    for anything else."""
    if selection is Ellipsis:
        return 0, n, None
    if isinstance(selection, tuple) and len(selection) == 1:
        selection = selection[0]
    if isinstance(selection, slice):
        start, stop, step = selection.indices(n)
        return (start, max(start, stop), None) if step == 1 else None
    if isinstance(selection, np.ndarray) and selection.ndim == 1 and selection.dtype.kind in "iu":
        if selection.size == 0:
            return 0, 0, None
        lo, hi = int(selection[0]), int(selection[-1])
        if lo < 0 or hi >= n or (selection.size > 1 and not bool(np.all(np.diff(selection) > 0))):
            return None
        return lo, hi + 1, selection.astype(np.int64, copy=False)
    return None


def _decode_strings(lay: Any, payload: Any, count: int, where: str) -> np.ndarray:
    """A ``vlen-utf8`` inner chunk (zstd-compressed when the layout says so) of ``count``
    strings; anything else is a :class:`~annio.errors.FormatError` naming the element."""
    try:
        raw = payload if lay.level is None else _zstd.decompress(payload)
        values = _VLEN.decode(raw)
    except (RuntimeError, ValueError, TypeError) as err:
        raise FormatError(lay.name, f"{where} does not decode: {err}") from err
    if values.size != count:
        raise FormatError(lay.name, f"{where} holds {values.size} strings, expected {count}")
    return values


def _index(lay: Any, path: Path, lookup: Callable[[str, Any], Any], missing: Any) -> Any:
    """The shard's (inner chunks, 2) offsets/sizes; None: the shard does not exist;
    ``missing``: not held."""
    key = path.as_posix()
    whole = lookup(key, None)
    if whole is not missing:
        return None if whole is None else zarr_shards.parse_index_tail(lay, memoryview(whole), len(whole), path)
    tail = lookup(key, SuffixByteRequest(lay.index_nbytes))
    if tail is missing or tail is None:
        return missing
    return zarr_shards.parse_index_tail(lay, memoryview(tail), _UNKNOWN_SIZE, path)


def read_cached_rows(lay: Any, start: int, stop: int, positions: np.ndarray | None, lookup: Callable[[str, Any], Any], missing: Any) -> np.ndarray | None:
    """Rows ``start:stop`` (or ``positions``, sorted and unique, all inside it) of the 1-D
    array ``lay`` describes (its ``directory`` being the array's key prefix in the store),
    decoded from ``lookup(key, byte_range)`` — the held bytes, None for an object known to
    be absent, ``missing`` when not held; None as soon as anything is not held."""
    chunk = lay.chunks[0]
    per_shard = lay.shards[0] // chunk if lay.sharded else 1
    out = np.empty(stop - start if positions is None else len(positions), dtype=lay.dtype.newbyteorder("="))
    if out.size == 0:
        return out
    if positions is None:
        chunk_ids: Any = range(start // chunk, (stop - 1) // chunk + 1)
    else:
        chunk_ids = np.unique(positions // chunk).tolist()
    indexes: dict[int, Any] = {}
    for cid in chunk_ids:
        sid = cid // per_shard
        path = lay.shard_path((sid,))
        if lay.sharded:
            if sid not in indexes:
                indexes[sid] = _index(lay, path, lookup, missing)
            index = indexes[sid]
            if index is missing:
                return None
            offset, length = (_EMPTY, _EMPTY) if index is None else (int(v) for v in index[cid - sid * per_shard])
            if offset == length == _EMPTY:
                payload = None
            else:
                payload = lookup(path.as_posix(), RangeByteRequest(offset, offset + length))
                if payload is None:  # the index is held, so the shard exists: let zarr-python judge
                    return None
        else:
            payload = lookup(path.as_posix(), None)
        if payload is missing:
            return None
        if payload is None:
            values = np.full(chunk, lay.fill, dtype=out.dtype)
        elif lay.dtype == _STRINGS:
            values = _decode_strings(lay, payload, chunk, f"{path.as_posix()}: inner chunk {cid}")
        else:
            raw = zarr_shards.decode_inner(lay, payload, None, lambda cid=cid, path=path: f"{path.as_posix()}: inner chunk {cid}")
            values = np.frombuffer(raw, dtype=lay.dtype, count=chunk)
        lo = cid * chunk
        if positions is None:
            a, b = max(start, lo), min(stop, lo + chunk)
            out[a - start : b - start] = values[a - lo : b - lo]
        else:
            a, b = np.searchsorted(positions, [lo, lo + chunk])
            out[a:b] = values[positions[a:b] - lo]
    return out
