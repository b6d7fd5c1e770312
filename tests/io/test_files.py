"""Whole-object round trips through read_h5ad/write_h5ad and read_zarr/write_zarr."""

from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import sparse

import annio
from annio.io import read_h5ad, read_zarr, write_h5ad, write_zarr
from annio.io._storage.stores import is_h5ad

FORMATS = ["h5ad", "h5ad-gzip", "zarr2", "zarr3", "zarr3-sharded", "zip"]


def _write(fmt: str, tmp_path: Path, adata, **kwargs) -> Path:
    if fmt.startswith("h5ad"):
        path = tmp_path / "out.h5ad"
        write_h5ad(path, adata, **({"compression": "gzip"} if fmt == "h5ad-gzip" else {}), **kwargs)
        return path
    if fmt == "zip":
        path = tmp_path / "out.zarr.zip"
        write_zarr(path, adata, **kwargs)
        return path
    path = tmp_path / "out.zarr"
    with annio.settings.override(auto_shard_zarr_v3=fmt == "zarr3-sharded"):
        write_zarr(path, adata, zarr_format=2 if fmt == "zarr2" else 3, **kwargs)
    return path


def _read(fmt: str, path: Path):
    return read_h5ad(path) if fmt.startswith("h5ad") else read_zarr(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(fmt, tmp_path, annio_adata, assert_matches):
    path = _write(fmt, tmp_path, annio_adata, convert_strings_to_categoricals=False)
    back = _read(fmt, path)
    assert_matches(back, annio_adata)
    if fmt == "zip":
        assert path.is_file() and zipfile.is_zipfile(path)
    if fmt == "h5ad-gzip":
        with h5py.File(path, "r") as f:
            assert f["X"].compression == "gzip"
            assert f["uns/scalar_int"].compression is None  # scalars are never compressed
    if fmt.startswith("zarr"):
        group = zarr.open_group(path, mode="r")
        assert group.metadata.zarr_format == (2 if fmt == "zarr2" else 3)
        assert group.attrs["encoding-type"] == "anndata"
        assert group.metadata.consolidated_metadata is not None
    if fmt == "zarr3-sharded":
        assert zarr.open_group(path, mode="r")["X"].shards is not None


@pytest.mark.parametrize("fmt", ["h5ad", "zarr3"])
def test_x_none(fmt, tmp_path, assert_matches):
    from annio._core import AnnData

    adata = AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(4)]), var=pd.DataFrame(index=["g1", "g2"]))
    path = _write(fmt, tmp_path, adata)
    if fmt == "h5ad":
        with h5py.File(path, "r") as f:
            assert "X" not in f
    back = _read(fmt, path)
    assert back.X is None
    assert back.shape == (4, 2)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2"])
def test_view_written(fmt, tmp_path, annio_adata, assert_matches):
    view = annio_adata[5:20, [0, 2, 4]]
    path = _write(fmt, tmp_path, view, convert_strings_to_categoricals=False)
    back = _read(fmt, path)
    assert_matches(back, view)
    assert back.shape == (15, 3)


def test_strings_to_categoricals_does_not_mutate(tmp_path, annio_adata):
    before = annio_adata.obs.dtypes.copy()
    raw_kind_before = annio_adata.raw.var["kind"].dtype
    assert pd.api.types.is_string_dtype(raw_kind_before)  # object, or `str` under pandas 3
    path = _write("h5ad", tmp_path, annio_adata)
    pd.testing.assert_series_equal(annio_adata.obs.dtypes, before)
    assert annio_adata.raw.var["kind"].dtype == raw_kind_before
    back = read_h5ad(path)
    assert isinstance(back.obs["str_repeated"].dtype, pd.CategoricalDtype)
    # all-unique strings stay strings (object, or `str` under pandas 3 string inference)
    assert back.obs["str_unique"].dtype == annio_adata.obs["str_unique"].dtype
    assert isinstance(back.raw.var["kind"].dtype, pd.CategoricalDtype)
    assert list(back.obs["str_repeated"].cat.categories) == ["x", "y"]


def test_stores_given_as_objects(tmp_path, annio_adata, assert_matches):
    # an open h5py file is written in place and read from
    with h5py.File(tmp_path / "a.h5ad", "w") as f:
        write_h5ad(f, annio_adata)
    with h5py.File(tmp_path / "a.h5ad", "r") as f:
        assert_matches(read_h5ad(f), read_h5ad(tmp_path / "a.h5ad"))
    # a zarr group, a zarr store object, a ZipStore
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    write_zarr(group, annio_adata)
    assert_matches(read_zarr(zarr.open_group(tmp_path / "g.zarr", mode="r")), read_zarr(tmp_path / "g.zarr"))
    mem = zarr.storage.MemoryStore()
    write_zarr(mem, annio_adata, convert_strings_to_categoricals=False)
    assert_matches(read_zarr(mem), annio_adata)
    write_zarr(tmp_path / "z.zip", annio_adata, convert_strings_to_categoricals=False)
    store = zarr.storage.ZipStore(tmp_path / "z.zip", mode="r")
    assert_matches(read_zarr(store), annio_adata)
    store.close()


def test_zarr_chunks_apply_to_x(tmp_path, annio_adata):
    write_zarr(tmp_path / "c.zarr", annio_adata, chunks=(10, 5), zarr_format=2)
    group = zarr.open_group(tmp_path / "c.zarr", mode="r")
    assert group["X"].chunks == (10, 5)


def test_as_sparse_and_as_dense(tmp_path, annio_adata):
    path = tmp_path / "d.h5ad"
    write_h5ad(path, annio_adata, as_dense=("raw/X",))
    with h5py.File(path, "r") as f:
        assert isinstance(f["raw/X"], h5py.Dataset)
    back = read_h5ad(path, as_sparse=("X", "raw/X"), as_sparse_fmt=sparse.csc_matrix, chunk_size=7)
    assert sparse.issparse(back.X) and back.X.format == "csc"
    np.testing.assert_array_equal(back.X.toarray(), annio_adata.X)
    np.testing.assert_array_equal(back.raw.X.toarray(), annio_adata.raw.X.toarray())
    with pytest.raises(NotImplementedError):
        read_h5ad(path, as_sparse=("layers/dense",))


def test_is_h5ad_sniffs_magic(tmp_path, annio_adata):
    path = _write("h5ad", tmp_path, annio_adata)
    renamed = path.rename(tmp_path / "no_extension")
    assert is_h5ad(renamed)
    assert not is_h5ad(_write("zarr2", tmp_path, annio_adata))
    assert is_h5ad(tmp_path / "new.h5ad")  # not there yet: by extension


def test_overwrite_replaces_and_leaves_no_siblings(tmp_path, annio_adata):
    for fmt in ("h5ad", "zarr3", "zip"):
        path = _write(fmt, tmp_path, annio_adata)
        _write(fmt, tmp_path, annio_adata[:3])
        assert _read(fmt, path).n_obs == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_zarrs_context_follows_setting():
    from annio.io._storage.stores import zarrs_context

    default = zarr.config.get("codec_pipeline.path")
    with annio.settings.override(use_zarrs=True), zarrs_context():
        assert zarr.config.get("codec_pipeline.path") == "zarrs.ZarrsCodecPipeline"
    with annio.settings.override(use_zarrs=False), zarrs_context():
        assert zarr.config.get("codec_pipeline.path") == default
    assert zarr.config.get("codec_pipeline.path") == default


def test_unknown_root_element_is_ignored_with_warning(tmp_path, annio_adata):
    path = tmp_path / "x.h5ad"
    write_h5ad(path, annio_adata)
    with h5py.File(path, "r+") as f:
        f["extra_thing"] = np.arange(3)
    with pytest.warns(annio.errors.AnnioWarning, match="/extra_thing"):
        back = read_h5ad(path)
    assert back.shape == annio_adata.shape


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3"])
def test_raw_stored_as_null_means_no_raw(fmt, tmp_path):
    """anndata 0.13's zarr writer stores a missing ``raw`` as a ``null`` element."""
    from annio.io import write_elem

    a = annio.AnnData(np.ones((3, 2)))
    path = _write(fmt, tmp_path, a)
    if fmt == "h5ad":
        with h5py.File(path, "a") as f:
            write_elem(f, "raw", None)
            assert f["raw"].attrs["encoding-type"] == "null"
    else:
        g = zarr.open_group(path, mode="a", use_consolidated=False)
        write_elem(g, "raw", None)
        assert g["raw"].attrs["encoding-type"] == "null"
        zarr.consolidate_metadata(path)
    back = _read(fmt, path)
    assert back.raw is None
    np.testing.assert_array_equal(back.X, a.X)
