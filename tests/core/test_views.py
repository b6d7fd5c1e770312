"""Views: lazy subsetting, view classes subclassing their base type, copy-on-write."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio._core import AnnData
from annio._core.views import (
    ArrayView,
    DataFrameView,
    DictView,
    SparseCSCArrayView,
    SparseCSCMatrixView,
    SparseCSRArrayView,
    SparseCSRMatrixView,
)
from annio.errors import ImplicitModificationWarning
from annio.settings import settings
from annio.testing import assert_equal

COW = r"Trying to modify attribute `\.{}` of view, initializing view as actual\."


def test_view_basics(small):
    v = small[1:, [0, 2]]
    assert v.is_view and v.shape == (2, 2)
    assert list(v.obs_names) == ["y", "z"] and list(v.var_names) == ["A", "C"]
    assert isinstance(v.X, ArrayView) and isinstance(v.X, np.ndarray)
    np.testing.assert_array_equal(v.X, small.X[1:][:, [0, 2]])
    assert isinstance(v.obs, DataFrameView) and isinstance(v.obs, pd.DataFrame)
    assert isinstance(v.uns, DictView)
    np.testing.assert_array_equal(v.obsm["X_pca"], small.obsm["X_pca"][1:])
    np.testing.assert_array_equal(v.obsp["p"], np.eye(3)[1:, 1:])
    np.testing.assert_array_equal(v.layers["l"], small.layers["l"][1:][:, [0, 2]])
    assert isinstance(v.layers["l"], ArrayView)


@pytest.mark.parametrize(
    ("cls", "view_cls"),
    [
        (sparse.csr_matrix, SparseCSRMatrixView),
        (sparse.csc_matrix, SparseCSCMatrixView),
        (sparse.csr_array, SparseCSRArrayView),
        (sparse.csc_array, SparseCSCArrayView),
    ],
)
def test_sparse_view_classes(cls, view_cls):
    X = np.arange(20, dtype=float).reshape(4, 5)
    a = AnnData(cls(X))
    v = a[[3, 0], 1:4]
    assert type(v.X) is view_cls and isinstance(v.X, cls)
    np.testing.assert_array_equal(v.X.toarray(), X[[3, 0]][:, 1:4])
    c = v.X.copy()
    assert type(c) is cls
    assert type(pickle.loads(pickle.dumps(v.X))) is cls


def test_view_is_lazy_and_shares_parent(small):
    v = small[:2]
    small.X[0, 0] = 100.0  # parent modified after the view was made
    assert v.X[0, 0] == 100.0


def test_view_derived_types(small):
    v = small[:2]
    assert type(v.X.copy()) is np.ndarray
    assert type(v.X + 1) is np.ndarray
    assert type(v.obs.copy()) is pd.DataFrame
    assert type(v.obs.drop(columns="c")) is pd.DataFrame
    assert v.is_view
    assert type(pickle.loads(pickle.dumps(v.X))) is np.ndarray
    assert float(v.X.sum()) == float(small.X[:2].sum())


@pytest.mark.parametrize(
    ("attr", "action"),
    [
        ("obs", lambda v: v.obs.__setitem__("new", 1)),
        ("var", lambda v: v.var.__setitem__("new", 1)),
        ("obs", lambda v: v.obs.__delitem__("c")),
        ("obs", lambda v: v.obs.drop(columns="c", inplace=True)),
        ("obs", lambda v: v.obs.pop("f")),
        ("X", lambda v: v.X.__setitem__((0, 0), -1.0)),
        ("X", lambda v: setattr(v, "X", np.zeros(v.shape))),
        ("obsm", lambda v: v.obsm["X_pca"].__setitem__((0, 0), -1.0)),
        ("layers", lambda v: v.layers["l"].__setitem__((0, 0), -1.0)),
        ("obsp", lambda v: v.obsp["p"].__setitem__((0, 0), -1.0)),
        ("uns", lambda v: v.uns.__setitem__("k", 1)),
        ("uns", lambda v: v.uns["u"].__setitem__("k", 1)),
        ("uns", lambda v: v.uns["u"]["n"].__setitem__("k", 1)),
        ("uns", lambda v: v.uns.__delitem__("u")),
    ],
)
def test_copy_on_write(small, attr, action):
    before = small.copy()
    v = small[1:]
    with pytest.warns(ImplicitModificationWarning, match=COW.format(attr)):
        action(v)
    assert not v.is_view
    assert_equal(small, before)  # the parent is untouched
    assert v.shape == (2, 4)


def test_cow_result_values(small):
    v = small[1:, 1:]
    with pytest.warns(ImplicitModificationWarning):
        v.X[0, 0] = -5.0
    assert v.X[0, 0] == -5.0 and small.X[1, 1] == 5.0
    np.testing.assert_array_equal(v.X[1], small.X[2, 1:])
    v2 = small[1:]
    with pytest.warns(ImplicitModificationWarning):
        v2.uns["u"]["n"]["m"] = 99
    assert v2.uns["u"]["n"]["m"] == 99 and small.uns["u"]["n"]["m"] == 1


@pytest.mark.parametrize(("verb", "action"), [("Setting", "set"), ("Removing", "del")])
def test_aligned_view_modification(small, verb, action):
    v = small[:2]
    with pytest.warns(ImplicitModificationWarning, match=rf"{verb} element `\.obsm\['X_pca'\]` of view"):
        if action == "set":
            v.obsm["X_pca"] = np.zeros((2, 1))
        else:
            del v.obsm["X_pca"]
    assert not v.is_view and ("X_pca" in v.obsm) == (action == "set")
    assert small.obsm["X_pca"].shape == (3, 2)


def test_aligned_view_invalid_value_keeps_view(small):
    v = small[:2]
    with pytest.warns(ImplicitModificationWarning), pytest.raises(ValueError, match="incorrect shape"):
        v.obsm["bad"] = np.zeros((3, 1))
    assert v.is_view


@pytest.mark.parametrize(
    "action",
    [
        lambda v: setattr(v, "obsm", {}),
        lambda v: setattr(v, "obs", pd.DataFrame(index=v.obs_names)),
        lambda v: setattr(v, "obs_names", ["q", "r"]),
        lambda v: setattr(v, "uns", {}),
        lambda v: setattr(v, "raw", None),
    ],
)
def test_whole_attribute_assignment_actualises_silently(small, action):
    v = small[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        action(v)
    assert not v.is_view and small.shape == (3, 4)


def test_views_of_views(small):
    v = small[::-1][1:, [3, 1]][[True, False]]
    assert v._adata_ref is small
    assert list(v.obs_names) == ["y"] and list(v.var_names) == ["D", "B"]
    np.testing.assert_array_equal(v.X, [[7.0, 5.0]])
    np.testing.assert_array_equal(v[:, [False, True]].X, [[5.0]])
    vv = small[1:][:, "B":"C"]
    assert list(vv.var_names) == ["B", "C"] and vv._adata_ref is small


def test_copy_of_view_is_actual_and_detached(small):
    c = small[:2, :2].copy()
    assert not c.is_view and type(c.X) is np.ndarray and type(c.obs) is pd.DataFrame
    c.X[0, 0] = -1
    assert small.X[0, 0] == 0


def test_unused_categories_and_colors(small):
    small.obs["d"] = pd.Categorical(list("abb"))
    small.uns["d_colors"] = ["r"]  # wrong length: left out of views
    v = small[2:]
    assert list(v.obs["c"].cat.categories) == ["b"]
    assert list(v.uns["c_colors"]) == ["blue"]
    assert "d_colors" not in v.uns
    assert list(small.uns["c_colors"]) == ["red", "blue"] and small.uns["d_colors"] == ["r"]
    assert list(small.obs["c"].cat.categories) == ["a", "b"]
    with settings.override(remove_unused_categories=False):
        assert list(small[2:].obs["c"].cat.categories) == ["a", "b"]


def test_view_raw(small):
    small.raw = small
    v = small[[2, 0], :2]
    assert v.raw.shape == (2, 4)
    np.testing.assert_array_equal(v.raw.X, small.X[[2, 0]])
    assert list(v.raw.obs_names) == ["z", "x"]


def test_view_copy_matches_manual_subset(rich):
    idx = np.array([5, 1, 7])
    v = rich[idx, 2:8]
    c = v.copy()
    np.testing.assert_array_equal(
        c.X.toarray() if sparse.issparse(c.X) else c.X,
        (rich.X.toarray() if sparse.issparse(rich.X) else rich.X)[idx][:, 2:8],
    )
    pd.testing.assert_frame_equal(c.obs, rich.obs.iloc[idx], check_categorical=False)
    expected = rich.obsm["df"].iloc[idx].copy()
    for col in expected.select_dtypes("category"):  # views drop unused categories (as anndata)
        expected[col] = expected[col].cat.remove_unused_categories()
    pd.testing.assert_frame_equal(c.obsm["df"], expected)
    assert c.obsp["sparse"].shape == (3, 3) and c.varp["array"].shape == (6, 6)
    assert_equal(v, c)


def test_dictview_mapping_api(small):
    v = small[:1]
    assert set(v.uns) == {"u", "c_colors"} and len(v.uns) == 2 and "u" in v.uns
    assert isinstance(v.uns["u"], DictView)
    d = v.uns.copy()
    assert type(d) is dict and type(d["u"]) is dict
    with pytest.raises(KeyError):
        del v.uns["missing"]
    assert v.is_view
