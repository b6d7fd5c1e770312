"""Writing into zarr stores that carry consolidated metadata.

anndata refuses to write into a consolidated store. annio reopens the group without the
consolidated view, writes, and consolidates the store again, so the metadata never goes
stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zarr

from annio.io._storage.adapter import StorageGroup, wrap
from annio.io._storage.zarr_meta import consolidate

__all__ = ["writable_group", "is_consolidated"]


def is_consolidated(group: zarr.Group) -> bool:
    """Whether ``group`` was opened from consolidated metadata."""
    return getattr(group.metadata, "consolidated_metadata", None) is not None


@contextmanager
def writable_group(store: Any) -> Iterator[StorageGroup]:
    """Yield ``store`` as a writable :class:`StorageGroup`, re-consolidating zarr metadata
    afterwards when the store had it."""
    group = wrap(store)
    if not isinstance(group, StorageGroup):
        raise TypeError(f"expected a group to write into, got {group!r}")
    if group.backend != "zarr" or not is_consolidated(group.raw):
        yield group
        return
    raw: zarr.Group = group.raw
    if raw.read_only:
        raise ValueError(f"{group.path}: the zarr store is open read-only")
    reopened = zarr.open_group(raw.store, path=raw.path, mode="r+", use_consolidated=False)
    yield StorageGroup(reopened)
    consolidate(raw.store)
