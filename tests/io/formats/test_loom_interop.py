"""Loom reading and writing against the real anndata (which reads and writes through loompy)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
import annio.io as aio
from annio.errors import FormatError
from annio.testing import assert_equal

anndata = pytest.importorskip("anndata")
loompy = pytest.importorskip("loompy")
pytestmark = pytest.mark.interop


@pytest.fixture
def loom_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.poisson(0.5, (30, 150)).astype(np.float64)  # genes × cells; 150 cells: several 64-cell chunks
    path = tmp_path / "l.loom"
    loompy.create(
        str(path), X,
        {"Gene": np.array([f"g{i}" for i in range(30)]), "chrom": np.array(["1"] * 30), "n": np.arange(30)},
        {"CellID": np.array([f"c{i}" for i in range(150)]), "umap_1": rng.random(150), "umap_2": rng.random(150),
         "cluster": np.array(["a", "b", "c"] * 50)},
    )
    with loompy.connect(str(path)) as ds:
        ds.layers["spliced"] = X * 2
        ds.layers["unspliced"] = X * 3
    return path


KWARGS = [
    {},
    {"sparse": False},
    {"X_name": "unspliced", "dtype": "float64"},
    {"cleanup": True, "obsm_mapping": {"X_umap": ["umap_1", "umap_2"]}},
    {"obs_names": "cluster", "var_names": "chrom"},
]


@pytest.mark.parametrize("kw", KWARGS, ids=lambda kw: ",".join(kw) or "default")
def test_read_loom_like_anndata(loom_file, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.io.read_loom(loom_file, **kw)
        ours = aio.read_loom(loom_file, **kw)
    assert_equal(ours, theirs)
    assert type(ours.X) is type(theirs.X) and ours.X.dtype == theirs.X.dtype
    assert ours.obs.index.name == theirs.obs.index.name


def _loompy_reference(path, X, obs, var, layers, obsm):
    """A loom file as anndata's ``write_loom`` lays it out: genes x cells layers ("" is X),
    var columns and var_names as row attributes, obs columns, obs_names and obsm as column
    attributes."""
    row_attrs = {k: np.asarray(list(var[k])) for k in var.columns}
    row_attrs["var_names"] = np.asarray(var.index)
    col_attrs = {k: np.asarray(list(obs[k])) for k in obs.columns}
    col_attrs["obs_names"] = np.asarray(obs.index)
    col_attrs.update(obsm)
    loompy.create(str(path), {"": X.T, **{k: v.T for k, v in layers.items()}}, row_attrs=row_attrs, col_attrs=col_attrs)


def test_write_loom_read_by_anndata_and_loompy(tmp_path):
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"c": pd.Categorical(rng.choice(["a", "b"], 100)), "i": np.arange(100), "f": rng.random(100)},
                       index=[f"cell{i}" for i in range(100)])
    var = pd.DataFrame({"sym": [f"s{i}" for i in range(20)]}, index=[f"g{i}" for i in range(20)])
    X = sp.random(100, 20, density=0.3, format="csr", random_state=0, dtype=np.float32)
    ad = annio.AnnData(X, obs=obs, var=var, layers={"L": X.toarray() * 2}, obsm={"X_pca": rng.random((100, 3))},
                       obsp={"knn": sp.random(100, 100, density=0.05, format="csr", random_state=1)})
    ours = tmp_path / "ours.loom"
    ad.write_loom(ours, write_obsm_varm=True)
    theirs = tmp_path / "theirs.loom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_adata = anndata.AnnData(X, obs=obs, var=var, layers={"L": X.toarray() * 2}, obsm={"X_pca": ad.obsm["X_pca"]})
        try:
            reference_adata.write_loom(theirs, write_obsm_varm=True)
        except AttributeError:
            # anndata 0.13 lists X as layers[None] and hands loompy a layer named None: write
            # the reference with loompy directly, laid out as anndata 0.12 writes it
            _loompy_reference(theirs, X, obs, var, {"L": X.toarray() * 2}, {"X_pca": ad.obsm["X_pca"]})
        back = anndata.io.read_loom(ours, obs_names="obs_names", var_names="var_names")
        reference = anndata.io.read_loom(theirs, obs_names="obs_names", var_names="var_names")
    assert_equal(back, reference)
    with loompy.connect(str(ours), "r") as ds:
        np.testing.assert_array_equal(ds[:, :], X.toarray().T)
        assert list(ds.ca["obs_names"]) == list(obs.index)
        assert ds.col_graphs["knn"].nnz == ad.obsp["knn"].nnz
    # and annio reads both back, the same way
    mine = aio.read_loom(ours, obs_names="obs_names", var_names="var_names")
    assert_equal(mine, aio.read_loom(theirs, obs_names="obs_names", var_names="var_names").__class__(
        mine.X, obs=mine.obs, var=mine.var, layers=dict(mine.layers), obsm=dict(mine.obsm), obsp=dict(mine.obsp)))
    assert_equal(mine.obsp["knn"], ad.obsp["knn"])
    np.testing.assert_array_equal(mine.X.toarray(), X.toarray())


def test_write_loom_never_leaves_a_partial_file(tmp_path, monkeypatch):
    from annio.io._formats import loom

    target = tmp_path / "x.loom"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match="needs X"):
        aio.write_loom(target, annio.AnnData(shape=(3, 2)))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(loom, "_write_graphs", fail)  # fails after the matrices are written
    with pytest.raises(OSError, match="disk full"):
        aio.write_loom(target, annio.AnnData(np.ones((3, 2))))
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.loom"]


def test_read_loom_not_a_loom(tmp_path):
    with h5py.File(tmp_path / "x.loom", "w") as f:
        f["other"] = 1
    with pytest.raises(FormatError, match="not a loom file"):
        aio.read_loom(tmp_path / "x.loom")
