"""Aligned mappings: obsm/varm, obsp/varp, layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio._core import AnnData
from annio._core.aligned import AxisArrays, Layers, PairwiseArrays
from annio.errors import ImplicitModificationWarning

X = np.zeros((3, 4))


@pytest.fixture
def a() -> AnnData:
    return AnnData(X, obs=pd.DataFrame(index=list("xyz")))


def test_types_and_plain_values(a):
    a.obsm["m"] = np.ones((3, 2))
    assert isinstance(a.obsm, AxisArrays) and isinstance(a.obsp, PairwiseArrays) and isinstance(a.layers, Layers)
    d = dict(a.obsm)
    assert type(d["m"]) is np.ndarray and d["m"] is a.obsm["m"]


@pytest.mark.parametrize(
    ("attr", "value", "dims", "had", "want"),
    [
        ("obsm", np.zeros((2, 2)), "('obs',)", "(2,)", "(3,)"),
        ("varm", np.zeros((3, 2)), "('var',)", "(3,)", "(4,)"),
        ("obsp", np.zeros((3, 2)), "('obs', 'obs')", "(3, 2)", "(3, 3)"),
        ("varp", np.zeros((4, 3)), "('var', 'var')", "(4, 3)", "(4, 4)"),
        ("layers", np.zeros((3, 2)), "('obs', 'var')", "(3, 2)", "(3, 4)"),
    ],
)
def test_shape_errors(a, attr, value, dims, had, want):
    msg = (
        f"Value passed for key 'k' is of incorrect shape. Values of {attr} must match dimensions "
        f"{dims} of parent. Value had shape {had} while it should have had {want}."
    )
    with pytest.raises(ValueError) as err:
        getattr(a, attr)["k"] = value
    assert str(err.value) == msg
    assert "k" not in getattr(a, attr)


@pytest.mark.parametrize("attr", ["obsm", "varm", "obsp", "varp", "layers"])
def test_slash_rejected(a, attr):
    with pytest.raises(ValueError, match=f"Forward slashes are not allowed in keys in {attr}"):
        getattr(a, attr)["a/b"] = np.zeros((3, 3))


def test_one_d_reshaped(a):
    a.obsm["v"] = np.arange(3)
    a.varm["w"] = np.arange(4)
    assert a.obsm["v"].shape == (3, 1) and a.varm["w"].shape == (4, 1)


def test_matrix_warns(a):
    with pytest.warns(ImplicitModificationWarning, match="Layer 'l' should not be a np.matrix, use np.ndarray instead."):
        a.layers["l"] = np.matrix(X)
    with pytest.warns(ImplicitModificationWarning, match="Obsm 'm' should not be a np.matrix"):
        a.obsm["m"] = np.matrix(np.zeros((3, 2)))
    assert type(a.layers["l"]) is np.ndarray and type(a.obsm["m"]) is np.ndarray


@pytest.mark.parametrize(
    ("value", "kind"), [(sparse.coo_matrix(np.eye(3)), "matrices"), (sparse.coo_array(np.eye(3)), "arrays")]
)
def test_non_csr_csc_rejected(a, value, kind):
    with pytest.raises(ValueError, match=f"Only CSR and CSC {kind} are supported."):
        a.obsp["p"] = value


def test_sparse_accepted(a):
    a.obsp["p"] = sparse.csr_array(np.eye(3))
    a.layers["s"] = sparse.csc_matrix(X)
    assert a.obsp["p"].format == "csr" and a.layers["s"].format == "csc"


def test_dataframe_values(a):
    df = pd.DataFrame({"q": [1, 2, 3]}, index=list("xyz"))
    a.obsm["df"] = df
    assert a.obsm["df"] is df
    with pytest.raises(ValueError, match="value.index does not match parent’s obs names"):
        a.obsm["bad"] = pd.DataFrame({"q": [1, 2, 3]}, index=list("zyx"))
    a.layers["df"] = pd.DataFrame(X, index=list("xyz"))  # as anndata: the values are kept
    assert type(a.layers["df"]) is np.ndarray and np.array_equal(a.layers["df"], X)
    named = pd.DataFrame({"q": [1, 2, 3]}, index=pd.Index(list("xyz"), name="cell"))
    a.obsm["named"] = named
    assert a.obsm["named"].index.name is None and named.index.name == "cell"


def test_setters_and_delete(a):
    a.obsm = {"m": np.ones((3, 1))}
    assert list(a.obsm) == ["m"]
    del a.obsm["m"]
    assert len(a.obsm) == 0
    with pytest.raises(ValueError):
        a.obsm = {"bad": np.ones((2, 1))}
    a.layers = {None: a.X, "l": X}
    with pytest.warns(FutureWarning, match="`del adata.layers` currently keeps `.X`"):
        del a.layers
    assert list(a.layers) == [None] and not a.layers and a.X is not None  # anndata 0.13: X is layers[None]
    with pytest.warns(FutureWarning, match="Assigning to `.layers` without a `None` key"):
        a.layers = {"l": X}
    a.layers = {None: None, "l": X}
    assert a.X is None and list(a.layers) == ["l"]


def test_layers_none_is_X(a):
    assert a.layers[None] is a.X
    a.layers[None] = np.ones((3, 4))
    assert a.X.sum() == 12
    assert list(a.layers) == [None] and len(a.layers) == 1 and None in a.layers  # anndata 0.13
    v = a[:1]
    np.testing.assert_array_equal(v.layers[None], np.ones((1, 4)))
    assert list(v.layers) == [None]
    with pytest.warns(FutureWarning, match="keeps `.X`"):
        a.layers.clear()
    assert a.X is not None
    a.layers.clear(keep_x=False)
    assert a.X is None and list(a.layers) == [] and None not in a.layers
    with pytest.raises(KeyError):
        a.layers[None]


def test_repr_and_copy(a):
    a.obsm["m"] = np.ones((3, 1))
    assert repr(a.obsm) == "AxisArrays with keys: 'm'"
    assert repr(a[:1].layers) == "LayersView with keys: None"
    c = a.obsm.copy()
    assert type(c) is dict
    c["m"][0, 0] = 5
    assert a.obsm["m"][0, 0] == 1


def test_unsupported_value_rejected(a):
    with pytest.raises(ValueError, match="needs to be of one of"):
        a.obsm["x"] = "string"
    a.obsm["lst"] = [[1], [2], [3]]
    assert isinstance(a.obsm["lst"], np.ndarray)
