"""Concurrent prefetching for remote zarr stores: plan every object a read needs, fetch them
all at once, then decode from memory.

A read of many small elements (an ``uns`` tree, a frame's columns, a whole AnnData) through
zarr's per-element API waits one round trip per element, one after another. Here the read is
split in two:

1. **plan** — from the (consolidated) metadata alone, list the storage keys of every chunk or
   shard object the read will touch (:func:`tree_keys`, :func:`array_keys`); no I/O;
2. **fetch** — :meth:`PrefetchStore.fetch` gets all of them concurrently on the engine's
   loop (at most ``settings.io_concurrency`` in flight) into an in-memory cache;

and the existing synchronous decoders then run against the cache, making no requests. The
sync API starts step 2 on the engine's loop with :meth:`PrefetchStore.start_fetch` (and waits
for it, or overlaps it with work that reads nothing), the async API
(:mod:`annio.aio`) awaits it with :func:`~annio.io._storage.engine.run_async`; both use the
same plan and the same decoders. Cached objects are dropped when the read is done.

Only stores opened from URLs are wrapped (:func:`annio.io._storage.remote.zarr_store_from_url`);
local stores never see this module, so local reads keep their fast synchronous path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import zarr

from annio.io._storage import engine
from annio.io._storage.prefetch_store import PrefetchStore
from annio.io._storage.zarr_tree_plan import tree_nbytes, tree_object_keys, tree_position

__all__ = ["PrefetchStore", "prefetch_store_of", "tree_keys", "array_keys", "plan_tree", "prefetching", "prefetching_async"]

def prefetch_store_of(node: Any) -> PrefetchStore | None:
    """The :class:`PrefetchStore` under a zarr group/array (or adapter node), if any."""
    found = tree_position(node)
    if found is not None:
        store = found[0].store
        return store if isinstance(store, PrefetchStore) else None
    raw = getattr(node, "raw", node)
    if not isinstance(raw, zarr.Group | zarr.Array):
        return None
    store = raw.store
    return store if isinstance(store, PrefetchStore) else None


# ----------------------------------------------------------------------------- planning
def _prefix(path: str) -> str:
    path = path.strip("/")
    return f"{path}/" if path else ""


def array_keys(array: zarr.Array, rows: tuple[int, int] | None = None) -> list[str]:
    """Storage keys of the chunk (or shard) objects of ``array``; with ``rows = (start,
    stop)`` only those holding rows ``start:stop`` of the first axis."""
    if array.shape == () or not array.shape:
        return [_prefix(array.path) + k for k in array._async_array._iter_shard_keys()]
    if 0 in array.shape:
        return []
    if rows is None:
        keys = array._async_array._iter_shard_keys()
    else:
        grid = array._async_array._shard_grid_shape
        outer = array.shards or array.chunks
        lo, hi = max(0, rows[0]), min(array.shape[0], rows[1])
        if hi <= lo:
            return []
        g0, g1 = lo // outer[0], (hi - 1) // outer[0] + 1
        keys = array._async_array._iter_shard_keys(origin=(g0, *([0] * (len(grid) - 1))), selection_shape=(g1 - g0, *grid[1:]))
    return [_prefix(array.path) + k for k in keys]


def _has_consolidated(group: zarr.Group) -> bool:
    return getattr(group.metadata, "consolidated_metadata", None) is not None


def tree_keys(node: Any, *, skip: Iterable[str] = ()) -> list[str] | None:
    """Storage keys of every chunk/shard object below ``node`` (a zarr group or array, or an
    adapter node), from consolidated metadata only; None when that would need listing
    requests (no consolidated metadata). Children named in ``skip`` (relative paths) are
    left out."""
    found = tree_position(node)
    if found is not None:  # parsed by annio: planned from its documents, no zarr objects
        return tree_object_keys(*found, skip=skip)
    raw = getattr(node, "raw", node)
    if isinstance(raw, zarr.Array):
        return array_keys(raw)
    if not isinstance(raw, zarr.Group) or not _has_consolidated(raw):
        return None
    skipped = tuple(s.strip("/") for s in skip)
    keys: list[str] = []
    for rel, member in raw.members(max_depth=None):
        if any(rel == s or rel.startswith(s + "/") for s in skipped):
            continue
        if isinstance(member, zarr.Array):
            keys.extend(array_keys(member))
    return keys


def _budget() -> int:
    from annio.settings import settings

    return settings.remote_prefetch_bytes


def within_budget(node: Any, keys: list[str] | None = None) -> bool:
    """Whether the arrays below ``node`` hold at most ``settings.remote_prefetch_bytes``
    (uncompressed: an upper bound of what a prefetch would keep in memory)."""
    found = tree_position(node)
    if found is not None:
        return tree_nbytes(*found) <= _budget()
    raw = getattr(node, "raw", node)
    if isinstance(raw, zarr.Array):
        return raw.nbytes <= _budget()
    total = 0
    for _, member in raw.members(max_depth=None):
        if isinstance(member, zarr.Array):
            total += member.nbytes
    return total <= _budget()


def plan_tree(node: Any, *, skip: Iterable[str] = ()) -> list[str] | None:
    """The keys to prefetch for reading all of ``node`` (None: do not prefetch — a local
    store, no consolidated metadata, or more than the memory budget)."""
    if prefetch_store_of(node) is None:
        return None
    keys = tree_keys(node, skip=skip)
    if keys is None or not within_budget(node):
        return None
    return keys


# ----------------------------------------------------------------------------- running
@contextmanager
def prefetching(node: Any, keys: list[str] | None, *, overlap: bool = False) -> Iterator[None]:
    """Inside the block, the objects ``keys`` of ``node``'s store are served from memory
    (fetched concurrently on entry, dropped on exit); a no-op for stores without
    prefetching (local ones) or when ``keys`` is None. With ``overlap`` the block starts at
    once, while the objects are still arriving (a read of one of them waits for it): work
    that needs none of them runs during the round trip."""
    store = prefetch_store_of(node)
    if store is None or not keys:
        yield
        return
    fut = store.start_fetch(keys)
    if not overlap:
        fut.result()
    try:
        yield
    finally:
        concurrent.futures.wait([fut])  # with overlap, its failure was met by the reads that needed it
        store.drop(keys)


async def prefetching_async(node: Any, keys: list[str] | None, decode: Any) -> Any:
    """Async twin of :func:`prefetching`: await the fetch, then run ``decode()`` (the sync
    decoders, which then make no requests) in a worker thread."""
    store = prefetch_store_of(node)
    if store is None or not keys:
        return await asyncio.to_thread(decode)
    await engine.run_async(store.fetch(keys))
    try:
        return await asyncio.to_thread(decode)
    finally:
        store.drop(keys)
