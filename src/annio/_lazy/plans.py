"""What a lazy read touches, as storage keys to prefetch from a remote store.

Opening an AnnData lazily reads the ``uns`` tree (eagerly: it is small) and the obs/var
indexes; everything else stays on disk. :func:`open_keys` lists the chunk/shard objects of
exactly those arrays from consolidated metadata (no I/O), so the open costs one metadata
request plus one concurrent batch (see :mod:`annio.io._storage.prefetch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zarr

from annio.io._storage import prefetch

__all__ = ["open_keys", "prefetching_lazy_object"]


def _index_keys(group: Any) -> list[str]:
    if not isinstance(group, zarr.Group):
        return []
    index = group.attrs.get("_index")
    if not isinstance(index, str) or index not in group:
        return []
    node = group[index]
    return prefetch.plan_tree(node) or []


def open_keys(group: Any, *, load_annotation_index: bool = True) -> list[str] | None:
    """Keys a lazy open of the AnnData in ``group`` reads (None: local store or no
    consolidated metadata — nothing to prefetch)."""
    if prefetch.prefetch_store_of(group) is None or not isinstance(group, zarr.Group):
        return None
    if getattr(group.metadata, "consolidated_metadata", None) is None:
        return None
    keys: list[str] = []
    if "uns" in group:
        keys.extend(prefetch.plan_tree(group["uns"]) or [])
    if load_annotation_index:
        for name in ("obs", "var", "raw/var"):
            if name in group:
                keys.extend(_index_keys(group[name]))
    return keys


@contextmanager
def prefetching_lazy_object(adata: Any) -> Iterator[None]:
    """While a lazily read AnnData (or a view of one) from a remote zarr store is loaded
    (``to_memory``), serve its lazy elements from one concurrent fetch of their objects
    (``uns`` is in memory already). Whole objects are fetched: a row selection touching part
    of a shard still costs the shard, in exchange for one round trip instead of a chain."""
    file = getattr(adata, "_file", None)  # a LazyFile keeps the opened root group as _handle
    group = getattr(file, "_handle", None) if getattr(file, "filename", 1) is None else None
    if not isinstance(group, zarr.Group) or prefetch.prefetch_store_of(group) is None:
        yield
        return
    with prefetch.prefetching(group, prefetch.plan_tree(group, skip=("uns",))):
        yield
