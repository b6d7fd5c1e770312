"""annio ↔ anndata conversions: zero-copy (shared buffers checked) and exact both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bridge_helpers import assert_all_shared, full_adata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annio
from annio.testing import assert_equal

ad = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop

X_TYPES = ["array", "csr", "csc", "csr_array", "csc_array"]


@pytest.mark.parametrize("X_type", X_TYPES)
def test_to_anndata_shares_every_buffer(X_type):
    a = full_adata(X_type=X_type)
    b = a.to_anndata()
    assert type(b) is ad.AnnData
    assert_all_shared(a, b)
    assert b.X is a.X
    assert b.obsm["awk"] is a.obsm["awk"]
    assert b.uns["nested"]["array"] is a.uns["nested"]["array"]
    assert_equal(a, b, exact=True)


@pytest.mark.parametrize("X_type", X_TYPES)
def test_from_anndata_shares_every_buffer(X_type):
    b = full_adata(ad.AnnData, X_type=X_type)
    for a in (annio.AnnData.from_anndata(b), annio.AnnData(b)):
        assert type(a) is annio.AnnData
        assert not a.is_view
        assert_all_shared(b, a)
        assert a.X is b.X
        assert_equal(b, a, exact=True)


def test_containers_are_new_but_arrays_shared():
    a = full_adata()
    b = a.to_anndata()
    b.obs["added"] = 1  # a new column on one side only
    b.uns["added"] = 1
    b.uns["nested"]["added"] = 1
    b.obsm["added"] = np.zeros((a.n_obs, 1))
    assert "added" not in a.obs and "added" not in a.uns and "added" not in a.uns["nested"]
    assert "added" not in a.obsm
    b.obsm["array"][0, 0] = 123.0  # writing into a shared buffer is seen by both
    assert a.obsm["array"][0, 0] == 123.0
    c = annio.AnnData.from_anndata(b)
    c.var["added"] = 2
    assert "added" not in b.var


@pytest.mark.parametrize("X_type", [*X_TYPES, None])
def test_round_trips_are_exact(X_type):
    a = full_adata(X_type=X_type)
    assert_equal(a, annio.AnnData.from_anndata(a.to_anndata()), exact=True)
    b = full_adata(ad.AnnData, X_type=X_type)
    back = annio.AnnData.from_anndata(b).to_anndata()
    assert type(back) is ad.AnnData
    assert_equal(b, back, exact=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    n_obs=st.integers(0, 12),
    n_vars=st.integers(0, 9),
    X_type=st.sampled_from([*X_TYPES, "dask", None]),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]),
    full=st.booleans(),
    raw=st.booleans(),
)
def test_round_trips_property(seed, n_obs, n_vars, X_type, dtype, full, raw):
    from annio.testing import gen_adata

    kwargs = dict(seed=seed, X_type=X_type, X_dtype=dtype, full_annotation=full, raw=raw)
    a = gen_adata((n_obs, n_vars), **kwargs)
    b = a.to_anndata()
    assert_equal(a, b, exact=True)
    assert_equal(a, annio.AnnData.from_anndata(b), exact=True)
    c = gen_adata((n_obs, n_vars), anndata_class=ad.AnnData, **kwargs)
    assert_equal(c, annio.AnnData.from_anndata(c).to_anndata(), exact=True)


def test_nested_anndata_in_uns_converts():
    inner = full_adata(shape=(4, 3))
    a = annio.AnnData(np.ones((2, 2)), uns={"inner": inner, "deep": {"inner": inner}})
    b = a.to_anndata()
    assert type(b.uns["inner"]) is ad.AnnData and type(b.uns["deep"]["inner"]) is ad.AnnData
    assert b.uns["inner"].X is inner.X
    back = annio.AnnData.from_anndata(b)
    assert type(back.uns["inner"]) is annio.AnnData
    assert_equal(a, back, exact=True)


# -- views ------------------------------------------------------------------------
INDEXES = [
    (slice(3, 17), slice(None)),
    (slice(None), [1, 4, 5]),
    (np.arange(30) % 3 == 0, slice(2, 9)),
    ([5, 2, 9], np.array([0, 3, 7])),
    ("cell4", slice(None)),
]


@pytest.mark.parametrize("index", INDEXES, ids=range(len(INDEXES)))
def test_view_converts_to_anndatas_view(index):
    a = full_adata()
    view = a[index]
    b = view.to_anndata()
    assert b.is_view
    parent = a.to_anndata()
    reference = parent[index]  # what anndata gives for the same view
    assert_equal(b, reference, exact=True)
    assert_equal(view, b, exact=True)
    assert b._adata_ref.X is a.X  # a view of the shared parent, no copy
    assert_equal(view.copy(), b.copy(), exact=True)


@pytest.mark.parametrize("index", INDEXES, ids=range(len(INDEXES)))
def test_anndata_view_converts_to_annio_view(index):
    b = full_adata(ad.AnnData)
    view = b[index]
    a = annio.AnnData.from_anndata(view)
    assert a.is_view
    assert a._adata_ref.X is b.X
    assert_equal(view, a, exact=True)
    actual = annio.AnnData(view)  # the constructor gives an actual object
    assert not actual.is_view
    assert_equal(view, actual, exact=True)


def test_view_of_view_and_unused_categories():
    a = full_adata()
    view = a[a.obs["obs_cat"] == "alpha"][:, 2:5]
    b = view.to_anndata()
    assert list(b.obs["obs_cat"].cat.categories) == list(view.obs["obs_cat"].cat.categories) == ["alpha"]
    assert_equal(view, b, exact=True)


# -- errors and the constructor ------------------------------------------------------
def test_constructor_rejects_extra_arguments():
    b = full_adata(ad.AnnData)
    with pytest.raises(ValueError, match="no further arguments"):
        annio.AnnData(b, obs=b.obs)


def test_from_anndata_rejects_other_objects():
    with pytest.raises(TypeError, match="expected an anndata.AnnData"):
        annio.AnnData.from_anndata(np.zeros((2, 2)))


def test_subclass_from_anndata():
    class MyAnnData(annio.AnnData):
        pass

    b = full_adata(ad.AnnData)
    assert type(MyAnnData.from_anndata(b)) is MyAnnData
    assert type(MyAnnData(b)) is MyAnnData


def test_anndata_subclass_is_detected():
    class Sub(ad.AnnData):
        pass

    b = Sub(X=np.arange(6.0).reshape(2, 3))
    a = annio.AnnData(b)
    assert a.X is b.X


def test_nullable_and_categorical_columns_survive_both_ways():
    obs = pd.DataFrame(
        {
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "string": pd.array(["a", None, "c"], dtype="string"),
            "cat": pd.Categorical(["x", None, "y"], categories=["y", "x"], ordered=True),
        },
        index=["a", "b", "c"],
    )
    a = annio.AnnData(np.ones((3, 2)), obs=obs)
    b = a.to_anndata()
    for col in obs:
        assert b.obs[col].dtype == obs[col].dtype
    assert_equal(a, annio.AnnData(b), exact=True)


def test_duplicate_names_still_warn_in_anndata():
    with pytest.warns(UserWarning, match="not unique"):
        a = annio.AnnData(np.ones((2, 2)), obs=pd.DataFrame(index=["a", "a"]))
    with pytest.warns(UserWarning, match="not unique"):
        b = a.to_anndata()
    assert list(b.obs_names) == ["a", "a"]
