"""What a lazy read touches, as storage keys to prefetch from a remote store.

Opening an AnnData lazily reads the ``uns`` tree (eagerly: it is small) and the obs/var
indexes; everything else stays on disk. :func:`open_keys` lists the chunk/shard objects of
exactly those arrays from consolidated metadata (no I/O), so the open costs one metadata
request plus one concurrent batch (see :mod:`annio.io._storage.prefetch`).
"""

from __future__ import annotations

from typing import Any

import zarr

from annio.io._storage import prefetch

__all__ = ["open_keys"]


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
