"""annio's zarr stores stay readable by the JavaScript client web viewers use (zarrita)."""

from __future__ import annotations

import numpy as np
import pytest

import annio
from annio import datasets
from annio.io import write_zarr
from zarrita import read_with_zarrita, zarrita_available

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
