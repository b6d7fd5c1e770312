"""The AnnData class: construction, validation, names, setters, conversions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annio._core import AnnData
from annio.errors import ImplicitModificationWarning
from annio.settings import settings
from annio.testing import assert_equal, gen_adata

X = np.arange(12, dtype=float).reshape(3, 4)


def test_defaults_and_shape():
    a = AnnData(X)
    assert a.shape == (3, 4) and a.n_obs == 3 and a.n_vars == 4 and len(a) == 3
    assert list(a.obs_names) == ["0", "1", "2"] and list(a.var_names) == ["0", "1", "2", "3"]
    assert not a.is_view and not a.isbacked and a.filename is None
    assert a.uns == {} and dict(a.obsm) == {} and a.raw is None


def test_empty_and_shape_only():
    assert AnnData().shape == (0, 0)
    a = AnnData(shape=(2, 3))
    assert a.X is None and a.shape == (2, 3) and list(a.obs_names) == ["0", "1"]


def test_shape_with_X_rejected():
    with pytest.raises(ValueError, match="`shape` needs to be `None` if `X` is not `None`."):
        AnnData(X, shape=(3, 4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"obs": pd.DataFrame(index=list("xy"))}, r"`obs` must have as many rows as `X` has rows \(3\), but has 2 rows"),
        ({"var": pd.DataFrame(index=list("xy"))}, r"`var` must have as many rows as `X` has columns \(4\), but has 2"),
    ],
)
def test_dim_mismatch(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnnData(X, **kwargs)


@pytest.mark.parametrize("cls", [sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array, sparse.csc_array])
def test_sparse_X_kept(cls):
    a = AnnData(cls(X))
    assert type(a.X) is cls


def test_coo_rejected():
    with pytest.raises(ValueError, match="Only CSR and CSC matrices are supported."):
        AnnData(sparse.coo_matrix(X))


def test_matrix_converted_with_warning():
    with pytest.warns(ImplicitModificationWarning, match="X should not be a np.matrix"):
        a = AnnData(np.matrix(X))
    assert type(a.X) is np.ndarray


def test_1d_X_rejected():
    # anndata 0.13's message (0.12: "X needs to be 2-dimensional, not 1-dimensional.")
    with pytest.raises(ValueError, match=r"not enough values to unpack \(expected 2, got 1\)"):
        AnnData(np.zeros(3))


def test_3d_X_warns():
    with pytest.warns(UserWarning, match=r"X must be 2-dimensional, but got an array with shape \(3, 4, 2\)"):
        a = AnnData(np.zeros((3, 4, 2)))
    assert a.shape == (3, 4)


def test_list_X_rejected():
    with pytest.raises(ValueError, match="X needs to be of one of"):
        AnnData([[1, 2], [3, 4]])


def test_dask_X():
    da = pytest.importorskip("dask.array")
    a = AnnData(da.from_array(X, chunks=2))
    v = a[[0, 2], 1:]
    np.testing.assert_array_equal(v.X.compute(), X[[0, 2], 1:])


def test_dataframe_X_gives_names():
    df = pd.DataFrame(X, index=list("abc"), columns=list("ABCD"))
    a = AnnData(df)
    assert list(a.obs_names) == list("abc") and list(a.var_names) == list("ABCD")
    np.testing.assert_array_equal(a.X, X)


def test_obs_dict_and_names_key():
    a = AnnData(X, obs={"q": [1, 2, 3]})
    assert list(a.obs["q"]) == [1, 2, 3] and list(a.obs_names) == ["0", "1", "2"]
    b = AnnData(X, obs={"obs_names": ["a", "b", "c"]})
    assert list(b.obs_names) == ["a", "b", "c"] and b.obs.shape == (3, 0)


def test_int_index_transformed_with_warning():
    obs = pd.DataFrame({"v": [1, 2, 3]}, index=[10, 20, 30])
    with pytest.warns(ImplicitModificationWarning, match="Transforming to str index."):
        a = AnnData(X, obs=obs)
    assert list(a.obs_names) == ["10", "20", "30"]
    assert list(obs.index) == [10, 20, 30], "caller's frame must not be mutated"


def test_multiindex_rejected():
    idx = pd.MultiIndex.from_arrays([list("abc"), [1, 2, 3]])
    with pytest.raises(ValueError, match="MultiIndex not supported"):
        AnnData(X, obs=pd.DataFrame(index=idx))


@pytest.mark.parametrize(("attr", "label"), [("obs", "Observation"), ("var", "Variable")])
def test_duplicate_names_warn(attr, label):
    n = 3 if attr == "obs" else 4
    df = pd.DataFrame(index=["a"] * n)
    with pytest.warns(UserWarning, match=f"{label} names are not unique. To make them unique, call `.{attr}_names_make_unique`."):
        AnnData(X, **{attr: df})
    with settings.override(check_uniqueness=False), warnings.catch_warnings():
        warnings.simplefilter("error")
        AnnData(X, **{attr: df})


def test_lazy_frame_accepted_unchanged():
    class LazyFrame:
        _annio_lazy_frame = True

        def __init__(self, index):
            self.index = pd.Index(index)
            self.columns = pd.Index(["a"])
            self.shape = (len(index), 1)

        @property
        def iloc(self):
            return self

        def __getitem__(self, idx):
            return LazyFrame(self.index[idx])

    lazy = LazyFrame(list("xyz"))
    a = AnnData(X, obs=lazy)
    assert a.obs is lazy and a.n_obs == 3 and list(a.obs_names) == list("xyz")
    assert list(a[1:].obs_names) == ["y", "z"]


def test_X_setter_validates_shape():
    a = AnnData(X)
    # anndata 0.13 reshapes a mismatched X (with a FutureWarning); 0.12 raised "Data matrix has wrong shape"
    with pytest.warns(FutureWarning, match="Automatic reshaping"), pytest.raises(ValueError, match="cannot reshape"):
        a.X = np.zeros((2, 2))
    with pytest.warns(FutureWarning, match="Automatic reshaping"):
        a.X = np.arange(12.0).reshape(4, 3)
    assert a.X.shape == (3, 4)
    with pytest.raises(ValueError, match="Automatic reshaping is only supported for 2-D inputs"):
        a.X = np.zeros((2, 2, 3))
    a.X = sparse.csr_matrix(X)
    assert sparse.issparse(a.X)
    a.X = None
    assert a.X is None and a.shape == (3, 4)
    b = AnnData(np.zeros((2, 1)))
    with pytest.warns(FutureWarning, match="Automatic reshaping"):
        b.X = np.ones(2)
    assert b.X.shape == (2, 1)


def test_obs_setter_and_names_sync(small):
    small.obsm["df"] = pd.DataFrame({"q": [1, 2, 3]}, index=small.obs_names)
    small.obs_names = ["p", "q", "r"]
    assert list(small.obsm["df"].index) == ["p", "q", "r"]
    small.obs = pd.DataFrame({"new": [1, 2, 3]}, index=list("ijk"))
    assert list(small.obs_names) == list("ijk") and list(small.obsm["df"].index) == list("ijk")
    with pytest.raises(ValueError, match=r"`shape` is inconsistent with `obs` \(2 rows instead of 3\)"):
        small.obs = pd.DataFrame(index=list("ab"))


def test_names_setter_errors(small):
    with pytest.raises(ValueError, match=r"Length of passed value for obs_names is 1, but this AnnData has shape: \(3, 4\)"):
        small.obs_names = ["a"]
    with pytest.raises(ValueError, match="index.name to be a string or None"):
        small.var_names = pd.Index(list("abcd"), name=3)
    with pytest.warns(ImplicitModificationWarning, match="Transforming to str index."):
        small.var_names = [1, 2, 3, 4]
    assert list(small.var_names) == ["1", "2", "3", "4"]


def test_uns_setter(small):
    d = {"a": 1}
    small.uns = d
    assert small.uns is d
    del small.uns
    assert small.uns == {}
    with pytest.raises(ValueError, match="mapping"):
        small.uns = [1]


def test_copy_is_deep(rich):
    c = rich.copy()
    assert_equal(rich, c, exact=True)
    c.obsm["array"][0, 0] = 1e9
    c.obs["int64"] = 0
    c.uns["nested"]["deeper"]["str"] = "changed"
    assert rich.obsm["array"][0, 0] != 1e9
    assert rich.obs["int64"].abs().sum() > 0
    assert rich.uns["nested"]["deeper"]["str"] == "deep"


def test_constructor_from_anndata(small):
    a = AnnData(small)
    assert_equal(a, small)
    with pytest.raises(ValueError, match="no further arguments"):
        AnnData(small, obs=small.obs)


def test_transpose(small):
    small.varm["vm"] = np.ones((4, 2))
    small.raw = small
    t = small.T
    assert t.shape == (4, 3)
    np.testing.assert_array_equal(t.X, X.T)
    assert list(t.obs_names) == list("ABCD") and list(t.var.columns) == ["c", "f"]
    assert list(t.varm) == ["X_pca"] and list(t.obsm) == ["vm"] and list(t.varp) == ["p"]
    np.testing.assert_array_equal(t.layers["l"], X.T * 10)
    assert t.raw is None
    t.var["extra"] = 1
    assert "extra" not in small.obs
    assert type(AnnData(sparse.csr_matrix(X)).T.X) is sparse.csc_matrix


def test_transpose_view_rejected(small):
    with pytest.raises(ValueError, match="transpose a view"):
        small[1:].T


def test_to_df(small, csr):
    df = small.to_df()
    assert list(df.index) == list("xyz") and list(df.columns) == list("ABCD")
    np.testing.assert_array_equal(df.to_numpy(), X)
    np.testing.assert_array_equal(small.to_df(layer="l").to_numpy(), X * 10)
    np.testing.assert_array_equal(AnnData(csr).to_df().to_numpy(), X)
    with pytest.raises(KeyError):
        small.to_df(layer="missing")
    with pytest.raises(ValueError, match="X is None, cannot convert to dataframe."):
        AnnData(shape=(2, 2)).to_df()


def test_obs_var_vector(small):
    np.testing.assert_array_equal(small.obs_vector("B"), X[:, 1])
    np.testing.assert_array_equal(small.obs_vector("f"), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(small.var_vector("y"), X[1])
    np.testing.assert_array_equal(small.var_vector("g"), [1, 2, 3, 4])
    np.testing.assert_array_equal(small.obs_vector("B", layer="l"), X[:, 1] * 10)
    assert list(small.obs_vector("c")) == ["a", "a", "b"]
    with pytest.raises(KeyError, match=r"Could not find key qq in .var_names or .obs.columns."):
        small.obs_vector("qq")
    small.obs["B"] = 0
    with pytest.raises(ValueError, match="could be found in both"):
        small.obs_vector("B")


def test_keys_deprecated(small):
    with pytest.warns(FutureWarning, match="The method obs_keys is deprecated"):
        assert small.obs_keys() == ["c", "f"]
    with pytest.warns(FutureWarning):
        assert small.var_keys() == ["g"]
    with pytest.warns(FutureWarning):
        assert small.obsm_keys() == ["X_pca"]
    with pytest.warns(FutureWarning):
        assert small.uns_keys() == ["u", "c_colors"]


def test_repr(small):
    assert repr(small) == (
        "AnnData object with n_obs × n_vars = 3 × 4\n"
        "    obs: 'c', 'f'\n    var: 'g'\n    uns: 'u', 'c_colors'\n    obsm: 'X_pca'\n"
        "    obsp: 'p'\n    layers: None (.X), 'l'"  # anndata 0.13 order and X as the None layer
    )
    assert repr(small[:2]).startswith("View of AnnData object with n_obs × n_vars = 2 × 4\n")
    assert repr(AnnData()) == "AnnData object with n_obs × n_vars = 0 × 0"


def test_eq_not_implemented(small):
    with pytest.raises(NotImplementedError, match="Equality comparisons are not supported"):
        small == small  # noqa: B015


def test_names_make_unique():
    a = AnnData(np.zeros((4, 2)), obs=pd.DataFrame(index=["a", "a", "a-1", "b"]))
    with pytest.warns(UserWarning, match="Suffix used"):
        a.obs_names_make_unique()
    assert list(a.obs_names) == ["a", "a-2", "a-1", "b"]
    b = AnnData(np.zeros((2, 3)), var=pd.DataFrame(index=["g", "g", "h"]))
    b.var_names_make_unique(join="_")
    assert list(b.var_names) == ["g", "g_1", "h"]


def test_strings_to_categoricals_inplace():
    obs = pd.DataFrame({"s": ["b10", "b2", "b2", "a"], "u": list("abcd"), "n": [1, 2, 3, 4]}, index=list("wxyz"))
    a = AnnData(np.zeros((4, 2)), obs=obs)
    a.strings_to_categoricals()
    assert isinstance(a.obs["s"].dtype, pd.CategoricalDtype)
    assert list(a.obs["s"].cat.categories) == ["a", "b2", "b10"]
    assert not isinstance(a.obs["u"].dtype, pd.CategoricalDtype)
    assert not isinstance(obs["s"].dtype, pd.CategoricalDtype), "caller's frame untouched"
    df = pd.DataFrame({"s": ["x", "x"]})
    a.strings_to_categoricals(df)
    assert isinstance(df["s"].dtype, pd.CategoricalDtype)


def test_to_memory(small):
    m = small.to_memory()
    assert m is not small and np.shares_memory(m.X, small.X)
    c = small.to_memory(copy=True)
    assert not np.shares_memory(c.X, small.X)
    assert_equal(c, small)
    v = small[1:].to_memory()
    assert not v.is_view and v.shape == (2, 4)


def test_file_defaults(small):
    assert small.file.filename is None and not small.file.is_open
    assert repr(small.file) == "Backing file manager: no file is set."
    small.filename = None  # no-op in memory


def test_gen_adata_kinds():
    a = gen_adata((8, 5), X_type="csc", raw=True)
    assert sparse.issparse(a.X) and a.X.format == "csc"
    dtypes = {str(d) for d in a.obs.dtypes}
    assert {"category", "int64", "float64", "bool", "Int64", "boolean", "string"} <= dtypes
    assert isinstance(a.obsm["df"], pd.DataFrame) and sparse.issparse(a.obsm["sparse"])
    assert a.uns["none"] is None and isinstance(a.uns["nested"]["deeper"], dict)
    assert a.raw is not None and "raw_only" in a.raw.var
    assert_equal(gen_adata((8, 5), seed=3), gen_adata((8, 5), seed=3), exact=True)
    with pytest.raises(AssertionError):
        assert_equal(gen_adata((8, 5), seed=3), gen_adata((8, 5), seed=4))
