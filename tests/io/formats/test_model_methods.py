"""AnnData.chunked_X / chunk_X / rename_categories against the real anndata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
from annio.testing import assert_equal

anndata = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop


def _pair(X):
    obs = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", "b", "c"] * 4)}, index=[f"o{i}" for i in range(20)])
    return annio.AnnData(X, obs=obs), anndata.AnnData(X, obs=obs)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 6, 20, 50])
def test_chunked_X(sparse, chunk_size):
    X = np.arange(60.0).reshape(20, 3)
    ours, theirs = _pair(sp.csr_matrix(X) if sparse else X)
    a, b = list(ours.chunked_X(chunk_size)), list(theirs.chunked_X(chunk_size))
    assert [(s, e) for _, s, e in a] == [(s, e) for _, s, e in b]
    for (x, *_), (y, *_) in zip(a, b, strict=True):
        assert type(x) is type(y)
        assert_equal(x, y, exact=True)


def test_chunked_X_backed(tmp_path):
    ours, _ = _pair(np.arange(60.0).reshape(20, 3))
    ours.write_h5ad(tmp_path / "a.h5ad")
    backed = annio.read_h5ad(tmp_path / "a.h5ad", backed="r")
    blocks = list(backed.chunked_X(7))
    np.testing.assert_array_equal(np.vstack([b for b, *_ in blocks]), ours.X)
    np.testing.assert_array_equal(backed.chunk_X([5, 1, 3]), ours.X[[5, 1, 3]])
    backed.file.close()


@pytest.mark.parametrize("sparse", [False, True])
def test_chunk_X(sparse):
    X = np.arange(60.0).reshape(20, 3)
    ours, theirs = _pair(sp.csr_matrix(X) if sparse else X)
    assert_equal(ours.chunk_X([3, 0, 7]), theirs.chunk_X([3, 0, 7]), exact=True)
    for replace in (True, False):
        np.random.seed(0)
        a = ours.chunk_X(5, replace=replace)
        np.random.seed(0)
        assert_equal(a, theirs.chunk_X(5, replace=replace), exact=True)
    with pytest.raises(ValueError, match="select should be int or array"):
        ours.chunk_X("x")


def test_rename_categories():
    X = np.ones((20, 3))
    ours, theirs = _pair(X)
    for ad in (ours, theirs):
        ad.uns["rank"] = {"params": {"groupby": "c"},
                          "names": np.array([("x", "y", "z")], dtype=[("a", "U1"), ("b", "U1"), ("c", "U1")])}
        ad.uns["other"] = {"params": {"groupby": "c"}, "names": np.array([(1,)], dtype=[("q", int)])}
    theirs.rename_categories("c", ["A", "B", "C"])  # anndata logs this; annio warns
    with pytest.warns(UserWarning, match="Omitting other/names"):
        ours.rename_categories("c", ["A", "B", "C"])
    assert list(ours.obs["c"].cat.categories) == list(theirs.obs["c"].cat.categories) == ["A", "B", "C"]
    assert ours.uns["rank"]["names"].dtype.names == theirs.uns["rank"]["names"].dtype.names == ("A", "B", "C")
    with pytest.raises(ValueError, match="neither in `.obs` nor in `.var`"):
        ours.rename_categories("nope", ["x"])
    with pytest.raises(ValueError, match="3 categories, got 2"):
        ours.rename_categories("c", ["x", "y"])
