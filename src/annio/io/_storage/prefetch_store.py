"""The read-only zarr store wrapper that serves reads from objects and byte ranges fetched
ahead, concurrently (see :mod:`annio.io._storage.prefetch` and
:mod:`annio.io._storage.row_fetch`).

Two caches, both filled by one concurrent batch of requests and emptied when the read that
planned them is done (reference counted, so overlapping reads on one store do not evict
each other's objects):

* whole objects (:meth:`PrefetchStore.fetch`): any ``get`` of the key, with or without a
  byte range, is answered from memory;
* byte ranges of objects (:meth:`PrefetchStore.fetch_ranges`): a ranged ``get`` inside a
  fetched range, or the exact suffix fetched (a shard index), is answered from memory.

Everything else passes through to the wrapped store.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import json
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.storage import WrapperStore

__all__ = ["MetadataPrefetchStore", "PrefetchStore"]

_V3_META = "zarr.json"
_V2_CONSOLIDATED = ".zmetadata"
_V2_KEYS = (".zgroup", ".zattrs", ".zarray")

_MISS = object()
#: Longest wait for the I/O loop to send a started fetch's requests (it fails or sends them sooner).
_ISSUE_WAIT = 0.25


class MetadataPrefetchStore(WrapperStore[Store]):
    """Read-only wrapper that answers root metadata lookups from one prefetched document.

    zarr-python, asked to open a group of unknown format, fetches ``zarr.json``,
    ``.zgroup``, ``.zattrs`` and ``.zmetadata`` at once (four requests, three of them
    misses on a v3 store; two duplicates on a v2 store). This wrapper makes the first of
    those lookups fetch the document that decides the format — ``zarr.json``, then
    ``.zmetadata`` if that is missing (``.zmetadata`` only with ``zarr_format=2``) — and
    serves the rest from it:

    * v3 (``zarr.json`` found): the root v2 keys are reported missing, as zarr would ignore
      them anyway (it prefers v3 when both exist);
    * v2 consolidated (``.zmetadata`` found): every ``.zgroup``/``.zattrs``/``.zarray``
      document it holds is served from memory, root keys it lacks are reported missing.

    Everything else (chunks, shards, metadata below an unconsolidated root) passes through.
    """

    def __init__(self, store: Store, *, zarr_format: int | None = None) -> None:
        super().__init__(store)
        if zarr_format not in (None, 2, 3):
            raise ValueError(f"zarr_format must be 2, 3 or None, got {zarr_format!r}")
        self.zarr_format = zarr_format
        self._docs: dict[str, bytes | None] | None = None
        self._probe: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._node_docs: dict[str, dict[str, Any]] | None = None

    def _with_store(self, store: Store) -> MetadataPrefetchStore:
        return type(self)(store, zarr_format=self.zarr_format)

    def with_read_only(self, read_only: bool = False) -> Store:
        inner = self._store.with_read_only(read_only)
        return self._with_store(inner) if read_only else inner

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_probe"] = None
        return state

    def __repr__(self) -> str:
        return f"MetadataPrefetchStore({self._store!r})"

    def __str__(self) -> str:
        return str(self._store)

    def __eq__(self, value: object) -> bool:
        return isinstance(value, MetadataPrefetchStore) and self._store == value._store

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def _is_metadata_key(key: str) -> bool:
        name = key.rsplit("/", 1)[-1]
        return name == _V3_META or name == _V2_CONSOLIDATED or name in _V2_KEYS

    async def _fetch(self, key: str) -> bytes | None:
        from zarr.core.buffer import default_buffer_prototype

        buf = await self._store.get(key, default_buffer_prototype())
        return None if buf is None else buf.to_bytes()

    async def _run_probe(self) -> None:
        docs: dict[str, bytes | None] = {}
        if self.zarr_format != 2:
            v3 = await self._fetch(_V3_META)
            docs[_V3_META] = v3
            if v3 is not None:
                for key in (_V2_CONSOLIDATED, *_V2_KEYS):
                    docs[key] = None
                self._docs = docs
                return
            if self.zarr_format == 3:
                self._docs = docs
                return
        zmeta = await self._fetch(_V2_CONSOLIDATED)
        docs[_V2_CONSOLIDATED] = zmeta
        if zmeta is not None:
            try:
                consolidated = json.loads(zmeta)["metadata"]
            except (ValueError, KeyError, TypeError):
                consolidated = None
            if isinstance(consolidated, dict):
                docs[_V3_META] = None
                for key in _V2_KEYS:
                    docs[key] = None
                for key, doc in consolidated.items():
                    if self._is_metadata_key(key):
                        docs[key] = json.dumps(doc).encode()
        self._docs = docs

    async def _ensure_probed(self) -> dict[str, bytes | None]:
        if self._docs is not None:
            return self._docs
        loop = asyncio.get_running_loop()
        if self._probe is None or self._probe[0] is not loop:
            self._probe = (loop, asyncio.ensure_future(self._run_probe()))
        try:
            await asyncio.shield(self._probe[1])
        except BaseException:
            self._probe = None  # a failed probe (network error) is retried on the next lookup
            raise
        assert self._docs is not None
        return self._docs

    async def probe(self) -> None:
        """Fetch the root metadata document(s) now (one request for a v3 store)."""
        await self._ensure_probed()

    def serve_node_documents(self, docs: dict[str, dict[str, Any]]) -> None:
        """Answer each node's own metadata from ``docs`` (path → the node's ``zarr.json``
        content, as the root's consolidated metadata holds it): ``<path>/zarr.json`` is
        served from memory and the v2 documents of those nodes are reported missing."""
        self._node_docs = docs
        self._unserved: set[str] = set()

    def unserve_node_document(self, path: str) -> None:
        """Fetch the node at ``path``'s own metadata from now on (its consolidated copy was
        rejected)."""
        self._unserved.add(path)

    def _node_document(self, key: str) -> Any:
        if self._node_docs is None:
            return _MISS
        path, _, name = key.rpartition("/")
        doc = self._node_docs.get(path)
        if doc is None or not path or path in self._unserved:
            return _MISS
        if name != _V3_META:
            return None
        # a child group's own document lists no members (zarr-python would take an empty
        # consolidated listing for an empty group)
        return json.dumps({k: v for k, v in doc.items() if k != "consolidated_metadata"}).encode()

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if byte_range is None and self._is_metadata_key(key):
            docs = await self._ensure_probed()
            doc = docs[key] if key in docs else self._node_document(key)
            if doc is not _MISS:
                return None if doc is None else prototype.buffer.from_bytes(doc)
        return await self._store.get(key, prototype, byte_range)

    def root_document(self) -> bytes | None:
        """The root ``zarr.json`` fetched by the probe (None: not fetched yet, or a v2 store)."""
        return None if self._docs is None else self._docs.get(_V3_META)

    async def exists(self, key: str) -> bool:
        if self._docs is not None and key in self._docs:
            return self._docs[key] is not None
        if self._is_metadata_key(key):
            doc = self._node_document(key)
            if doc is not _MISS:
                return doc is not None
        return await self._store.exists(key)


class _Ranges:
    """Fetched byte ranges of one object (sorted, may overlap) and fetched suffixes."""

    __slots__ = ("starts", "parts", "suffixes")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.parts: list[tuple[int, int, bytes]] = []
        self.suffixes: dict[int, bytes] = {}

    def add(self, start: int, data: bytes) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.parts.insert(i, (start, start + len(data), data))

    def find(self, start: int, end: int) -> bytes | None:
        i = bisect.bisect_right(self.starts, start) - 1
        while i >= 0:
            s, e, data = self.parts[i]
            if e >= end:
                return data[start - s : end - s]
            i -= 1
        return None


class PrefetchStore(MetadataPrefetchStore):
    """Read-only store wrapper answering ``get`` from objects and byte ranges fetched ahead
    by :meth:`fetch` / :meth:`fetch_ranges` (and root metadata from one prefetched
    document, as :class:`~annio.io._storage.remote.MetadataPrefetchStore`)."""

    def __init__(self, store: Any, *, zarr_format: int | None = None) -> None:
        super().__init__(store, zarr_format=zarr_format)
        self._objects: dict[str, bytes | None] = {}
        self._ranges: dict[str, _Ranges] = {}
        self._refs: dict[Any, int] = {}  # reads currently relying on a cached object / key's ranges
        self._pending: dict[str, concurrent.futures.Future[int]] = {}  # objects being fetched (start_fetch)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_objects"], state["_ranges"], state["_refs"], state["_pending"] = {}, {}, {}, {}
        return state

    def __repr__(self) -> str:
        return f"PrefetchStore({self._store!r})"

    # -- cache -----------------------------------------------------------------------------
    def _settle(self, key: str) -> None:
        """Wait (off the I/O loop) until object ``key`` has arrived if it is being fetched."""
        fut = self._pending.get(key)
        if fut is not None and not fut.done():
            from annio.io._storage import engine

            if not engine.on_loop():
                concurrent.futures.wait([fut])

    def _lookup(self, key: str, byte_range: ByteRequest | None) -> Any:
        self._settle(key)
        data = self._objects.get(key, _MISS)
        if data is _MISS:
            ranges = self._ranges.get(key)
            if ranges is None:
                return _MISS
            if isinstance(byte_range, RangeByteRequest):
                hit = ranges.find(byte_range.start, byte_range.end)
                return _MISS if hit is None else hit
            if isinstance(byte_range, SuffixByteRequest):
                return ranges.suffixes.get(byte_range.suffix, _MISS)
            return _MISS
        if data is None or byte_range is None:
            return data
        if isinstance(byte_range, RangeByteRequest):
            return data[byte_range.start : byte_range.end]
        if isinstance(byte_range, OffsetByteRequest):
            return data[byte_range.offset :]
        if isinstance(byte_range, SuffixByteRequest):
            return data[-byte_range.suffix :] if byte_range.suffix else b""
        return _MISS

    #: What :meth:`cached_bytes` answers for bytes not held.
    NOT_CACHED = _MISS

    def cached_bytes(self, key: str, byte_range: ByteRequest | None = None) -> Any:
        """The held bytes of object ``key`` (``byte_range`` of it); None when the object is
        known to be absent; :attr:`NOT_CACHED` when not held."""
        return self._lookup(key, byte_range)

    def cached_object(self, key: str, default: Any = None) -> Any:
        """The whole object ``key`` fetched ahead (None: absent), else ``default``."""
        self._settle(key)
        return self._objects.get(key, default)

    def has_object(self, key: str) -> bool:
        self._settle(key)
        return key in self._objects

    def has_range(self, key: str, byte_range: ByteRequest) -> bool:
        return self._lookup(key, byte_range) is not _MISS

    def cached_objects(self, keys: Iterable[str]) -> dict[str, bytes | None] | None:
        """The cached objects ``keys`` (None unless every one of them is cached)."""
        out = {}
        for key in keys:
            self._settle(key)
            data = self._objects.get(key, _MISS)
            if data is _MISS:
                return None
            out[key] = data
        return out

    async def get(self, key: str, prototype: Any, byte_range: ByteRequest | None = None) -> Any:
        fut = self._pending.get(key)
        if fut is not None and not fut.done():
            await asyncio.wrap_future(fut)  # being fetched ahead: wait for it, not a second request
        hit = self._lookup(key, byte_range)
        if hit is not _MISS:
            return None if hit is None else prototype.buffer.from_bytes(hit)
        return await super().get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Iterable[tuple[str, ByteRequest | None]]) -> list[Any]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def get_ranges(self, key: str, byte_ranges: Sequence[ByteRequest | None], *, prototype: Any, **kwargs: Any) -> AsyncIterator[Sequence[tuple[int, Any]]]:
        """zarr >= 3.2 reads parts of shards through this; answer from the caches when they
        hold every range, else let the wrapped store coalesce."""
        hits = [self._lookup(key, r) for r in byte_ranges]
        if all(h is not _MISS for h in hits):
            if any(h is None for h in hits):
                raise BaseExceptionGroup("missing", [FileNotFoundError(key)])
            yield [(i, prototype.buffer.from_bytes(h)) for i, h in enumerate(hits)]
            return
        async for group in super().get_ranges(key, byte_ranges, prototype=prototype, **kwargs):  # type: ignore[misc]
            yield group

    async def exists(self, key: str) -> bool:
        if key in self._objects:
            return self._objects[key] is not None
        return await super().exists(key)

    def _ref(self, token: Any) -> None:
        self._refs[token] = self._refs.get(token, 0) + 1

    async def fetch(self, keys: Iterable[str], issued: threading.Event | None = None) -> int:
        """Fetch the whole objects ``keys`` (missing ones cached as absent) concurrently;
        returns the number of bytes fetched. ``issued`` is set once every request that the
        concurrency limit lets start has been started."""
        from zarr.core.buffer import default_buffer_prototype

        from annio.io._storage import engine

        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._ref(key)
        todo = [k for k in wanted if k not in self._objects]
        proto = default_buffer_prototype()
        first_wave, started = min(len(todo), engine.concurrency()), 0
        if issued is not None and not first_wave:
            issued.set()

        async def one(key: str) -> int:
            nonlocal started
            started += 1
            if issued is not None and started == first_wave:
                issued.set()
            buf = await self._store.get(key, proto)
            data = None if buf is None else buf.to_bytes()
            self._objects[key] = data
            return len(data or b"")

        return sum(await engine.gather_limited(one(k) for k in todo))

    def start_fetch(self, keys: Iterable[str]) -> concurrent.futures.Future[int]:
        """:meth:`fetch` started on the I/O loop without waiting for it: reads of those
        objects meanwhile (sync or async) wait for their bytes instead of requesting them
        again."""
        from annio.io._storage import engine

        wanted = list(dict.fromkeys(keys))
        issued = threading.Event()
        fut = asyncio.run_coroutine_threadsafe(self.fetch(wanted, issued), engine.loop())
        for key in wanted:
            self._pending[key] = fut
        fut.add_done_callback(lambda _: issued.set())  # a fetch failing early wakes the wait too
        if not engine.on_loop():
            # Until the I/O loop has sent the requests, work on this thread would hold the GIL
            # the loop needs to send them (it gets it back only every switch interval).
            issued.wait(_ISSUE_WAIT)

        def settled(done: concurrent.futures.Future[int]) -> None:
            for key in wanted:
                if self._pending.get(key) is done:
                    del self._pending[key]

        fut.add_done_callback(settled)
        return fut

    async def fetch_ranges(self, requests: Iterable[tuple[str, ByteRequest]]) -> list[bytes | None]:
        """Fetch byte ranges (``RangeByteRequest``, or a ``SuffixByteRequest`` kept as such)
        of objects concurrently and cache them; returns their bytes (None: object missing).
        Ranges already answerable from the caches are not fetched again."""
        from zarr.core.buffer import default_buffer_prototype

        from annio.io._storage import engine

        requests = list(requests)
        for key in dict.fromkeys(k for k, _ in requests):
            self._ref(("ranges", key))
        proto = default_buffer_prototype()

        async def one(key: str, byte_range: ByteRequest) -> bytes | None:
            hit = self._lookup(key, byte_range)
            if hit is not _MISS:
                return hit
            buf = await self._store.get(key, proto, byte_range)
            if buf is None:
                return None
            data = buf.to_bytes()
            ranges = self._ranges.setdefault(key, _Ranges())
            if isinstance(byte_range, SuffixByteRequest):
                ranges.suffixes[byte_range.suffix] = data
            elif isinstance(byte_range, RangeByteRequest):
                ranges.add(byte_range.start, data)
            return data

        return await engine.gather_limited(one(k, r) for k, r in requests)

    def drop(self, keys: Iterable[str] | None = None, range_keys: Iterable[str] = ()) -> None:
        """Forget cached objects ``keys`` and the cached ranges of ``range_keys`` (everything
        when ``keys`` is None). A range key listed n times gives back n references: one per
        :meth:`fetch_ranges` call that asked for it."""
        if keys is None:
            self._objects.clear()
            self._ranges.clear()
            self._refs.clear()
            return
        tokens = [(k, False) for k in dict.fromkeys(keys)] + [(k, True) for k in range_keys]
        for key, is_range in tokens:
            token = ("ranges", key) if is_range else key
            left = self._refs.get(token, 1) - 1
            if left > 0:
                self._refs[token] = left
                continue
            self._refs.pop(token, None)
            (self._ranges if is_range else self._objects).pop(key, None)
