"""Lazy row selections from a remote zarr v3 store fetch only what the rows need, in a few
concurrent rounds: seen at the latency proxy in front of the real HTTP test server (request
chain depth, bytes), with results equal to reading the same selection locally."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import annio
from annio.experimental import read_lazy
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]

N_OBS = 1500


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> Path:
    """A zarr v3 store with many shards and inner chunks per array, served over HTTP."""
    from scipy import sparse

    adata = gen_adata((N_OBS, 40), X_type="csr", seed=5, obsp=False, raw=True)
    adata.obsp["knn"] = sparse.random(N_OBS, N_OBS, density=0.003, format="csr", random_state=2, dtype=np.float32)
    local = tmp_path_factory.mktemp("selection") / "a.zarr"
    with annio.settings.override(shard_target_bytes=2**16, chunk_target_bytes=2**12):
        annio.write_zarr(local, adata, zarr_format=3)
    target = http_server.root / "selection" / "a.zarr"
    target.parent.mkdir(exist_ok=True)
    shutil.copytree(local, target)
    big = gen_adata((30_000, 100), X_type="csr", seed=6, obsm=False, varm=False, obsp=False, varp=False, layers=False, uns=False)
    with annio.settings.override(chunk_target_bytes=2**13):
        annio.write_h5ad(local.with_suffix(".h5ad"), big, compression="gzip")
    shutil.copy(local.with_suffix(".h5ad"), target.with_suffix(".h5ad"))
    return local


def _load(proxy: Any, selection: Any) -> tuple[Any, dict[str, Any]]:
    lazy = read_lazy(f"{proxy.url}/selection/a.zarr")
    proxy.reset()
    got = lazy[selection].to_memory()
    return got, proxy.stats()


SELECTIONS = {
    "random": np.sort(np.random.default_rng(0).choice(N_OBS, 100, replace=False)),
    "slice": slice(500, 700),
    "step": slice(5, N_OBS, 37),
    "mask": np.random.default_rng(1).random(N_OBS) < 0.05,
    "unsorted-repeats": np.array([1499, 17, 17, 1200, 0, 734]),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_selection_is_few_rounds_and_equals_local(store: Path, http_server: Any, latency_proxy: Any, name: str) -> None:
    selection = SELECTIONS[name]
    # a long round trip, so that requests of one round issued apart by a CPU stall under
    # load (another test worker, a busy machine) still overlap: 50 ms was seen to be too short
    proxy = latency_proxy(http_server.base_url, rtt=0.2)
    with annio.settings.override(io_concurrency=10_000):  # every round in one wave
        got, stats = _load(proxy, selection)
    assert_equal(got, read_lazy(store)[selection].to_memory())
    # shard indexes, then inner chunks (dense, indptr), then the data/indices ranges
    assert stats["chain_depth"] <= 4, stats
    assert stats["peak_in_flight"] > 1, stats


def test_selection_of_rows_and_columns_equals_local(store: Path, http_server: Any) -> None:
    rows, cols = SELECTIONS["random"], np.arange(0, 40, 3)
    lazy = read_lazy(http_server.url("selection/a.zarr"))
    view = lazy[rows][10:90, cols]  # a view of a view
    assert_equal(view.to_memory(), annio.read_zarr(store)[rows][10:90, cols].to_memory())
    assert_equal(lazy[rows].to_memory(), annio.read_zarr(store)[rows].to_memory())


def test_contiguous_slice_fetches_only_its_rows(store: Path, http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.0)
    _, whole = _load(proxy, slice(None))
    _, tenth = _load(proxy, slice(700, 850))
    # a tenth of the rows: a tenth of the row-wise bytes, plus whole small elements (var,
    # uns, categories) and partly used chunks at the edges
    assert tenth["bytes"] < 0.3 * whole["bytes"], (tenth, whole)
    _, same_as_array = _load(proxy, np.arange(700, 850))
    assert tenth["bytes"] == same_as_array["bytes"]


def test_frame_selection_fetches_only_its_rows(store: Path, http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    lazy = read_lazy(f"{proxy.url}/selection/a.zarr")
    proxy.reset()
    whole = lazy.obs.to_memory()
    all_bytes = proxy.stats()["bytes"]
    proxy.reset()
    part = lazy.obs.iloc[100:200].to_memory()
    stats = proxy.stats()
    assert_equal(part, read_lazy(store).obs.iloc[100:200].to_memory())
    assert_equal(whole, read_lazy(store).obs.to_memory())
    # a fifteenth of the rows: one of the 4 KiB chunks of each column, categories whole
    assert stats["bytes"] < 0.7 * all_bytes, (stats, all_bytes)
    assert stats["chain_depth"] <= 2, stats


@pytest.mark.parametrize("selection", [slice(10_000, 10_100), np.arange(0, 30_000, 1500)], ids=["slice", "spread"])
def test_h5ad_selection_fetches_only_its_chunks(store: Path, http_server: Any, latency_proxy: Any, selection: Any) -> None:
    h5ad = store.with_suffix(".h5ad")
    # a round trip long enough that concurrent requests overlap at the proxy even on a
    # loaded machine (with none, peak in flight depended on timing)
    proxy = latency_proxy(http_server.base_url, rtt=0.01)
    with annio.settings.override(io_concurrency=10_000):
        lazy = read_lazy(f"{proxy.url}/selection/a.h5ad")
        try:
            proxy.reset()
            got = lazy[selection].to_memory()
            stats = proxy.stats()
        finally:
            lazy.file.close()
    local = read_lazy(h5ad)
    try:
        assert_equal(got, local[selection].to_memory())
    finally:
        local.file.close()
    assert stats["bytes"] < 0.5 * h5ad.stat().st_size, stats
    assert stats["peak_in_flight"] > 1, stats


def test_h5ad_selection_reads_the_chunk_index_in_few_rounds(tmp_path: Path, http_server: Any, latency_proxy: Any, monkeypatch: Any) -> None:
    """The chunk B-trees of every dataset the selection reads are walked together (object
    headers, then one round per tree level), not node by node through the block cache."""
    import pandas as pd
    from scipy import sparse

    from annio.io._storage import remote

    rng = np.random.default_rng(3)
    x = sparse.random(30_000, 100, density=0.05, format="csr", random_state=4, dtype=np.float32)
    obs = pd.DataFrame({"score": rng.random(30_000)}, index=[f"c{i}" for i in range(30_000)])
    adata = annio.AnnData(X=x, obs=obs, obsm={"pca": rng.random((30_000, 8))})  # no string columns (their heaps are not chunks)
    h5ad = tmp_path / "index.h5ad"
    with annio.settings.override(chunk_target_bytes=2**13):
        annio.write_h5ad(h5ad, adata, compression="gzip")
    (http_server.root / "h5index").mkdir(exist_ok=True)
    shutil.copy(h5ad, http_server.root / "h5index" / "index.h5ad")
    with h5py.File(h5ad, "r") as f:
        assert f["X/data"].id.get_num_chunks() > 64  # a tree of more than one level
    # blocks far smaller than the file, as for the large files this is for
    monkeypatch.setattr(remote, "DEFAULT_H5_BLOCK_SIZE", 2**15)
    proxy = latency_proxy(http_server.base_url, rtt=0.2)  # rounds stay apart under load
    with annio.settings.override(io_concurrency=512):
        lazy = read_lazy(f"{proxy.url}/h5index/index.h5ad")
        try:
            proxy.reset()
            got = lazy[slice(10_000, 10_100)].to_memory()
            stats = proxy.stats()
        finally:
            lazy.file.close()
    local = read_lazy(h5ad)
    try:
        assert_equal(got, local[slice(10_000, 10_100)].to_memory())
    finally:
        local.file.close()
    # headers, up to 3 tree levels, dense/indptr chunks, data/indices chunks; one of slack
    assert stats["chain_depth"] <= 7, stats
