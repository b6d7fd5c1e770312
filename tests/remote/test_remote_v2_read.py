"""Remote consolidated zarr v2 stores: the chunk objects a read needs are fetched all at
once, concurrently, and whole arrays are decoded from those bytes by annio
(:mod:`annio.io._storage.zarr_v2_read`), not by zarr-python's per-element pipeline — with
results identical to a local read."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import annio
from annio.io._storage import engine, prefetch, zarr_v2_read
from annio.io._storage.remote import zarr_store_from_url
from annio.io._storage.stores import open_zarr_group
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]


@pytest.fixture(scope="module")
def published_v2(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> Path:
    adata = gen_adata((300, 40), X_type="csr", seed=5)
    adata.uns["text"] = np.array(["a", "bb", "ccc"], dtype=object)
    adata.uns["big"] = np.arange(640_000, dtype=np.float64)  # 5.1 MB: several chunks, above the local one-thread size
    local = tmp_path_factory.mktemp("remote-v2") / "v2.zarr"
    annio.write_zarr(local, adata, zarr_format=2)
    shutil.copytree(local, http_server.root / "remote-v2" / "v2.zarr")
    return local


def test_remote_v2_read_equals_local_and_fetches_concurrently(published_v2: Path, http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.01)
    url = f"{proxy.url}/remote-v2/v2.zarr"
    got = annio.read_zarr(url)
    assert_equal(got, annio.read_zarr(published_v2))
    stats = proxy.stats()
    assert stats["peak_in_flight"] > 1, stats
    paths = [r.path for r in proxy.requests]
    assert len(paths) == len(set(paths)), sorted(paths)  # every object once
    chunks = [p for p in paths if not p.rsplit("/", 1)[-1].startswith(".") and not p.endswith("zarr.json")]
    assert len(chunks) > 10
    # two metadata lookups (zarr.json missing, then .zmetadata), then one concurrent round of chunks
    assert stats["chain_depth"] <= 2 + -(-len(chunks) // annio.settings.io_concurrency) + 1, stats


def test_remote_v2_arrays_decode_from_prefetched_bytes_without_requests(published_v2: Path, http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.0)
    group, consolidated = open_zarr_group(zarr_store_from_url(f"{proxy.url}/remote-v2/v2.zarr"))
    assert consolidated
    local = zarr.open_group(published_v2, mode="r")
    names = ["uns/big", "uns/text", "X/indices", "X/indptr", "obs/_index"]
    assert zarr_v2_read.read_all(group["uns/big"]) is None  # nothing fetched ahead: zarr-python reads it
    store = prefetch.prefetch_store_of(group)
    keys = [k for name in names for k in prefetch.array_keys(group[name])]
    engine.run(store.fetch(keys))
    proxy.reset()
    for name in names:
        got = zarr_v2_read.read_all(group[name])
        assert got is not None, name
        expected = local[name][...]
        assert got.dtype == (object if expected.dtype.kind in "OUT" else expected.dtype), name
        np.testing.assert_array_equal(got, expected)
    assert proxy.requests == [], [r.path for r in proxy.requests]
    store.drop(keys)


def test_remote_v2_missing_chunk_is_fill_value(http_server: Any) -> None:
    root = http_server.root / "remote-v2-fill.zarr"
    g = zarr.open_group(root, mode="w", zarr_format=2)
    g.create_array("chunked", shape=(10,), chunks=(3,), dtype="i2", fill_value=-1)[4:6] = 3  # chunks 0 and 3 never written
    zarr.consolidate_metadata(root)
    group, _ = open_zarr_group(zarr_store_from_url(http_server.url("remote-v2-fill.zarr"), zarr_format=2))
    store = prefetch.prefetch_store_of(group)
    keys = prefetch.array_keys(group["chunked"])
    engine.run(store.fetch(keys))
    np.testing.assert_array_equal(zarr_v2_read.read_all(group["chunked"]), zarr.open_group(root, mode="r")["chunked"][...])
