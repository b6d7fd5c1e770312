"""Opened children of read-only zarr groups, remembered per group wrapper, so that each
node's metadata document is fetched once per open (a membership test and the opening would
otherwise each fetch it, and a sparse group's arrays were fetched three times)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annio.errors import FormatError

__all__ = ["child", "contains"]


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


def contains(group: Any, key: object) -> bool:
    """Whether ``key`` is a child; on read-only zarr stores answered by opening it (and
    remembering it), elsewhere by asking the store."""
    if not isinstance(key, str) or _cache(group) is None:
        try:
            return key in group.raw
        except (KeyError, ValueError):
            return False
    try:
        group[key]
    except FormatError:
        return False
    return True
