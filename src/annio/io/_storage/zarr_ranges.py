"""Ranges of a 1-D sharded zarr v3 array on local disk, read inner chunk by inner chunk.

A row selection of a stored sparse matrix wants many small ranges of ``data`` and
``indices`` (one per selected row). zarr-python answers an orthogonal selection of a
shard by first fetching the compressed bytes of every touched inner chunk of the shard,
then decoding them all: with 1,000 random rows of a 100k-row matrix nearly every inner
chunk is touched, so it holds about the whole compressed shard plus its decoded chunks at
once, on one core.

Here, for the arrays :mod:`annio.io._storage.zarr_shards` can read directly (the layout
annio and anndata write: ``sharding_indexed`` over ``bytes`` [+ ``zstd``], ``crc32c`` index
at the end, a :class:`zarr.storage.LocalStore`), each touched shard's index is read from
the end of its file, and each touched inner chunk is read (``pread``), decompressed into a
per-thread buffer and its wanted values copied straight to their place in the output, in
a thread pool. Memory beyond the output: about one compressed and one decoded chunk per
thread. Values are the same as zarr's (missing chunks read as the fill value).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from zarr.storage import LocalStore

from annio.errors import FormatError
from annio.io._storage.ranges import gather_index
from annio.io._storage.zarr_shards import _EMPTY, _Layout, _layout, _Runner, decode_inner, parse_index_tail

__all__ = ["can_read_ranges", "read_ranges"]


def _eligible(arr: Any) -> _Layout | None:
    lay = _layout(arr, writing=False)
    # exactly a LocalStore: a subclass may observe or change what is read through it
    if lay is None or lay.source is not None or len(lay.shape) != 1 or type(arr.store) is not LocalStore:
        return None
    return lay


def can_read_ranges(arr: Any) -> bool:
    """Whether :func:`read_ranges` can read ``arr`` (a local 1-D directly readable array)."""
    return _eligible(arr) is not None


class _Shard:
    """One open shard file and its parsed index (None: the shard is missing)."""

    def __init__(self, lay: _Layout, coords: tuple[int, ...]) -> None:
        self.path = lay.shard_path(coords)
        self.fd: int | None = None
        self.index: np.ndarray | None = None
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        size = os.fstat(self.fd).st_size
        n = lay.index_nbytes
        tail = os.pread(self.fd, min(n, size), max(0, size - n))
        self.index = parse_index_tail(lay, tail, size, self.path)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_ranges(arr: Any, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``arr[starts[i]:stops[i]]`` for sorted, non-overlapping,
    non-empty in-bounds ranges of an array :func:`can_read_ranges` accepts."""
    lay = _eligible(arr)
    if lay is None:
        raise ValueError(f"{getattr(arr, 'path', arr)!r} is not eligible for direct range reads")
    starts = np.asarray(starts, dtype=np.int64)
    stops = np.asarray(stops, dtype=np.int64)
    lengths = stops - starts
    ends = np.cumsum(lengths)  # output offset after each range
    out = np.empty(int(ends[-1]) if ends.size else 0, dtype=lay.dtype)
    if out.size == 0:
        return out
    chunk, per_shard = lay.chunks[0], lay.per_shard[0]
    # inner chunks touched by any range
    first, last = starts // chunk, (stops - 1) // chunk
    touched = np.unique(np.concatenate([np.arange(a, b + 1) for a, b in _spans(first, last)]))
    shards: dict[int, _Shard] = {}
    local = threading.local()
    count = math.prod(lay.chunks)

    def buffer() -> np.ndarray:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty(count, dtype=lay.dtype)
        return buf

    def job(c: int) -> None:
        c0, c1 = c * chunk, min((c + 1) * chunk, lay.shape[0])
        lo = int(np.searchsorted(stops, c0, side="right"))  # first range ending after c0
        hi = int(np.searchsorted(starts, c1, side="left"))  # ranges starting before c1
        s = np.clip(starts[lo:hi], c0, c1)
        e = np.clip(stops[lo:hi], c0, c1)
        o_lo = int(ends[lo - 1]) if lo else 0
        o_lo += int(s[0] - starts[lo])
        o_hi = o_lo + int((e - s).sum())
        values = _decode(lay, shards[c // per_shard], c % per_shard, c, buffer())
        if values is None:
            out[o_lo:o_hi] = lay.fill
        elif s.size == 1:
            out[o_lo:o_hi] = values[int(s[0]) - c0 : int(e[0]) - c0]
        else:
            out[o_lo:o_hi] = values[gather_index(s - c0, e - s)]

    try:
        for g in np.unique(touched // per_shard).tolist():
            shards[g] = _Shard(lay, (g,))
        with _Runner(len(touched) * lay.chunk_nbytes) as runner:
            futures: list[Future] = [runner.submit(job, c) for c in touched.tolist()]
            for f in futures:
                f.result()
    finally:
        for shard in shards.values():
            shard.close()
    return out


def _spans(first: np.ndarray, last: np.ndarray) -> list[tuple[int, int]]:
    """Merged ``[first, last]`` chunk spans of sorted ranges (ranges inside one chunk share it)."""
    out: list[tuple[int, int]] = []
    for a, b in zip(first.tolist(), last.tolist(), strict=True):
        if out and a <= out[-1][1] + 1:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _decode(lay: _Layout, shard: _Shard, k: int, c: int, buf: np.ndarray) -> np.ndarray | None:
    """Inner chunk ``k`` of ``shard`` (chunk ``c`` of the array) decoded into ``buf``; None
    when it is missing (fill value)."""
    if shard.index is None:
        return None
    offset, length = (int(v) for v in shard.index[k])
    if offset == length == int(_EMPTY):
        return None
    where = f"shard {Path(shard.path).relative_to(lay.directory).as_posix()}"
    payload = os.pread(shard.fd, length, offset)
    if len(payload) != length:
        raise FormatError(lay.name, f"{where}: inner chunk {c} is cut short")
    target = buf.view(np.uint8)
    raw = decode_inner(lay, payload, target, lambda: f"{where}: inner chunk {c}")
    if raw is not None:
        target[:] = np.frombuffer(raw, dtype=np.uint8)
    return buf
