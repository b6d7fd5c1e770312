"""Awkward arrays (scirpy keeps AIRR data in obsm this way) across annio and real anndata,
in h5ad, zarr v2 and zarr v3: eager, lazy and backed reads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import annio
from annio.experimental import read_lazy

ak = pytest.importorskip("awkward")
anndata = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop

FORMATS = ["h5ad", "zarr2", "zarr3"]


def _parts():
    airr = ak.Array(
        [
            [{"locus": "TRA", "junction_aa": "CAVR", "umi": 3}, {"locus": "TRB", "junction_aa": "CASS", "umi": 5}],
            [],
            [{"locus": "IGH", "junction_aa": None, "umi": 1}],
            [{"locus": "TRB", "junction_aa": "CASSL", "umi": 2}],
        ]
    )
    return dict(
        X=np.arange(12.0).reshape(4, 3),
        obsm={"airr": airr, "ragged": ak.Array([[1.5], [], [2.0, 3.0], [4.0]])},
        varm={"regular": ak.Array(np.arange(6).reshape(3, 2))},
        uns={"nested": {"aw": ak.Array([["a"], ["b", "c"]])}},
    )


def _write(lib, adata, fmt, path):
    if fmt == "h5ad":
        adata.write_h5ad(path)
    else:
        with lib.settings.override(zarr_write_format=int(fmt[-1])):
            adata.write_zarr(path)


def _read(lib, fmt, path):
    return lib.read_h5ad(path) if fmt == "h5ad" else lib.read_zarr(path)


def _check(adata, parts):
    for attr in ("obsm", "varm"):
        for key, value in parts[attr].items():
            got = getattr(adata, attr)[key]
            assert got.tolist() == value.tolist(), (attr, key)
            assert str(got.type) == str(value.type), (attr, key)
    assert adata.uns["nested"]["aw"].tolist() == parts["uns"]["nested"]["aw"].tolist()


def _path(tmp_path, fmt):
    return tmp_path / ("a.h5ad" if fmt == "h5ad" else "a.zarr")


@pytest.mark.parametrize("fmt", FORMATS)
def test_anndata_writes_annio_reads(fmt, tmp_path):
    parts, path = _parts(), _path(tmp_path, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write(anndata, anndata.AnnData(**parts), fmt, path)
    _check(_read(annio, fmt, path), parts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_annio_writes_anndata_reads(fmt, tmp_path):
    parts, path = _parts(), _path(tmp_path, fmt)
    _write(annio, annio.AnnData(**parts), fmt, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(_read(anndata, fmt, path), parts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_written_view_matches_anndata(fmt, tmp_path):
    parts = _parts()
    ours_path, theirs_path = tmp_path / f"ours-{_path(tmp_path, fmt).name}", tmp_path / f"theirs-{_path(tmp_path, fmt).name}"
    _write(annio, annio.AnnData(**parts)[[0, 2], 1:], fmt, ours_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write(anndata, anndata.AnnData(**parts)[[0, 2], 1:], fmt, theirs_path)
        theirs = _read(anndata, fmt, theirs_path)
    ours = _read(annio, fmt, ours_path)
    for key in ("airr", "ragged"):
        assert ours.obsm[key].tolist() == theirs.obsm[key].tolist()
    assert ours.varm["regular"].tolist() == theirs.varm["regular"].tolist()


@pytest.mark.parametrize("fmt", FORMATS)
def test_lazy_read_is_virtual_and_subsets(fmt, tmp_path):
    parts, path = _parts(), _path(tmp_path, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write(anndata, anndata.AnnData(**parts), fmt, path)
        theirs = anndata.experimental.read_lazy(path)
    lazy = read_lazy(path)
    airr = lazy.obsm["airr"]
    # anndata 0.12 reads the whole array at open; annio reads no awkward buffer until needed
    assert not airr.layout.is_any_materialized
    assert len(airr) == 4 and str(airr.type) == str(parts["obsm"]["airr"].type)
    sub = lazy[[0, 3]]
    assert sub.obsm["airr"].tolist() == theirs[[0, 3]].obsm["airr"].tolist()
    mem = lazy[[1, 2]].to_memory()
    if getattr(lazy.file, "close", None):
        lazy.file.close()
    assert mem.obsm["airr"].layout.is_all_materialized  # usable after the file is closed
    assert mem.obsm["airr"].tolist() == parts["obsm"]["airr"][[1, 2]].tolist()
    assert mem.uns["nested"]["aw"].tolist() == [["a"], ["b", "c"]]


def test_backed_mode_reads_awkward(tmp_path):
    parts, path = _parts(), tmp_path / "a.h5ad"
    annio.AnnData(**parts).write_h5ad(path)
    backed = annio.read_h5ad(path, backed="r")
    try:
        _check(backed, parts)
        assert backed[[2]].obsm["airr"].tolist() == parts["obsm"]["airr"][[2]].tolist()
    finally:
        backed.file.close()
