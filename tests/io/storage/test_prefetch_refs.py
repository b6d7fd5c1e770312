"""Reference counts of the prefetch caches: what a fetch cached is given back by its release."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from annio.io._storage import engine
from annio.io._storage.h5_ranges import RangeCachedFile
from annio.io._storage.prefetch_store import PrefetchStore
from annio.io._storage.row_fetch import RowFetch


def test_partial_shard_fetch_releases_index_and_chunk_ranges(tmp_path):
    """A partly read shard is fetched twice (its index, then its inner chunks): both
    references must be given back, or the cached bytes live as long as the store."""
    path = tmp_path / "sh.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    g.create_array("a", data=np.arange(1000, dtype="f8"), chunks=(10,), shards=(100,))
    store = PrefetchStore(LocalStore(str(path), read_only=True), zarr_format=3)
    arr = zarr.open_group(store, mode="r")["a"]
    for _ in range(3):
        fetch = RowFetch(store)
        fetch.add(arr, [5], [25])
        engine.run(fetch.fetch())
        assert store._ranges, "the rows' ranges were cached"
        fetch.release()
        assert dict(store._refs) == {} and dict(store._ranges) == {}


class _FailingOnce:
    """An fsspec-like filesystem whose first ``cat_ranges`` fails (a dropped connection)."""

    def __init__(self) -> None:
        self.calls = 0

    def cat_ranges(self, paths, starts, stops, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise OSError("connection reset")
        return [b"x" * (e - s) for s, e in zip(starts, stops, strict=True)]


class _File:
    size = 1000


def test_failed_h5_range_fetch_holds_no_reference():
    f = RangeCachedFile(_File(), _FailingOnce(), "p")
    with pytest.raises(OSError):
        f.fetch([0], [10])
    f.fetch([100], [200])
    f.drop()
    assert f._refs == 0 and f._parts == []
