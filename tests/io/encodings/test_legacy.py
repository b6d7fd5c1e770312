"""Files written by old anndata releases read to what current anndata reads."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import sparse

from annio.errors import FormatError, OldFormatWarning
from annio.io import read_elem, read_h5ad, read_zarr

anndata = pytest.importorskip("anndata")

ARCHIVES = [
    ("v0.5.0", "h5ad"),
    ("v0.7.0", "h5ad"),
    ("v0.7.0", "zarr.zip"),
    ("v0.7.8", "h5ad"),
    ("v0.7.8", "zarr.zip"),
    ("v0.11.4", "h5ad"),
    ("v0.11.4", "zarr.zip"),
]


def _archive(archives, version, kind):
    path = archives / version / f"adata.{kind}"
    assert path.exists(), path
    return path


def _read_both(path, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "h5ad":
            theirs = anndata.read_h5ad(path)
        else:
            theirs = anndata.read_zarr(zarr.storage.ZipStore(path, mode="r"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = read_h5ad(path) if kind == "h5ad" else read_zarr(path)
    return ours, theirs, caught


@pytest.mark.parametrize(("version", "kind"), ARCHIVES, ids=[f"{v}-{k}" for v, k in ARCHIVES])
def test_archive_reads_like_anndata(archives, assert_matches, version, kind):
    path = _archive(archives, version, kind)
    ours, theirs, _ = _read_both(path, kind)
    assert type(ours).__module__.startswith("annio")
    assert_matches(ours, theirs)


@pytest.mark.parametrize("version", ["v0.7.0", "v0.7.8"])
def test_h5ad_and_zarr_archives_agree(archives, version):
    """The h5ad and zarr files of one release hold the same object."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_h5 = read_h5ad(_archive(archives, version, "h5ad"))
        from_zarr = read_zarr(_archive(archives, version, "zarr.zip"))
    assert from_h5.shape == from_zarr.shape
    assert list(from_h5.obs.columns) == list(from_zarr.obs.columns)
    assert isinstance(from_zarr.obs["cat_ordered"].dtype, pd.CategoricalDtype)
    assert from_zarr.obs["cat_ordered"].cat.ordered


def test_v050_details(archives):
    path = _archive(archives, "v0.5.0", "h5ad")
    ours, _, caught = _read_both(path, "h5ad")
    messages = [(w.category, str(w.message)) for w in caught]
    # categories moved from uns into categorical columns
    assert isinstance(ours.obs["louvain"].dtype, pd.CategoricalDtype)
    assert "louvain_categories" not in ours.uns
    assert ours.obs.index.name == "index"
    # graphs moved to obsp, with anndata's FutureWarning
    assert set(ours.obsp.keys()) == {"distances", "connectivities"}
    assert "distances" not in ours.uns["neighbors"]
    assert (FutureWarning, "Moving element from .uns['neighbors']['distances'] to .obsp['distances'].\n\n"
            "This is where adjacency matrices should go now.") in messages
    # legacy raw
    assert sparse.issparse(ours.raw.X) and ours.raw.X.shape == (700, 765)
    # compound obsm split into arrays; single byte strings became str
    assert ours.obsm["X_pca"].shape == (700, 50)
    assert ours.uns["neighbors"]["params"]["method"] == "umap"
    assert isinstance(ours.uns["neighbors"]["params"]["method"], str)
    assert ours.uns["rank_genes_groups"]["names"].dtype["CD34+"].kind == "U"
    assert (OldFormatWarning, "Element '/X' was written without encoding metadata.") in messages
    assert (OldFormatWarning, "'/obs' was written with a very old version of AnnData. Consider rewriting it.") in messages


@pytest.mark.parametrize("kind", ["h5ad", "zarr.zip"])
def test_old_format_warnings_match_anndata(archives, kind):
    path = _archive(archives, "v0.7.8", kind)
    with warnings.catch_warnings(record=True) as theirs_caught:
        warnings.simplefilter("always")
        if kind == "h5ad":
            anndata.read_h5ad(path)
        else:
            anndata.read_zarr(zarr.storage.ZipStore(path, mode="r"))
    _, _, ours_caught = _read_both(path, kind)

    def old_format(caught):
        return {str(w.message) for w in caught if issubclass(w.category, Warning) and "encoding metadata" in str(w.message)}

    expected = old_format(theirs_caught)
    assert expected
    assert old_format(ours_caught) == expected
    assert all(issubclass(w.category, OldFormatWarning) for w in ours_caught if "encoding metadata" in str(w.message))


def test_modern_archive_has_no_warnings(archives):
    _, _, caught = _read_both(_archive(archives, "v0.11.4", "h5ad"), "h5ad")
    assert not [w for w in caught if issubclass(w.category, OldFormatWarning)]


def test_read_elem_does_no_fixups(archives):
    """read_elem on a root reads what is there; only read_h5ad applies the legacy fix-ups."""
    with h5py.File(_archive(archives, "v0.5.0", "h5ad"), "r") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uns = read_elem(f["uns"])
        assert "louvain_categories" in uns
        assert sparse.issparse(uns["neighbors"]["distances"])
        obsm = read_elem(f["obsm"])
        assert obsm.dtype.names == ("X_pca", "X_umap")


def test_dataframe_010_categories_by_reference(archives):
    with h5py.File(_archive(archives, "v0.7.0", "h5ad"), "r") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_elem(f["obs"])
        expected = anndata.io.read_elem(f["obs"])
    pd.testing.assert_frame_equal(df, expected)
    assert "__categories" not in df.columns


def _legacy_file(tmp_path, build):
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as f:
        build(f)
    return path


def test_h5sparse_indptr_validated(tmp_path):
    def build(f):
        g = f.create_group("m")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array([2, 3])
        g["data"] = np.ones(2)
        g["indices"] = np.array([0, 1])
        g["indptr"] = np.array([0, 2, 1])  # not monotone

    with h5py.File(_legacy_file(tmp_path, build), "r") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", OldFormatWarning)
        with pytest.raises(FormatError, match="/m/indptr"):
            read_elem(f["m"])


def test_dangling_categories_path_is_format_error(tmp_path):
    path = tmp_path / "bad.zarr"
    g = zarr.open_group(path, mode="w", zarr_format=2)
    df = g.create_group("obs")
    df.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.1.0", "_index": "_index", "column-order": ["c"]})
    index = df.create_array("_index", shape=(2,), dtype=str)
    index[:] = np.array(["a", "b"], dtype=object)
    codes = df.create_array("c", data=np.array([0, 1], dtype=np.int8))
    codes.attrs["categories"] = "__categories/missing"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OldFormatWarning)
        with pytest.raises(FormatError, match="/obs/__categories/missing"):
            read_elem(zarr.open_group(path, mode="r")["obs"])


@pytest.mark.parametrize(("version", "kind"), ARCHIVES, ids=[f"{v}-{k}" for v, k in ARCHIVES])
def test_lazy_backed_and_eager_reads_agree(archives, version, kind):
    """Every archive reads to the same object eagerly, lazily and (h5ad) backed."""
    from annio.experimental import read_lazy
    from annio.testing import assert_equal

    path = _archive(archives, version, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = read_h5ad(path) if kind == "h5ad" else read_zarr(path)
        lazy = read_lazy(path)
        try:
            assert_equal(lazy.to_memory(), eager)
        finally:
            lazy.file.close()
        if kind == "h5ad":
            backed = read_h5ad(path, backed="r")
            try:
                assert_equal(backed.to_memory(), eager)
            finally:
                backed.file.close()
