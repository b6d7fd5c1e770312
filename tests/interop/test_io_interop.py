"""Files written by real anndata read by annio, and files written by annio read by anndata."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest
import zarr

import annio
from annio.io import read_h5ad, read_zarr, write_h5ad, write_zarr

anndata = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop


def _load_helpers():
    """The comparison and object builders shared with tests/io (tests/io/conftest.py)."""
    path = Path(__file__).resolve().parents[1] / "io" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_annio_io_test_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()
FORMATS = ["h5ad", "zarr2", "zarr3"]


def _parts():
    parts = helpers.rich_parts(seed=3)
    # anndata 0.12 writes an object column with all-unique strings as string-array: keep it
    return parts


def _anndata_object():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return helpers.build_adata(anndata.AnnData, _parts())


def _annio_object():
    from annio._core import AnnData

    return helpers.build_adata(AnnData, _parts())


@pytest.mark.parametrize("fmt", FORMATS)
def test_anndata_writes_annio_reads(fmt, tmp_path):
    theirs = _anndata_object()
    if fmt == "h5ad":
        path = tmp_path / "a.h5ad"
        theirs.write_h5ad(path)
        ours = read_h5ad(path)
        reread = anndata.read_h5ad(path)
    else:
        path = tmp_path / "a.zarr"
        with anndata.settings.override(zarr_write_format=2 if fmt == "zarr2" else 3):
            theirs.write_zarr(path)
        assert zarr.open_group(path, mode="r").metadata.zarr_format == (2 if fmt == "zarr2" else 3)
        ours = read_zarr(path)
        reread = anndata.read_zarr(path)
    helpers.assert_adata_matches(ours, reread)


@pytest.mark.parametrize("fmt", [*FORMATS, "zarr3-sharded"])
def test_annio_writes_anndata_reads(fmt, tmp_path):
    ours = _annio_object()
    if fmt == "h5ad":
        path = tmp_path / "a.h5ad"
        write_h5ad(path, ours)
        theirs = anndata.read_h5ad(path)
        reread = read_h5ad(path)
    else:
        path = tmp_path / "a.zarr"
        with annio.settings.override(auto_shard_zarr_v3=fmt == "zarr3-sharded"):
            write_zarr(path, ours, zarr_format=2 if fmt == "zarr2" else 3)
        theirs = anndata.read_zarr(path)
        reread = read_zarr(path)
    helpers.assert_adata_matches(reread, theirs)
    # and what anndata read is what we wrote (strings became categoricals on write)
    assert list(theirs.obs.columns) == list(ours.obs.columns)
    assert theirs.obs_names.tolist() == ours.obs_names.tolist()
    assert theirs.var.index.name == "gene_id"


def test_annio_zip_read_by_anndata(tmp_path):
    ours = _annio_object()
    path = tmp_path / "a.zarr.zip"
    write_zarr(path, ours)
    store = zarr.storage.ZipStore(path, mode="r")
    theirs = anndata.read_zarr(store)
    helpers.assert_adata_matches(read_zarr(path), theirs)
    store.close()
