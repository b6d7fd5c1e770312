"""A standard scanpy workflow on data read by annio and handed over through the bridge gives
exactly the results of a pure-anndata run, and annio writes the processed object so that
anndata reads it back unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import annio
from annio.testing import assert_equal

pytestmark = [pytest.mark.interop, pytest.mark.slow]

sc = pytest.importorskip("scanpy")
ad = pytest.importorskip("anndata")


@pytest.fixture(scope="module")
def counts_file(tmp_path_factory):
    """A raw-count h5ad written by anndata (2000 cells × 1000 genes, sparse)."""
    src = annio.datasets.pbmc_like(n_obs=2000, n_vars=1000, seed=3)
    adata = ad.AnnData(
        X=src.layers["counts"].astype(np.float32),
        obs=src.obs[["cell_type", "batch"]].copy(),
        var=src.var[["gene_ids"]].copy(),
    )
    adata.var_names = [f"MT-{n}" if i < 13 else n for i, n in enumerate(adata.var_names)]
    path = tmp_path_factory.mktemp("scanpy") / "counts.h5ad"
    adata.write_h5ad(path)
    return path


def _pipeline(adata, png_path):
    adata.var["mt"] = adata.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    sc.pp.filter_cells(adata, min_genes=20)
    sc.pp.filter_genes(adata, min_cells=5)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.raw = adata
    sc.pp.highly_variable_genes(adata, n_top_genes=300)
    adata = adata[:, adata.var["highly_variable"]].copy()
    sc.pp.scale(adata, max_value=10)
    sc.tl.pca(adata, n_comps=20, random_state=0)
    sc.pp.neighbors(adata, n_neighbors=10, random_state=0)
    sc.tl.umap(adata, random_state=0, maxiter=100)
    sc.tl.leiden(adata, resolution=0.5, random_state=0, flavor="igraph", n_iterations=2, directed=False)
    sc.tl.rank_genes_groups(adata, "leiden", method="t-test")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc.pl.umap(adata, color="leiden", show=False)
    plt.savefig(png_path)
    plt.close("all")
    return adata


@pytest.fixture(scope="module")
def both_runs(counts_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("scanpy-out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scanpy/numba deprecation chatter
        bridged_in = annio.read_h5ad(counts_file).to_anndata()
        assert isinstance(bridged_in, ad.AnnData)
        bridged = _pipeline(bridged_in, out / "bridged.png")
        reference = _pipeline(ad.read_h5ad(counts_file), out / "reference.png")
    return bridged, reference, out


def test_pipeline_results_equal_pure_anndata(both_runs):
    bridged, reference, out = both_runs
    assert isinstance(bridged, ad.AnnData)
    assert bridged.n_obs < 2000 or bridged.n_vars < 1000 or bridged.n_vars == 300  # filters and HVG ran
    assert bridged.obsm["X_umap"].shape == (bridged.n_obs, 2)
    assert bridged.obs["leiden"].cat.categories.size > 1
    # everything: X, layers, obs (qc metrics, leiden), var (hvg), obsm (X_pca, X_umap),
    # varm (PCs), obsp (graph), uns (pca, neighbors, umap, leiden, rank_genes_groups), raw
    assert_equal(bridged, reference, exact=True)
    np.testing.assert_array_equal(bridged.obsm["X_umap"], reference.obsm["X_umap"])
    for field in ("names", "scores", "pvals_adj", "logfoldchanges"):
        np.testing.assert_array_equal(
            bridged.uns["rank_genes_groups"][field], reference.uns["rank_genes_groups"][field]
        )
    for name in ("bridged.png", "reference.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_processed_object_written_by_annio_reads_back_in_anndata(both_runs):
    bridged, _, out = both_runs
    by_annio, by_anndata = out / "processed-annio.h5ad", out / "processed-anndata.h5ad"
    annio.write_h5ad(by_annio, bridged, compression="gzip")
    bridged.write_h5ad(by_anndata)
    back = ad.read_h5ad(by_annio)
    assert_equal(back, ad.read_h5ad(by_anndata), exact=True)
    # the data itself, against the object in memory (uns lists come back as arrays, as in anndata)
    for attr in ("X", "obs", "var", "obsm", "varm", "obsp", "layers", "raw"):
        assert_equal(getattr(back, attr), getattr(bridged, attr), exact=True, path=f"/{attr}")
    # and the zarr writer
    annio.write_zarr(out / "processed.zarr", bridged)
    assert_equal(ad.read_zarr(out / "processed.zarr"), back)
