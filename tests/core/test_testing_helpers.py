"""annio.testing: assert_equal reports the differing element path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio.testing import assert_equal, gen_adata


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda a: a.X.__setitem__((0, 0), -1), "/X"),
        (lambda a: a.obs.__setitem__("int64", 0), "/obs/int64"),
        (lambda a: a.obsm["array"].__setitem__((1, 1), 9), "/obsm/array"),
        (lambda a: a.obsm.__delitem__("df"), "/obsm"),
        (lambda a: a.layers["sparse"].__setitem__((0, 0), 7), "/layers/sparse"),
        (lambda a: a.uns["nested"]["deeper"].__setitem__("str", "z"), "/uns/nested/deeper/str"),
        (lambda a: a.uns.__setitem__("none", 1), "/uns/none"),
        (lambda a: setattr(a, "obs_names", [f"n{i}" for i in range(a.n_obs)]), "/obs_names"),
        (lambda a: a.raw.var.__setitem__("raw_only", -1), "/raw/var/raw_only"),
    ],
)
def test_reports_path(mutate, path):
    a = gen_adata((6, 4), raw=True)
    b = a.copy()
    mutate(b)
    with pytest.raises(AssertionError, match=f"^{path}[: ]"):
        assert_equal(a, b)


def test_exact_vs_loose():
    x = np.arange(6).reshape(2, 3)
    assert_equal(x, sparse.csr_matrix(x))
    with pytest.raises(AssertionError, match="array kinds differ"):
        assert_equal(x, sparse.csr_matrix(x), exact=True)
    assert_equal(x, x.astype(float))
    with pytest.raises(AssertionError, match="dtypes differ"):
        assert_equal(x, x.astype(float), exact=True)
    s_obj = pd.DataFrame({"a": np.array(["x", "y"], dtype=object)})
    s_str = pd.DataFrame({"a": pd.array(["x", "y"], dtype="string")})
    assert_equal(s_obj, s_str)
    with pytest.raises(AssertionError, match="dtypes differ"):
        assert_equal(s_obj, s_str, exact=True)


def test_scalars_and_none():
    assert_equal(np.int64(3), 3)
    assert_equal(float("nan"), np.nan)
    assert_equal(None, None)
    with pytest.raises(AssertionError, match="one value is None"):
        assert_equal(None, 0)
    with pytest.raises(AssertionError):
        assert_equal("a", "b")
    assert_equal(np.array(["a", "b"]), np.array(["a", "b"], dtype=object))


def test_categoricals_compared_by_values():
    a = pd.Series(pd.Categorical(["a", "b"], categories=["a", "b"]))
    b = pd.Series(pd.Categorical(["a", "b"], categories=["b", "a"]))
    with pytest.raises(AssertionError, match="categories"):
        assert_equal(a, b)


def test_dask_arrays_computed():
    da = pytest.importorskip("dask.array")
    x = np.arange(6.0).reshape(2, 3)
    assert_equal(da.from_array(x), x)
    with pytest.raises(AssertionError, match="values differ"):
        assert_equal(da.from_array(x + 1), x)
