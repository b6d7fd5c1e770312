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


def _group(tmp_path, fmt, name):
    import h5py

    if fmt == "h5ad":
        return h5py.File(tmp_path / f"{name}.h5", "w")
    return zarr.open_group(tmp_path / f"{name}.zarr", mode="w", zarr_format=2 if fmt == "zarr2" else 3)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sparse_format", ["csr", "csc"])
def test_dask_sparse_index_dtypes_like_anndata(fmt, sparse_format, tmp_path):
    """A dask array of sparse chunks built in memory is stored with int64 indptr, as anndata
    writes it (a scipy matrix keeps its own int32 indptr in both)."""
    import dask.array as da
    import numpy as np
    import scipy.sparse as sp
    from anndata.io import read_elem as ad_read_elem
    from anndata.io import write_elem as ad_write_elem

    from annio.io import write_elem

    m = sp.random(40, 12, density=0.3, format=sparse_format, random_state=7, dtype=np.float32)
    x = da.from_array(m, chunks=(9, 12) if sparse_format == "csr" else (40, 5), asarray=False)
    stores = {"annio": _group(tmp_path, fmt, "annio"), "anndata": _group(tmp_path, fmt, "anndata")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, write in (("annio", write_elem), ("anndata", ad_write_elem)):
            write(stores[name], "dask", x)
            write(stores[name], "scipy", m)
        for key in ("dask", "scipy"):
            theirs = stores["anndata"][f"{key}/indptr"].dtype
            assert stores["annio"][f"{key}/indptr"].dtype == theirs, (key, theirs)
        assert stores["annio"]["dask/indptr"].dtype == np.int64
        back = ad_read_elem(stores["annio"]["dask"])  # anndata reads what annio wrote
    assert back.format == sparse_format and (back != m).nnz == 0
    for store in stores.values():
        if hasattr(store, "close"):
            store.close()
