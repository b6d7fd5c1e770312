"""Streamed conversion gives the same object as an eager read + write."""

from __future__ import annotations

import pytest

import annio
from annio.testing import assert_equal, gen_adata


@pytest.mark.parametrize("source_kind,target_name", [("h5ad", "out.zarr"), ("zarr", "out.h5ad"), ("h5ad", "out.zip")])
def test_convert_roundtrip(tmp_path, source_kind, target_name):
    adata = gen_adata((120, 30), X_type="csr", seed=7)
    src = tmp_path / ("in.h5ad" if source_kind == "h5ad" else "in.zarr")
    if source_kind == "h5ad":
        annio.io.write_h5ad(src, adata)
    else:
        annio.io.write_zarr(src, adata)
    target = tmp_path / target_name
    annio.convert(src, target)
    out = annio.read_h5ad(target) if target_name.endswith(".h5ad") else annio.read_zarr(target)
    eager = annio.read_h5ad(src) if source_kind == "h5ad" else annio.read_zarr(src)
    assert_equal(out, eager)
