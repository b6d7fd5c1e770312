"""Awkward arrays in the model: constructor, shapes, views (copy-on-write), copies."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from annio._core import AnnData
from annio.errors import ImplicitModificationWarning

ak = pytest.importorskip("awkward")


def _ragged():
    return ak.Array([[1, 2], [3], [], [4, 5, 6]])


def _records():
    return ak.Array([{"a": [1, 2], "b": "x"}, {"a": [], "b": "y"}, {"a": [3], "b": "z"}, {"a": [4], "b": "w"}])


@pytest.fixture
def adata():
    return AnnData(
        np.zeros((4, 3)),
        obsm={"ragged": _ragged(), "rec": _records()},
        varm={"v": ak.Array([[1], [2, 3], []])},
        uns={"u": ak.Array([[1], []])},
    )


def test_constructor_takes_the_length_from_the_array(adata):
    assert adata.obsm["ragged"].tolist() == _ragged().tolist()
    assert adata.varm["v"].tolist() == [[1], [2, 3], []]
    with pytest.raises(ValueError, match=r"Value had shape \(2,\) while it should have had \(4,\)"):
        adata.obsm["short"] = ak.Array([[1], [2]])


def test_shape_without_X_comes_from_awkward_values():
    assert AnnData(obsm={"a": _ragged()}).shape == (4, 0)
    assert AnnData(varm={"a": _ragged()}).shape == (0, 4)


def test_regular_awkward_dimensions_count_in_the_shape():
    layer = ak.Array(np.arange(12.0).reshape(4, 3))
    a = AnnData(np.zeros((4, 3)), layers={"l": layer})
    assert a[[1, 2], [0, 2]].layers["l"].tolist() == [[3.0, 5.0], [6.0, 8.0]]
    with pytest.raises(ValueError, match="incorrect shape"):
        AnnData(np.zeros((4, 3)), layers={"l": ak.Array(np.zeros((4, 2)))})


def test_awkward_X_is_refused_clearly():
    with pytest.raises(ValueError, match="X cannot be an awkward array"):
        AnnData(ak.Array(np.zeros((4, 3))))
    a = AnnData(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="X cannot be an awkward array"):
        a.X = ak.Array(np.zeros((4, 3)))


def test_views_subset_and_behave_like_arrays(adata):
    view = adata[[0, 2], 1:]
    assert view.obsm["ragged"].tolist() == [[1, 2], []]
    assert view.varm["v"].tolist() == [[2, 3], []]
    assert isinstance(view.obsm["ragged"], ak.Array)
    # arithmetic and ufuncs give plain awkward arrays (anndata 0.12's view class refuses them)
    assert (view.obsm["ragged"] + 1).tolist() == [[2, 3], []]
    assert type(np.sqrt(view.obsm["ragged"])) is ak.Array
    assert view[1:].obsm["rec"].tolist() == [{"a": [3], "b": "z"}]
    assert type(pickle.loads(pickle.dumps(view.obsm["ragged"]))) is ak.Array


def test_assigning_a_field_of_a_view_copies_it(adata):
    view = adata[[0, 2]]
    records = view.obsm["rec"]
    with pytest.warns(ImplicitModificationWarning, match="initializing view as actual"):
        records["c"] = np.array([10, 20])
    assert not view.is_view
    assert view.obsm["rec"].fields == ["a", "b", "c"]
    assert view.obsm["rec"]["c"].tolist() == [10, 20]
    assert adata.obsm["rec"].fields == ["a", "b"]  # the parent is untouched


def test_copy_detaches(adata):
    copied = adata[1:3].copy()
    assert type(copied.obsm["ragged"]) is ak.Array
    assert copied.obsm["ragged"].tolist() == [[3], []]
    full = adata.copy()
    assert full.obsm["ragged"] is not adata.obsm["ragged"]
    assert full.uns["u"].tolist() == [[1], []]


def test_transpose_moves_awkward_values(adata):
    t = adata.T
    assert t.varm["ragged"].tolist() == _ragged().tolist()
    assert t.obsm["v"].tolist() == [[1], [2, 3], []]


def test_view_uns_awkward_value_reads_without_warning(adata):
    view = adata[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert view.uns["u"].tolist() == [[1], []]
