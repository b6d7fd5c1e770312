"""Remote reads issue their requests concurrently: observed at a latency-injecting proxy in
front of the real HTTP (wsgidav) and S3 (SeaweedFS) test servers, which records how many
requests were in flight at once and how long the chain of dependent requests was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import annio
from annio.experimental import read_lazy
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]


@pytest.fixture(scope="module")
def adata() -> Any:
    return gen_adata((80, 30), X_type="csr", seed=11)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, adata: Any, http_server: Any) -> dict[str, Path]:
    """The object written as zarr v3, zarr v2 and h5ad, served by the HTTP test server."""
    local = tmp_path_factory.mktemp("concurrency")
    out = {}
    for name, write in {
        "v3.zarr": lambda p: annio.write_zarr(p, adata, zarr_format=3),
        "v2.zarr": lambda p: annio.write_zarr(p, adata, zarr_format=2),
        "a.h5ad": lambda p: annio.write_h5ad(p, adata),
    }.items():
        write(local / name)
        target = http_server.root / "concurrency" / name
        target.parent.mkdir(exist_ok=True)
        (shutil.copytree if name.endswith(".zarr") else shutil.copy)(local / name, target)
        out[name] = local / name
    return out


@pytest.mark.parametrize("name", ["v3.zarr", "v2.zarr"])
def test_read_zarr_requests_in_flight_together(published: dict[str, Path], http_server: Any, latency_proxy: Any, name: str) -> None:
    # long enough that a CPU stall under load rarely splits a round
    proxy = latency_proxy(http_server.base_url, rtt=0.25)
    got = annio.read_zarr(f"{proxy.url}/concurrency/{name}")
    stats = proxy.stats()
    assert_equal(got, annio.read_zarr(published[name]))
    assert stats["requests"] > 20
    assert stats["peak_in_flight"] > 1
    # the metadata (v2 without a format hint: a zarr.json miss, then .zmetadata), then every
    # chunk object at once, in waves of io_concurrency; two round trips of slack: on a loaded
    # 2-core CI machine (anndata 0.13 run) a stall while the first wave was being sent once
    # split it (depth 5 for 88 requests, bound was 4). A serial reader would be ~88 deep.
    metadata = 1 if name == "v3.zarr" else 2
    waves = -(-(stats["requests"] - metadata) // annio.settings.io_concurrency)
    assert stats["chain_depth"] <= metadata + waves + 2, stats


def test_io_concurrency_bounds_requests_in_flight(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.005)
    with annio.settings.override(io_concurrency=1):
        got = annio.read_zarr(f"{proxy.url}/concurrency/v3.zarr")
    assert_equal(got, annio.read_zarr(published["v3.zarr"]))
    assert proxy.stats()["peak_in_flight"] == 1


def test_lazy_open_and_frame_reads_are_concurrent(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    lazy = read_lazy(f"{proxy.url}/concurrency/v3.zarr")
    opened = proxy.stats()
    # metadata, then uns + indexes together (+1: small eager elements outside the plan)
    assert opened["chain_depth"] <= 3 and opened["peak_in_flight"] > 1, opened
    proxy.reset()
    obs = lazy.obs.to_memory()
    assert proxy.stats()["peak_in_flight"] > 1
    local = annio.read_zarr(published["v3.zarr"])
    assert_equal(obs, local.obs)
    assert_equal(lazy.to_memory(), local)


def test_read_h5ad_url_fetches_ranges_together(published: dict[str, Path], http_server: Any, latency_proxy: Any, monkeypatch: Any) -> None:
    from annio.io._storage import h5_remote

    size = published["a.h5ad"].stat().st_size
    monkeypatch.setattr(h5_remote, "PART_BYTES", max(1024, size // 6))  # several ranges for a small file
    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    got = annio.read_h5ad(f"{proxy.url}/concurrency/a.h5ad")
    stats = proxy.stats()
    assert_equal(got, annio.read_h5ad(published["a.h5ad"]))
    assert stats["peak_in_flight"] > 1 and stats["chain_depth"] <= 3, stats
    assert stats["bytes"] <= size * 1.01 + 4096  # every byte once


def test_large_h5ad_falls_back_to_block_cache(published: dict[str, Path], http_server: Any) -> None:
    with annio.settings.override(remote_prefetch_bytes=0):
        got = annio.read_h5ad(http_server.url("concurrency/a.h5ad"))
    assert_equal(got, annio.read_h5ad(published["a.h5ad"]))


@pytest.mark.filterwarnings("ignore:Successfully reconstructed a store:RuntimeWarning")
def test_s3_read_is_concurrent(published: dict[str, Path], s3_server: Any, latency_proxy: Any) -> None:
    s3_server.upload_dir(published["v3.zarr"], "concurrency/v3.zarr")
    proxy = latency_proxy(s3_server.endpoint_url, rtt=0.01)  # signed requests pass through unchanged
    options = {**s3_server.storage_options(), "endpoint_url": proxy.url}
    got = annio.read_zarr(s3_server.url("concurrency/v3.zarr"), storage_options=options)
    assert_equal(got, annio.read_zarr(published["v3.zarr"]))
    stats = proxy.stats()
    assert stats["peak_in_flight"] > 1 and stats["chain_depth"] < max(4, stats["requests"] // 3), stats  # loose: SeaweedFS is slow under load



@pytest.fixture(scope="module")
def indexed_h5ad(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> Path:
    """An h5ad whose indexes and uns lie far from its metadata (a dense X between them)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 20_000
    obs = pd.DataFrame({"score": rng.random(n), "uid": [f"u{i * 7919 % n}-{'b' * (i % 5)}" for i in range(n)],
                        "kind": pd.Categorical([f"k{i % 9}" for i in range(n)])},
                       index=[f"cell-{i:05d}-{'a' * (i % 7)}" for i in range(n)])
    var = pd.DataFrame({"symbol": [f"S{j}" for j in range(40)]}, index=[f"gene-{j}" for j in range(40)])
    uns = {"params": {"k": 3, "method": "leiden", "grid": np.arange(12)}, "labels": np.array([f"l{i}" for i in range(300)], dtype=object)}
    adata = annio.AnnData(X=rng.random((n, 40), dtype=np.float32), obs=obs, var=var, uns=uns)
    path = tmp_path_factory.mktemp("indexed") / "b.h5ad"
    annio.write_h5ad(path, adata)
    target = http_server.root / "concurrency" / "b.h5ad"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(path, target)
    return path


def test_lazy_h5ad_open_is_the_metadata_walk_and_two_rounds(indexed_h5ad: Path, http_server: Any, latency_proxy: Any, monkeypatch: Any) -> None:
    """The size request goes out with the superblock's; the indexes and uns are fetched in
    two rounds (values, then string heaps) instead of one cache miss after another."""
    from annio.io._storage import h5_meta, h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)  # walked as a large file would be
    data = indexed_h5ad.read_bytes()
    _, walk_rounds = h5_meta.walk_metadata(lambda ranges: [data[s:e] for s, e in ranges], len(data))
    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    lazy = read_lazy(f"{proxy.url}/concurrency/b.h5ad")
    try:
        opened = proxy.stats()
        assert opened["chain_depth"] <= walk_rounds + 2, (opened, walk_rounds)
        assert opened["bytes"] < len(data) / 3, opened  # not the dense X
        local = annio.read_h5ad(indexed_h5ad)
        assert_equal(lazy.obs_names, local.obs_names)
        assert_equal(lazy.to_memory(), local)
    finally:
        lazy.file.close()


def test_lazy_h5ad_selection_reads_only_what_its_rounds_fetched(indexed_h5ad: Path, http_server: Any, latency_proxy: Any, monkeypatch: Any) -> None:
    """Rows of string columns too: their heap references (16 bytes a row on disk, not
    numpy's 8) and then the heap collections those point to are fetched ahead."""
    from annio.io._storage import h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)
    misses: list[tuple[int, int]] = []
    read_cached = h5_ranges.RangeCachedFile._read_cached

    def counting(self: Any, start: int, n: int) -> bytes:
        misses.append((start, n))
        return read_cached(self, start, n)

    monkeypatch.setattr(h5_ranges.RangeCachedFile, "_read_cached", counting)
    proxy = latency_proxy(http_server.base_url, rtt=0.05)
    lazy = read_lazy(f"{proxy.url}/concurrency/b.h5ad")
    try:
        misses.clear()
        proxy.reset()
        got = lazy[12_000:13_500].to_memory()
        stats = proxy.stats()
        assert misses == [], misses
        assert stats["chain_depth"] <= 3, stats  # chunk index nodes, rows, string heaps
        assert_equal(got, annio.read_h5ad(indexed_h5ad)[12_000:13_500])
    finally:
        lazy.file.close()


def test_opening_a_remote_h5ad_asks_its_size_with_the_superblock(indexed_h5ad: Path, http_server: Any, latency_proxy: Any, monkeypatch: Any) -> None:
    """The size request (HEAD) and the first range go out together: opening takes exactly the
    metadata walk's rounds, not one more."""
    from annio.io._storage import h5_meta, h5_ranges
    from annio.io._storage.remote import open_h5_file_from_url

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)
    data = indexed_h5ad.read_bytes()
    _, walk_rounds = h5_meta.walk_metadata(lambda ranges: [data[s:e] for s, e in ranges], len(data))
    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    with open_h5_file_from_url(f"{proxy.url}/concurrency/b.h5ad") as f:
        stats = proxy.stats()
        assert "obs" in f
    assert stats["chain_depth"] <= walk_rounds, (stats, walk_rounds)
    assert stats["peak_in_flight"] >= 2, stats
