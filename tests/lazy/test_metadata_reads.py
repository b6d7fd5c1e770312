"""Each element's metadata document is fetched once per open (counted by a store wrapper)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from scipy import sparse
from zarr.storage import LocalStore, WrapperStore

import annio
from annio.experimental import read_lazy


class CountingStore(WrapperStore):
    """A real local store that counts the keys it is asked for."""

    def __init__(self, store):
        super().__init__(store)
        self.counts = collections.Counter()

    async def get(self, key, prototype, byte_range=None):
        self.counts[key] += 1
        return await self._store.get(key, prototype, byte_range)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("meta") / "a.zarr"
    a = annio.AnnData(sparse.random(50, 20, density=0.3, format="csr", random_state=0), obsm={"p": np.ones((50, 2))})
    with annio.settings.override(zarr_write_format=3):
        a.write_zarr(path, consolidate_metadata=False)  # every node's zarr.json is fetched separately
    return path


def test_read_lazy_fetches_sparse_metadata_once(store_path):
    store = CountingStore(LocalStore(store_path, read_only=True))
    lazy = read_lazy(store)
    for part in ("data", "indices", "indptr"):
        assert store.counts[f"X/{part}/zarr.json"] == 1, store.counts
    for group in ("obs", "var", "X", "obsm", "layers"):
        assert store.counts[f"{group}/zarr.json"] == 1, store.counts
    np.testing.assert_array_equal(lazy.X.compute().toarray(), annio.read_zarr(store_path).X.toarray())


def test_read_zarr_fetches_sparse_metadata_once(store_path):
    store = CountingStore(LocalStore(store_path, read_only=True))
    annio.read_zarr(store)
    for part in ("data", "indices", "indptr"):
        assert store.counts[f"X/{part}/zarr.json"] == 1, store.counts


def _rich(n: int = 30):
    import pandas as pd

    obs = pd.DataFrame({"a": np.arange(n), "c": pd.Categorical(["x", "y"] * (n // 2))}, index=[f"c{i}" for i in range(n)])
    a = annio.AnnData(
        np.ones((n, 6), dtype=np.float32), obs=obs,
        obsm={"p": np.ones((n, 2)), "sp": sparse.random(n, 5, density=0.3, format="csr", random_state=1)},
        layers={"l": sparse.random(n, 6, density=0.3, format="csr", random_state=2)},
        obsp={"d": sparse.random(n, n, density=0.1, format="csr", random_state=3)},
        uns={"u": {"v": np.arange(3)}, "t": "x"},
    )
    a.raw = a
    return a


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_metadata_document_fetched_once_without_consolidation(tmp_path, zarr_format):
    """Listing a group (obsm, layers, uns, ...) opens its members: they are not fetched again."""
    path = tmp_path / "r.zarr"
    with annio.settings.override(zarr_write_format=zarr_format):
        _rich().write_zarr(path, consolidate_metadata=False)
    for read in (read_lazy, annio.read_zarr):
        store = CountingStore(LocalStore(path, read_only=True))
        read(store)
        meta = {k: v for k, v in store.counts.items() if k.rsplit("/", 1)[-1] in ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")}
        assert {"obsm/p", "uns/u/v", "layers/l"} <= {k.rsplit("/", 1)[0] for k in meta}
        assert all(v == 1 for v in meta.values()), {k: v for k, v in meta.items() if v > 1}
