"""Opened children of read-only zarr groups, remembered per group wrapper, so that each
node's metadata document is fetched once per open (a membership test and the opening would
otherwise each fetch it, and a sparse group's arrays were fetched three times)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zarr

from annio.errors import MissingElementError

__all__ = ["child", "contains", "remembers", "member_names", "consolidated_child"]


def _cache(group: Any) -> dict[str, Any] | None:
    if group.backend != "zarr" or not getattr(getattr(group.raw, "store", None), "read_only", False):
        return None  # writable stores can change under us; h5py opens are cheap
    cache = group.__dict__.get("_opened")
    if cache is None:
        cache = group.__dict__["_opened"] = {}
    return cache


def child(group: Any, key: str, open_child: Callable[[str], Any]) -> Any:
    """``group[key]``, opened once per wrapper for read-only zarr stores."""
    cache = _cache(group)
    if cache is None:
        return open_child(key)
    if key not in cache:
        cache[key] = open_child(key)
    return cache[key]


def remembers(group: Any) -> bool:
    """Whether ``group`` remembers its opened children (read-only zarr stores)."""
    return _cache(group) is not None


def contains(group: Any, key: object) -> bool:
    """Whether ``key`` is a child of a remembering group, answered by opening it (and
    remembering it): a missing child is ``False``, a damaged one raises ``FormatError``."""
    if not isinstance(key, str):
        return False
    try:
        group[key]
    except MissingElementError:
        return False
    return True


def member_names(group: Any, wrap: Callable[[Any], Any]) -> list[str] | None:
    """The children's names of a remembering group, listed together with the opened
    children (zarr opens every member to list a group: keep them instead of fetching each
    metadata document again on ``group[key]``). ``None`` for other groups."""
    cache = _cache(group)
    members = getattr(group.raw, "members", None)
    if cache is None or members is None:
        return None
    names = []
    for name, node in members():
        cache.setdefault(name, wrap(node))
        names.append(name)
    return names


def consolidated_child(group: Any, key: str) -> Any:
    """``group[key]`` from consolidated metadata without a hop to zarr's event loop (which
    ``zarr.Group.__getitem__`` makes even when no I/O is needed); None to ask zarr."""
    agroup = getattr(group, "_async_group", None)
    if agroup is None or getattr(agroup.metadata, "consolidated_metadata", None) is None:
        return None
    try:
        child = agroup._getitem_consolidated(agroup.store_path / key, key, prefix=agroup.name)
    except (AttributeError, TypeError):  # another zarr version: the public way
        return None
    return zarr.Group(child) if isinstance(child, zarr.AsyncGroup) else zarr.Array(child)
