"""Built-in example data: a synthetic, realistic single-cell dataset made on the fly.

No download is needed: :func:`pbmc_like` builds a PBMC-style object (sparse counts,
cell-type annotations, PCA/UMAP embeddings, a kNN graph, layers and nested ``uns``) from a
seed, so demos and tests are reproducible offline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["pbmc_like"]

_CELL_TYPES = np.array(["B cell", "CD4 T cell", "CD8 T cell", "NK cell", "Monocyte", "Dendritic cell", "Platelet"])


def _counts(rng: np.random.Generator, n_obs: int, n_vars: int, density: float) -> sp.csr_matrix:
    nnz_per_row = rng.binomial(n_vars, density, size=n_obs)
    indptr = np.zeros(n_obs + 1, dtype=np.int64)
    np.cumsum(nnz_per_row, out=indptr[1:])
    # sorted, unique column indices per row without a Python loop: sample with replacement,
    # then drop duplicates inside each row
    cols = rng.integers(0, n_vars, size=indptr[-1])
    rows = np.repeat(np.arange(n_obs), nnz_per_row)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    keep = np.ones(len(cols), dtype=bool)
    keep[1:] = (cols[1:] != cols[:-1]) | (rows[1:] != rows[:-1])
    rows, cols = rows[keep], cols[keep]
    data = rng.negative_binomial(2, 0.3, size=len(cols)).astype(np.float32) + 1
    return sp.csr_matrix((data, cols.astype(np.int32), np.searchsorted(rows, np.arange(n_obs + 1)).astype(np.int64)), shape=(n_obs, n_vars))


def pbmc_like(n_obs: int = 2000, n_vars: int = 1000, *, density: float = 0.05, seed: int = 0):
    """A synthetic PBMC-like :class:`annio.AnnData`.

    Parameters
    ----------
    n_obs, n_vars
        Number of cells and genes.
    density
        Fraction of non-zero counts.
    seed
        Random seed; the same seed gives the same object.
    """
    from annio._core import AnnData

    rng = np.random.default_rng(seed)
    counts = _counts(rng, n_obs, n_vars, density)
    total = np.asarray(counts.sum(axis=1)).ravel()
    lognorm = counts.multiply(1e4 / np.maximum(total, 1)[:, None]).tocsr()
    lognorm.data = np.log1p(lognorm.data).astype(np.float32)
    cell_type = rng.choice(_CELL_TYPES, size=n_obs, p=[0.1, 0.3, 0.15, 0.1, 0.25, 0.05, 0.05])
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(cell_type),
            "batch": pd.Categorical(rng.choice(["donor1", "donor2", "donor3"], size=n_obs)),
            "n_counts": total.astype(np.float32),
            "n_genes": np.diff(counts.indptr).astype(np.int32),
            "pct_mito": rng.beta(2, 40, size=n_obs).astype(np.float32),
            "is_doublet": rng.random(n_obs) < 0.03,
        },
        index=pd.Index([f"AAAC{i:08d}-1" for i in range(n_obs)]),
    )
    var = pd.DataFrame(
        {
            "gene_ids": np.array([f"ENSG{i:011d}" for i in range(n_vars)], dtype=object),
            "highly_variable": rng.random(n_vars) < 0.2,
            "mean": np.asarray(lognorm.mean(axis=0)).ravel(),
            "n_cells": np.bincount(counts.indices, minlength=n_vars).astype(np.int64),
        },
        index=pd.Index([f"GENE{i}" for i in range(n_vars)]),
    )
    pca = rng.normal(size=(n_obs, 50)).astype(np.float32)
    k = min(15, max(n_obs - 1, 0))
    neighbors = rng.integers(0, n_obs, size=(n_obs, k))
    knn = sp.csr_matrix(
        (rng.random(n_obs * k).astype(np.float32), neighbors.ravel(), np.arange(0, n_obs * k + 1, k)),
        shape=(n_obs, n_obs),
    )
    knn.sum_duplicates()
    return AnnData(
        X=lognorm,
        obs=obs,
        var=var,
        obsm={"X_pca": pca, "X_umap": pca[:, :2] * 3},
        varm={"PCs": rng.normal(size=(n_vars, 50)).astype(np.float32)},
        obsp={"connectivities": knn},
        layers={"counts": counts},
        uns={
            "cell_type_colors": np.array(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"], dtype=object),
            "neighbors": {"params": {"n_neighbors": k, "method": "umap", "metric": "euclidean"}},
            "pca": {"variance_ratio": np.sort(rng.random(50))[::-1]},
            "dataset": "synthetic PBMC-like example (annio.datasets.pbmc_like)",
        },
    )
