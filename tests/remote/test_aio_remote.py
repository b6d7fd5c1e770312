"""annio.aio over the real HTTP and S3 test servers: identical objects to the sync API, and
several reads gathered in one event loop overlap their requests (seen at the proxy)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

import annio
import annio.aio
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> dict[str, Path]:
    adata = gen_adata((70, 20), X_type="csr", seed=31)
    local = tmp_path_factory.mktemp("aio-remote")
    annio.write_zarr(local / "a.zarr", adata, zarr_format=3)
    annio.write_h5ad(local / "a.h5ad", adata)
    (http_server.root / "aio").mkdir(exist_ok=True)
    shutil.copytree(local / "a.zarr", http_server.root / "aio" / "a.zarr")
    shutil.copy(local / "a.h5ad", http_server.root / "aio" / "a.h5ad")
    return {"zarr": local / "a.zarr", "h5ad": local / "a.h5ad"}


def test_async_equals_sync_over_http(served: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.01)
    zurl, hurl = f"{proxy.url}/aio/a.zarr", f"{proxy.url}/aio/a.h5ad"

    async def main() -> list[Any]:
        lazy = await annio.aio.read_lazy(zurl)
        return [*await asyncio.gather(annio.aio.read_zarr(zurl), annio.aio.read_h5ad(hurl), lazy.obs.to_memory_async()), lazy]

    zarr_obj, h5_obj, obs, lazy = asyncio.run(main())
    assert proxy.stats()["peak_in_flight"] > 1
    assert_equal(zarr_obj, annio.read_zarr(zurl))
    assert_equal(h5_obj, annio.read_h5ad(hurl))
    assert_equal(obs, annio.read_zarr(served["zarr"]).obs)
    assert_equal(asyncio.run(lazy[5:40].to_memory_async()), lazy[5:40].to_memory())


@pytest.mark.filterwarnings("ignore:Successfully reconstructed a store:RuntimeWarning")
def test_async_read_over_s3(served: dict[str, Path], s3_server: Any) -> None:
    s3_server.upload_dir(served["zarr"], "aio/a.zarr")
    s3_server.upload_file(served["h5ad"], "aio/a.h5ad")
    options = s3_server.storage_options()

    async def main() -> list[Any]:
        return await asyncio.gather(
            annio.aio.read_zarr(s3_server.url("aio/a.zarr"), storage_options=options),
            annio.aio.read_h5ad(s3_server.url("aio/a.h5ad"), storage_options=options),
        )

    zarr_obj, h5_obj = asyncio.run(main())
    assert_equal(zarr_obj, annio.read_zarr(served["zarr"]))
    assert_equal(h5_obj, annio.read_h5ad(served["h5ad"]))


def test_gathered_h5ad_reads_of_files_with_one_name_keep_their_own_data(tmp_path: Path, http_server: Any) -> None:
    """Remote h5ad files are read from in-memory images; HDF5 took a second image of the
    same file name for the one already open, so gathered reads of .../s0/data.h5ad and
    .../s1/data.h5ad (cellranger-style names) both gave the first one's data (regression)."""
    expected = []
    for i in range(4):
        adata = gen_adata((40 + 5 * i, 12), X_type="csr", seed=100 + i)
        (http_server.root / "same" / f"s{i}").mkdir(parents=True, exist_ok=True)
        annio.write_h5ad(http_server.root / "same" / f"s{i}" / "data.h5ad", adata)
        expected.append(annio.read_h5ad(http_server.root / "same" / f"s{i}" / "data.h5ad"))

    async def main() -> list[Any]:
        return await asyncio.gather(*(annio.aio.read_h5ad(f"{http_server.base_url}/same/s{i}/data.h5ad") for i in range(4)))

    for _ in range(3):
        for got, want in zip(asyncio.run(main()), expected, strict=True):
            assert_equal(got, want)
