"""Fetch ahead exactly the stored bytes that rows of zarr arrays need, in two rounds.

A row selection read through zarr, one dask task after another, waits for each shard's
index and then for each inner chunk in turn: a chain of round trips as long as the number
of chunks touched. :class:`RowFetch` plans the whole selection from metadata instead:

1. for every array, the outer chunks (shards) holding the wanted rows of the first axis
   (every other axis whole); unsharded chunks and shards whose inner chunks are all wanted
   are fetched whole, the other shards' indexes are fetched — all concurrently;
2. from those indexes, the byte ranges of the wanted inner chunks, adjacent ones merged
   (gaps up to :data:`MAX_GAP` bytes), are fetched concurrently.

Both rounds fill the caches of a :class:`~annio.io._storage.prefetch_store.PrefetchStore`,
so the ordinary zarr reads that follow are answered from memory. The plan is a superset of
what zarr then asks for (whole chunks, whole shards), never a guess that misses: a miss would
only cost an extra request, not a wrong value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import ByteRequest, RangeByteRequest, SuffixByteRequest

from annio.io._storage.prefetch_store import PrefetchStore
from annio.io._storage.ranges import MAX_GAP, coalesce, wanted_units
from annio.io._storage.zarr_tree_layout import doc_key_encoder

__all__ = ["RowFetch", "MAX_GAP", "MAX_INDEXES"]

#: Byte ranges closer than this are fetched as one request.
#: :meth:`RowFetch.fetch` fetches the indexes of every shard of ``index_only`` arrays only
#: when they have at most this many shards.
MAX_INDEXES = 512
_EMPTY = np.uint64(2**64 - 1)


def _prefix(path: str) -> str:
    path = path.strip("/")
    return f"{path}/" if path else ""


class _Geometry:
    """Chunk layout of one zarr array: outer chunks (shards or chunks), inner chunks."""

    def __init__(self, arr: zarr.Array) -> None:
        meta = arr._async_array.metadata
        self.arr = arr
        self.shape = tuple(int(s) for s in arr.shape)
        self.prefix = _prefix(arr.path)
        self.encode = meta.encode_chunk_key
        self.sharding = _simple_sharding(meta)
        if self.sharding is not None:
            self.outer = tuple(int(s) for s in arr.shards)
            self.inner = tuple(int(c) for c in self.sharding.chunk_shape)
        else:
            self.outer = tuple(int(c) for c in arr.chunks)
            self.inner = self.outer
        self.grid = tuple(-(-n // c) for n, c in zip(self.shape, self.outer, strict=True))
        self.per_shard = tuple(o // i for o, i in zip(self.outer, self.inner, strict=True))

    def key(self, coords: tuple[int, ...]) -> str:
        return self.prefix + self.encode(coords)

    def index_request(self) -> ByteRequest:
        n = int(np.prod(self.per_shard)) * 16
        size = n + (4 if len(self.sharding.index_codecs) == 2 else 0)
        if _name(self.sharding.index_location) == "start":
            return RangeByteRequest(0, size)
        return SuffixByteRequest(size)

    def rest_coords(self) -> list[tuple[int, ...]]:
        """Every outer-grid coordinate of the axes after the first."""
        rest = self.grid[1:]
        return [tuple(int(v) for v in c) for c in np.ndindex(*rest)] if rest else [()]


class _DocGeometry(_Geometry):
    """:class:`_Geometry` of an array answered from a parsed consolidated tree
    (:class:`~annio.io._storage.zarr_tree.TreeArray`), read from its metadata document:
    planning a selection of many small arrays then builds no zarr-python object."""

    def __init__(self, node: Any) -> None:  # no super(): nothing of zarr-python's is needed
        doc = node._doc
        self.arr = node
        self.shape = tuple(int(s) for s in doc["shape"])
        self.prefix = _prefix(node.path)
        self.encode = doc_key_encoder(doc)
        grid = tuple(int(c) for c in doc["chunk_grid"]["configuration"]["chunk_shape"])
        self.sharding = _doc_sharding(doc, grid)
        self.outer = grid
        self.inner = tuple(self.sharding.chunk_shape) if self.sharding is not None else grid
        self.grid = tuple(-(-n // c) for n, c in zip(self.shape, self.outer, strict=True))
        self.per_shard = tuple(o // i for o, i in zip(self.outer, self.inner, strict=True))


def _doc_sharding(doc: dict[str, Any], grid: tuple[int, ...]) -> Any:
    """The sharding configuration of a document whose shard index annio parses, else None
    (the same rule as :func:`_simple_sharding`)."""
    from types import SimpleNamespace

    codecs = doc["codecs"]
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return None
    conf = codecs[0].get("configuration") or {}
    inner = tuple(conf.get("chunk_shape") or ())
    index = conf.get("index_codecs") or []
    names = [c.get("name") for c in index if isinstance(c, dict)]
    endian = ((index[0].get("configuration") or {}).get("endian", "little") if names else None)
    if names not in (["bytes"], ["bytes", "crc32c"]) or endian != "little":
        return None
    if len(inner) != len(grid) or any(o % i for o, i in zip(grid, inner, strict=True)):
        return None
    return SimpleNamespace(chunk_shape=inner, index_codecs=tuple(index), index_location=conf.get("index_location", "end"))


def _geometry(arr: Any) -> _Geometry:
    return _DocGeometry(arr) if getattr(arr, "_doc", None) is not None else _Geometry(arr)


def _name(value: Any) -> str:
    """An enum member's value, or the string zarr >= 3.2 uses instead."""
    return str(getattr(value, "value", value))


def _simple_sharding(meta: Any) -> Any:
    """The sharding codec of a v3 array whose shard index annio can parse, else None."""
    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

    codecs = getattr(meta, "codecs", None)
    if getattr(meta, "zarr_format", 2) != 3 or not codecs or len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    codec = codecs[0]
    index = tuple(codec.index_codecs)
    if not index or not isinstance(index[0], BytesCodec) or (index[0].endian is not None and _name(index[0].endian) != "little"):
        return None
    if len(index) > 2 or (len(index) == 2 and not isinstance(index[1], Crc32cCodec)):
        return None
    if any(o % i for o, i in zip(meta.chunk_grid.chunk_shape, codec.chunk_shape, strict=True)):
        return None
    return codec


class RowFetch:
    """Collect the rows wanted of zarr arrays in one store, then fetch their bytes.

    Parameters
    ----------
    store
        The prefetching store the arrays live in.
    """

    def __init__(self, store: PrefetchStore) -> None:
        self.store = store
        self._wanted: dict[int, tuple[zarr.Array, list[np.ndarray], list[np.ndarray]]] = {}
        self.object_keys: list[str] = []
        self.range_keys: list[str] = []

    def add(self, arr: zarr.Array, starts: Any, stops: Any) -> None:
        """Want rows ``starts[i]:stops[i]`` of ``arr``'s first axis (all of a 0-d array)."""
        entry = self._wanted.setdefault(id(arr), (arr, [], []))
        entry[1].append(np.atleast_1d(np.asarray(starts, dtype=np.int64)))
        entry[2].append(np.atleast_1d(np.asarray(stops, dtype=np.int64)))

    def add_all(self, arr: zarr.Array) -> None:
        """Want the whole of ``arr``."""
        self.add(arr, 0, arr.shape[0] if arr.shape else 1)

    def __bool__(self) -> bool:
        return bool(self._wanted)

    # ------------------------------------------------------------------------- planning
    def _plan(self, arr: zarr.Array, starts: np.ndarray, stops: np.ndarray) -> tuple[list[str], list[tuple[_Geometry, str, int]]]:
        """(keys to fetch whole, shards to fetch partly as (geometry, key, shard row))."""
        if not arr.shape:
            if getattr(arr, "_doc", None) is not None:
                return [_prefix(arr.path) + doc_key_encoder(arr._doc)(())], []
            return [_prefix(arr.path) + k for k in arr._async_array._iter_shard_keys()], []
        if 0 in arr.shape:
            return [], []
        geo = _geometry(arr)
        n_units = -(-geo.shape[0] // geo.inner[0])
        units = wanted_units(starts, stops, geo.inner[0], n_units)
        k = geo.per_shard[0]
        whole: list[str] = []
        partial: list[tuple[_Geometry, str, int]] = []
        rest = geo.rest_coords()
        for g in range(geo.grid[0]):
            mask = units[g * k : (g + 1) * k]
            if not mask.any():
                continue
            keys = [geo.key((g, *r)) for r in rest]
            if geo.sharding is None or mask.all():
                whole.extend(keys)
            else:
                partial.extend((geo, key, g) for key in keys)
        return whole, partial

    async def fetch(self, index_only: Iterable[zarr.Array] = ()) -> None:
        """Fetch everything wanted (round 1: whole objects and shard indexes, round 2: inner
        chunk ranges); also, in round 1, the shard indexes of every shard of the
        ``index_only`` arrays (for a later :class:`RowFetch` of rows found meanwhile)."""
        whole: list[str] = []
        partial: list[tuple[_Geometry, str, int]] = []
        for arr, starts, stops in self._wanted.values():
            w, p = self._plan(arr, np.concatenate(starts), np.concatenate(stops))
            whole.extend(w)
            partial.extend(p)
        index_requests = [(key, geo.index_request()) for geo, key, _ in partial]
        for arr in index_only:
            if not arr.shape or 0 in arr.shape:
                continue
            geo = _geometry(arr)
            if geo.sharding is None or int(np.prod(geo.grid)) > MAX_INDEXES:
                continue
            request = geo.index_request()
            for coords in np.ndindex(*geo.grid):
                index_requests.append((geo.key(tuple(int(c) for c in coords)), request))
        import asyncio

        self.object_keys.extend(whole)
        self.range_keys.extend(k for k, _ in index_requests)
        async def parts() -> None:  # not waiting for the whole objects
            indexes = await self.store.fetch_ranges(index_requests)
            chunk_requests: list[tuple[str, ByteRequest]] = []
            for (geo, key, g), index in zip(partial, indexes[: len(partial)], strict=True):
                if index is not None:
                    chunk_requests.extend((key, r) for r in self._chunk_ranges(geo, g, index))
            self.range_keys.extend(dict.fromkeys(k for k, _ in chunk_requests))  # one reference per key per fetch
            await self.store.fetch_ranges(chunk_requests)

        await asyncio.gather(self.store.fetch(whole), parts())

    def _chunk_ranges(self, geo: _Geometry, g: int, index: bytes) -> list[RangeByteRequest]:
        arr_starts, arr_stops = self._all_ranges(geo.arr)
        n = int(np.prod(geo.per_shard))
        table = np.frombuffer(index[: 16 * n], dtype="<u8").reshape(*geo.per_shard, 2)
        k = geo.per_shard[0]
        n_units = -(-geo.shape[0] // geo.inner[0])
        units = wanted_units(arr_starts, arr_stops, geo.inner[0], n_units)[g * k : (g + 1) * k]
        rows = table[: units.size][units].reshape(-1, 2)
        rows = rows[rows[:, 0] != _EMPTY]
        if rows.size == 0:
            return []
        offsets = rows[:, 0].astype(np.int64)
        return [RangeByteRequest(s, e) for s, e in coalesce(offsets, offsets + rows[:, 1].astype(np.int64))]

    def _all_ranges(self, arr: zarr.Array) -> tuple[np.ndarray, np.ndarray]:
        _, starts, stops = self._wanted[id(arr)]
        return np.concatenate(starts), np.concatenate(stops)

    def release(self) -> None:
        """Drop what this fetch cached."""
        self.store.drop(self.object_keys, self.range_keys)
        self.object_keys, self.range_keys = [], []
