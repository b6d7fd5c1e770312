"""Fixtures for the in-memory model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio._core import AnnData
from annio.testing import gen_adata


@pytest.fixture
def small() -> AnnData:
    """3 × 4 object with a categorical obs column, obsm, layers, obsp, uns."""
    X = np.arange(12, dtype=float).reshape(3, 4)
    adata = AnnData(
        X,
        obs=pd.DataFrame({"c": pd.Categorical(list("aab")), "f": [1.0, 2.0, 3.0]}, index=list("xyz")),
        var=pd.DataFrame({"g": [1, 2, 3, 4]}, index=list("ABCD")),
    )
    adata.obsm["X_pca"] = np.arange(6, dtype=float).reshape(3, 2)
    adata.layers["l"] = X * 10
    adata.obsp["p"] = np.eye(3)
    adata.uns["u"] = {"n": {"m": 1}}
    adata.uns["c_colors"] = np.array(["red", "blue"])
    return adata


@pytest.fixture(params=["array", "csr", "csc", "csr_array"])
def rich(request: pytest.FixtureRequest) -> AnnData:
    """A gen_adata object with X of the parametrised type."""
    return gen_adata((15, 10), X_type=request.param, raw=True)


@pytest.fixture
def csr() -> sparse.csr_matrix:
    return sparse.csr_matrix(np.arange(12, dtype=float).reshape(3, 4))
