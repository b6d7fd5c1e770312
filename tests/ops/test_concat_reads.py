"""Stored reads of a lazy concat of many parts with many obs columns, counted by a store
wrapper: building the concat reads nothing, ``obs.to_memory()`` reads every stored array of
every part once (no per-column re-reads: categories, codes and values one read each), and
a second load reads no categories again."""

from __future__ import annotations

import collections
import threading
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from zarr.storage import LocalStore, WrapperStore

import annio
from annio.experimental import read_lazy

N_PARTS = 6
N_COLUMNS = 20


class CountingStore(WrapperStore):
    """A real local store that records the key of every read."""

    def __init__(self, store: Any, log: list | None = None) -> None:
        super().__init__(store)
        self.log: list[str] = [] if log is None else log
        self._lock = threading.Lock()

    def _with_store(self, store: Any) -> CountingStore:
        return type(self)(store, self.log)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        with self._lock:
            self.log.append(key)
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list:
        key_ranges = list(key_ranges)
        with self._lock:
            self.log.extend(k for k, _ in key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)


def _part(i: int) -> annio.AnnData:
    rng = np.random.default_rng(i)
    n = 20 + i
    cols: dict[str, Any] = {}
    for j in range(N_COLUMNS):
        kind = j % 5
        if kind == 0:
            cols[f"f{j}"] = rng.random(n)
        elif kind == 1:
            cols[f"i{j}"] = rng.integers(0, 9, n)
        elif kind == 2:
            cols[f"c{j}"] = pd.Categorical(rng.choice(["a", "b", f"p{i % 3}"], n))
        elif kind == 3:
            cols[f"n{j}"] = pd.array([k if k % 4 else None for k in range(n)], dtype="Int32")
        else:
            cols[f"s{j}"] = np.array([f"v{k}" for k in rng.integers(0, 99, n)], dtype=object)
    obs = pd.DataFrame(cols, index=[f"p{i}_{k}" for k in range(n)])
    return annio.AnnData(X=sp.random(n, 5, density=0.3, format="csr", dtype=np.float32, random_state=i), obs=obs)


def _stored_arrays(group: zarr.Group) -> set[str]:
    """Paths of the stored arrays of ``obs`` except its index."""
    out = set()
    index = group["obs"].attrs["_index"]
    for name, node in group["obs"].members(max_depth=None):
        if isinstance(node, zarr.Array) and name != index:
            out.add(f"obs/{name}")
    return out


def test_lazy_concat_reads_each_stored_column_once(tmp_path):
    parts = [_part(i) for i in range(N_PARTS)]
    stores, arrays = [], []
    with annio.settings.override(zarr_write_format=3, auto_shard_zarr_v3=True):
        for i, p in enumerate(parts):
            p.write_zarr(tmp_path / f"p{i}.zarr", convert_strings_to_categoricals=False)
    for i in range(N_PARTS):
        store = CountingStore(LocalStore(tmp_path / f"p{i}.zarr", read_only=True))
        stores.append(store)
        arrays.append(_stored_arrays(zarr.open_group(tmp_path / f"p{i}.zarr", mode="r")))
    lazies = [read_lazy(zarr.open_group(s, mode="r")) for s in stores]
    for s in stores:
        s.log.clear()
    result = annio.concat(lazies, join="outer")
    assert all(s.log == [] for s in stores)  # building reads nothing
    obs = result.obs.to_memory()
    expected = annio.concat(parts, join="outer").obs
    pd.testing.assert_frame_equal(obs, expected)
    for s, stored in zip(stores, arrays, strict=True):
        data_reads = [k for k in s.log if not k.endswith(("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"))]
        per_array = collections.Counter(k.rsplit("/c/", 1)[0].rsplit("/", 1)[0] if "/c/" not in k else k.rsplit("/c/", 1)[0] for k in data_reads)
        assert set(per_array) == stored, set(per_array) ^ stored
        assert max(per_array.values()) == 1, per_array.most_common(3)  # one read per stored array
        s.log.clear()
    result.obs.to_memory()  # categories are known now: only codes and values again
    for s, stored in zip(stores, arrays, strict=True):
        assert not any("/categories" in k for k in s.log)
        assert len(s.log) == len([a for a in stored if not a.endswith("/categories")])
