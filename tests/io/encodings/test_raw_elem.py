"""``read_elem`` of a ``raw`` group returns an AnnData, as anndata's does."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

import annio
from annio.io import read_elem

anndata = pytest.importorskip("anndata")


@pytest.mark.parametrize("kind", ["h5ad", "zarr"])
def test_read_elem_raw_is_anndata_like_anndata(tmp_path, kind):
    adata = annio.AnnData(np.arange(6, dtype=float).reshape(3, 2), var=pd.DataFrame({"g": [1, 2]}, index=["a", "b"]))
    adata.varm["v"] = np.ones((2, 3))
    adata.raw = adata
    path = tmp_path / f"r.{kind}"
    adata.write_h5ad(path) if kind == "h5ad" else adata.write_zarr(path)
    root = h5py.File(path, "r") if kind == "h5ad" else zarr.open_group(path, mode="r")
    try:
        ours = read_elem(root["raw"])
        theirs = anndata.io.read_elem(root["raw"])
        whole = read_elem(root)
    finally:
        if kind == "h5ad":
            root.close()
    np.testing.assert_array_equal(whole.raw.X, adata.X)
    assert type(ours).__name__ == type(theirs).__name__ == "AnnData"
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.X, theirs.X)
    pd.testing.assert_frame_equal(ours.var, theirs.var)
    assert list(ours.obs_names) == list(theirs.obs_names)
    np.testing.assert_array_equal(ours.varm["v"], theirs.varm["v"])
    # the whole file still has its raw attached as raw
    back = annio.read_h5ad(path) if kind == "h5ad" else annio.read_zarr(path)
    np.testing.assert_array_equal(back.raw.X, adata.X)
