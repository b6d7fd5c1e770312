"""Raw: X/var/varm of an earlier state, obs from the parent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio._core import AnnData, Raw
from annio.testing import assert_equal


@pytest.fixture
def with_raw(small) -> AnnData:
    small.varm["vm"] = np.arange(8.0).reshape(4, 2)
    small.raw = small
    return small


def test_raw_basics(with_raw):
    r = with_raw.raw
    assert isinstance(r, Raw) and r.shape == (3, 4) and r.n_obs == 3 and r.n_vars == 4
    assert list(r.var_names) == list("ABCD") and list(r.obs_names) == list("xyz")
    assert list(r.varm) == ["vm"] and list(r.var.columns) == ["g"]
    assert len(r) == 3
    assert repr(r) == "Raw AnnData with n_obs × n_vars = 3 × 4\n    var: 'g'\n    varm: 'vm'"


def test_raw_shares_X_like_anndata(with_raw):
    # as anndata: ``adata.raw = adata`` keeps the same X object; replacing X detaches it
    with_raw.X[0, 0] = 123.0
    assert with_raw.raw.X[0, 0] == 123.0
    with_raw.X = np.zeros(with_raw.shape)
    assert with_raw.raw.X[0, 0] == 123.0


def test_raw_survives_var_subset(with_raw):
    sub = with_raw[:, :2].copy()
    assert sub.raw.shape == (3, 4) and sub.shape == (3, 2)


def test_raw_getitem(with_raw):
    r = with_raw.raw[1:, "B"]
    assert isinstance(r, Raw)
    np.testing.assert_array_equal(r.X, [[5.0], [9.0]])
    assert list(r.var_names) == ["B"] and r.varm["vm"].shape == (1, 2)


def test_raw_to_adata(with_raw):
    ad2 = with_raw.raw.to_adata()
    assert isinstance(ad2, AnnData) and list(ad2.obs.columns) == ["c", "f"] and list(ad2.varm) == ["vm"]
    np.testing.assert_array_equal(ad2.X, with_raw.raw.X)


def test_raw_vectors(with_raw):
    np.testing.assert_array_equal(with_raw.raw.obs_vector("B"), [1.0, 5.0, 9.0])
    np.testing.assert_array_equal(with_raw.raw.var_vector("x"), [0.0, 1.0, 2.0, 3.0])


def test_raw_wrong_rows(with_raw):
    with pytest.raises(ValueError, match="X has 2 rows, but n_obs is 3"):
        with_raw.raw = with_raw[:2].copy()


def test_raw_delete_and_none(with_raw):
    del with_raw.raw
    assert with_raw.raw is None


def test_raw_from_raw_and_mapping(with_raw):
    other = AnnData(np.zeros((3, 2)), obs=pd.DataFrame(index=list("xyz")))
    other.raw = with_raw.raw
    assert other.raw.shape == (3, 4)
    assert other.raw._adata is other
    other.raw = {"X": sparse.csr_matrix(np.ones((3, 5))), "var": pd.DataFrame(index=list("abcde"))}
    assert other.raw.n_vars == 5 and sparse.issparse(other.raw.X)


def test_raw_copy_and_in_copy(with_raw):
    c = with_raw.copy()
    assert_equal(c.raw, with_raw.raw)
    c.raw.X[0, 0] = 77
    assert with_raw.raw.X[0, 0] == 0
    rc = with_raw.raw.copy()
    assert_equal(rc, with_raw.raw)


def test_raw_constructor_argument(small):
    a = AnnData(small.X, obs=small.obs, raw=small)
    assert a.raw.shape == small.shape
    assert_equal(a.raw.var, small.var)
