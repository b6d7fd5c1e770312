"""annio's zarr stores stay readable by the JavaScript client web viewers use (zarrita)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarrita import read_with_zarrita, zarrita_available

import annio
from annio import datasets
from annio.io import write_zarr

pytestmark = pytest.mark.interop

ELEMENTS = ["obs/_index", "obs/cell_type/codes", "obs/cell_type/categories", "obs/n_counts", "X/data", "X/indptr", "obsm/X_pca", "uns/dataset"]


@pytest.fixture(scope="module")
def adata():
    return datasets.pbmc_like(300, 80)


def _expected(adata, path: str) -> np.ndarray:
    obs = adata.obs
    return {
        "obs/_index": np.asarray(obs.index, dtype=object),
        "obs/cell_type/codes": np.asarray(obs["cell_type"].cat.codes),
        "obs/cell_type/categories": np.asarray(obs["cell_type"].cat.categories, dtype=object),
        "obs/n_counts": obs["n_counts"].to_numpy(),
        "X/data": adata.X.data,
        "X/indptr": adata.X.indptr,
        "obsm/X_pca": adata.obsm["X_pca"].reshape(-1),
        "uns/dataset": np.array([adata.uns["dataset"]], dtype=object),
    }[path]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarrita_reads_annio_store_from_disk(tmp_path, adata, zarr_format):
    zarrita_available()
    path = tmp_path / "a.zarr"
    with annio.settings.override(shard_target_bytes=2**16, chunk_target_bytes=2**12):  # many shards
        write_zarr(path, adata, zarr_format=zarr_format)
    result = read_with_zarrita(str(path), "", *ELEMENTS)
    assert result[""]["attrs"]["encoding-type"] == "anndata"
    for element in ELEMENTS:
        got = result[element]
        expected = _expected(adata, element)
        assert got["kind"] == "array", element
        values = np.asarray(got["values"], dtype=expected.dtype if expected.dtype != object else object)
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(values, expected, rtol=1e-6, err_msg=element)
        else:
            np.testing.assert_array_equal(values, expected, err_msg=element)
    assert result["obs/cell_type/codes"]["attrs"]["encoding-type"] == "array"


def test_zarrita_reads_shards_annio_builds_itself(tmp_path, monkeypatch):
    """Shards written by annio's parallel path (:mod:`annio.io._storage.zarr_shards`) — several inner
    chunks per shard, edge shards and edge chunks — read the same in JavaScript."""
    from annio.io._storage import zarr_shards

    zarrita_available()
    big = datasets.pbmc_like(1990, 300)
    monkeypatch.setattr(zarr_shards, "MIN_PARALLEL_BYTES", 1)  # thread pool even for small arrays
    written = []
    write_shards = zarr_shards.write_shards
    monkeypatch.setattr(zarr_shards, "write_shards", lambda arr, *a, **k: written.append(arr.path) or write_shards(arr, *a, **k))
    path = tmp_path / "big.zarr"
    with annio.settings.override(shard_target_bytes=2**16, chunk_target_bytes=2**12):
        write_zarr(path, big, zarr_format=3)
    assert {"X/data", "X/indices", "obsm/X_pca", "obs/n_counts"} <= set(written)
    for element in ("X/data", "obsm/X_pca"):
        arr = zarr.open_group(path, mode="r")[element]
        assert arr.shards[0] > arr.chunks[0] and arr.shape[0] % arr.shards[0] and arr.shape[0] % arr.chunks[0], element
    result = read_with_zarrita(str(path), "", *ELEMENTS)
    for element in ELEMENTS:
        expected = _expected(big, element)
        values = np.asarray(result[element]["values"], dtype=expected.dtype if expected.dtype != object else object)
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(values, expected, rtol=1e-6, err_msg=element)
        else:
            np.testing.assert_array_equal(values, expected, err_msg=element)
