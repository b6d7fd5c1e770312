"""End to end: AnnData objects written by annio, read back over S3 and HTTP through store
objects / file objects from :mod:`annio.io._storage.remote` (no URL wiring in the readers needed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import annio
from annio.io import _files as files
from annio.io._storage.remote import open_h5_file_from_url, zarr_store_from_url
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]

read_zarr = getattr(annio, "read_zarr", files.read_zarr)
read_h5ad = getattr(annio, "read_h5ad", files.read_h5ad)


@pytest.fixture(scope="module")
def adata() -> Any:
    return gen_adata((60, 25), X_type="csr", seed=3)


@pytest.fixture(scope="module")
def local_zarr(tmp_path_factory: pytest.TempPathFactory, adata: Any) -> dict[int, Path]:
    out = {}
    for zarr_format in (2, 3):
        out[zarr_format] = tmp_path_factory.mktemp("anndata") / f"adata-v{zarr_format}.zarr"
        files.write_zarr(out[zarr_format], adata, zarr_format=zarr_format)
    return out


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_read_zarr_over_s3(local_zarr: dict[int, Path], s3_server: Any, zarr_format: int) -> None:
    local = local_zarr[zarr_format]
    s3_server.upload_dir(local, f"anndata/{local.name}")
    store = zarr_store_from_url(s3_server.url(f"anndata/{local.name}"), storage_options=s3_server.storage_options())
    assert_equal(read_zarr(store), read_zarr(local))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_read_zarr_over_http(local_zarr: dict[int, Path], http_server: Any, zarr_format: int) -> None:
    local = local_zarr[zarr_format]
    shutil.copytree(local, http_server.root / "anndata" / local.name)
    http_server.log.clear()
    assert_equal(read_zarr(zarr_store_from_url(http_server.url(f"anndata/{local.name}"), zarr_format=zarr_format)), read_zarr(local))
    requests = http_server.log.under(f"/anndata/{local.name}/")
    # one metadata request; everything else is chunk data
    metadata = [e.path for e in requests if e.path.rsplit("/", 1)[-1] in {"zarr.json", ".zmetadata", ".zgroup", ".zattrs", ".zarray"}]
    assert metadata == [f"/anndata/{local.name}/{'zarr.json' if zarr_format == 3 else '.zmetadata'}"]


@pytest.mark.filterwarnings("ignore:Successfully reconstructed a store:RuntimeWarning")  # zarrs + obstore
def test_write_zarr_to_s3_store(tmp_path: Any, s3_server: Any) -> None:
    # a slim object: every element is a handful of small objects, each one PUT
    adata = gen_adata((60, 25), X_type="csr", seed=4, full_annotation=False, varm=False, varp=False, uns=False, layers=False)
    url = s3_server.url("anndata/direct.zarr")
    files.write_zarr(zarr_store_from_url(url, storage_options=s3_server.storage_options(), read_only=False), adata)
    files.write_zarr(tmp_path / "local.zarr", adata)
    assert_equal(read_zarr(zarr_store_from_url(url, storage_options=s3_server.storage_options())), read_zarr(tmp_path / "local.zarr"))


@pytest.mark.parametrize("server", ["s3", "http"])
def test_read_h5ad_over_fsspec(tmp_path: Any, adata: Any, s3_server: Any, http_server: Any, server: str) -> None:
    local = tmp_path / "adata.h5ad"
    files.write_h5ad(local, adata)
    if server == "s3":
        s3_server.upload_file(local, "anndata/adata.h5ad")
        url, options = s3_server.url("anndata/adata.h5ad"), s3_server.storage_options()
    else:
        (http_server.root / "anndata").mkdir(exist_ok=True)
        shutil.copy(local, http_server.root / "anndata" / "adata.h5ad")
        url, options = http_server.url("anndata/adata.h5ad"), {}
    with open_h5_file_from_url(url, storage_options=options) as f:
        assert_equal(read_h5ad(f), read_h5ad(local))


@pytest.mark.filterwarnings("ignore:Successfully reconstructed a store:RuntimeWarning")
def test_urls_straight_into_read_and_write(tmp_path: Any, adata: Any, s3_server: Any, http_server: Any) -> None:
    """read_zarr/write_zarr/read_h5ad take URLs and storage_options directly."""
    options = s3_server.storage_options()
    slim = gen_adata((40, 12), X_type="csr", seed=5, full_annotation=False, varm=False, varp=False, uns=False, layers=False)
    annio.io.write_zarr(s3_server.url("anndata/by-url.zarr"), slim, storage_options=options)
    assert_equal(annio.read_zarr(s3_server.url("anndata/by-url.zarr"), storage_options=options), slim)
    local = tmp_path / "adata.h5ad"
    files.write_h5ad(local, adata)
    shutil.copy(local, http_server.root / "by-url.h5ad")
    assert_equal(annio.read_h5ad(http_server.url("by-url.h5ad")), read_h5ad(local))
    s3_server.upload_file(local, "anndata/by-url.h5ad")
    assert_equal(annio.read_h5ad(s3_server.url("anndata/by-url.h5ad"), storage_options=options), read_h5ad(local))


def test_read_lazy_url_with_storage_options(local_zarr: dict[int, Path], s3_server: Any) -> None:
    from annio.experimental import read_lazy

    local = local_zarr[3]
    s3_server.upload_dir(local, f"lazy/{local.name}")
    lazy = read_lazy(s3_server.url(f"lazy/{local.name}"), storage_options=s3_server.storage_options())
    assert_equal(lazy.to_memory(), read_zarr(local))


@pytest.mark.filterwarnings("ignore:Did not read zarr as consolidated:UserWarning")
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_read_lazy_over_s3_fetches_each_metadata_document_once(tmp_path: Path, s3_server: Any, zarr_format: int) -> None:
    """An unconsolidated store on S3: listing a group opens its members once, not twice."""
    import collections

    from zarr.storage import WrapperStore

    from annio.experimental import read_lazy

    class Counting(WrapperStore):
        def __init__(self, store: Any) -> None:
            super().__init__(store)
            self.counts: collections.Counter[str] = collections.Counter()

        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            self.counts[key] += 1
            return await self._store.get(key, prototype, byte_range)

    adata = gen_adata((20, 8), X_type="csr", seed=5, varm=False, varp=False)
    local = tmp_path / f"unconsolidated-v{zarr_format}.zarr"
    with annio.settings.override(zarr_write_format=zarr_format):
        adata.write_zarr(local, consolidate_metadata=False)
    s3_server.upload_dir(local, f"meta/{local.name}")
    store = zarr_store_from_url(s3_server.url(f"meta/{local.name}"), storage_options=s3_server.storage_options())
    counting = Counting(getattr(store, "_store", store))
    lazy = read_lazy(counting)
    names = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")
    meta = {k: v for k, v in counting.counts.items() if k.rsplit("/", 1)[-1] in names}
    assert any(k.startswith("obsm/") for k in meta) and any(k.startswith("layers/") for k in meta)
    assert all(v == 1 for v in meta.values()), {k: v for k, v in meta.items() if v > 1}
    assert_equal(lazy.to_memory(), read_zarr(local))
