"""Behaviours anndata users rely on (issue 11, item 7), each compared with real anndata."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import sparse

import annio
from annio.errors import ImplicitModificationWarning
from annio.experimental import read_elem_lazy, read_lazy

ad = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop

X = np.arange(12.0).reshape(4, 3)


def _anndata_minor() -> tuple[int, int]:
    from importlib.metadata import version

    major, minor = version("anndata").split(".")[:2]
    return int(major), int(minor)


# anndata 0.13 dropped two 0.12 behaviours that annio keeps (README "Differences"):
# `copy_on_write_X=False` writing through a view, and item assignment on backed sparse X.
# Against 0.13 those tests check that anndata really dropped them and compare annio with
# the 0.12 result computed independently with numpy.
ANNDATA_013 = _anndata_minor() >= (0, 13)


def both(func):
    """``func(anndata)`` and ``func(annio)``, anndata's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = func(ad)
    return theirs, func(annio)


def test_row_names_and_col_names_set_the_index():
    def make(lib):
        a = lib.AnnData(X, obs=dict(row_names=list("abcd"), k=[1, 2, 3, 4]), var=dict(col_names=list("xyz")))
        return a.obs_names.tolist(), a.obs.columns.tolist(), a.var_names.tolist(), a.var.columns.tolist()

    theirs, ours = both(make)
    assert ours == theirs == (list("abcd"), ["k"], list("xyz"), [])


def test_obs_names_key_wins_over_row_names_and_scalars_broadcast():
    def make(lib):
        a = lib.AnnData(X, obs=dict(row_names=list("abcd"), obs_names=list("wxyz"), s=1))
        return a.obs_names.tolist(), a.obs.columns.tolist(), a.obs["s"].tolist()

    theirs, ours = both(make)
    assert ours == theirs


def test_empty_dicts_for_obs_and_var():
    theirs, ours = both(lambda lib: (lib.AnnData(X, {}, {}).shape, lib.AnnData(X, {}, {}).obs_names.tolist()))
    assert ours == theirs == ((4, 3), ["0", "1", "2", "3"])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(obsm={"p": np.ones((5, 2))}),
        dict(varm={"p": np.ones((5, 2))}),
        dict(obsp={"p": np.ones((5, 5))}),
        dict(varp={"p": np.ones((2, 2))}),
        dict(layers={"l": np.ones((5, 2))}),
        dict(obsm={"p": np.ones((5, 2))}, varm={"q": np.ones((3, 2))}),
    ],
)
def test_shape_without_X_comes_from_the_annotations(kwargs):
    theirs, ours = both(lambda lib: lib.AnnData(**kwargs).shape)
    assert ours == theirs


def test_obs_names_from_a_series_named_0():
    def make(lib):
        a = lib.AnnData(X)
        a.obs_names = pd.Series(list("abcd"), name=0)
        b = lib.AnnData(X, obs=pd.DataFrame(index=pd.Series(list("abcd"), name=0)))
        return a.obs_names.tolist(), a.obs_names.name, b.obs_names.tolist(), b.obs_names.name

    theirs, ours = both(make)
    assert ours == theirs


@pytest.mark.parametrize(
    "value",
    [pd.DataFrame(X, index=list("wxyz")), np.matrix(X), da.from_array(X), sparse.csr_array(X), np.ma.masked_array(X)],
    ids=["dataframe", "matrix", "dask", "csr_array", "masked"],
)
def test_layers_accept_what_anndata_accepts(value):
    def make(lib):
        layer = lib.AnnData(X, layers={"l": value}).layers["l"]
        return type(layer).__name__, np.asarray(layer.toarray() if hasattr(layer, "toarray") else layer).tolist()

    theirs, ours = both(make)
    assert ours == theirs


def test_coo_layers_are_refused_like_anndata():
    for lib in (ad, annio):
        with pytest.raises(ValueError, match="Only CSR and CSC"):
            lib.AnnData(X, layers={"l": sparse.coo_matrix(X)})


def test_settings_of_anndata_exist():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(type(ad.settings), "model_fields"):  # 0.13: a pydantic settings model
            names = list(type(ad.settings).model_fields)
        else:
            names = [line.split("=")[0].strip() for line in repr(ad.settings).splitlines()[1:] if "=" in line]
    assert names, "could not list anndata's settings"
    for name in names:
        assert hasattr(annio.settings, name), name
    assert annio.settings.copy_on_write_X is True  # anndata 0.13's default


@pytest.mark.parametrize("dense", [True, False])
def test_copy_on_write_X_false_writes_into_the_parent(dense):
    def make(lib):
        matrix = X.copy() if dense else sparse.csr_matrix(X)
        a = lib.AnnData(matrix)
        view = a[[0, 2], 1:]
        with lib.settings.override(copy_on_write_X=False), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            view.X = np.full((2, 2), 7.0)
        categories = sorted({w.category.__name__ for w in caught if w.category is not sparse.SparseEfficiencyWarning})
        full = a.X.toarray() if sparse.issparse(a.X) else a.X
        return view.is_view, full.tolist(), categories

    theirs, ours = both(make)
    if ANNDATA_013:
        expected = X.copy()
        expected[np.ix_([0, 2], [1, 2])] = 7.0
        assert theirs[0] is False  # 0.13 copies the view whatever the setting says
        assert ours == (True, expected.tolist(), ["FutureWarning", "ImplicitModificationWarning"])
    else:
        assert ours == theirs


def test_copy_on_write_X_true_copies_the_view():
    a = annio.AnnData(X.copy())
    view = a[[0, 2], 1:]
    with pytest.warns(ImplicitModificationWarning):
        view.X = np.full((2, 2), 7.0)
    assert not view.is_view and a.X[0, 1] == 1.0


def test_aligned_mappings_and_views_expose_anndata_attributes():
    def make(lib):
        a = lib.AnnData(X, obsm={"a": X, "b": np.ones((4, 1))}, obsp={"p": np.ones((4, 4))}, layers={"l": X})
        v = a[[0, 2], 1:]
        out = [a.obsm.axes, a.varm.axes, a.obsp.axes, a.layers.axes, a.obsm.parent is a, a.obsm.is_view]
        out += [a.obsm.dim, a.obsp.dim, a.varm.dim, a.obsm.attrname, a.obsm.dim_names.tolist()]
        out += [v.obsm.axes, v.layers.axes, v.obsm.is_view, v.obsm.parent is v, v.obsm.dim, v.obsm.dim_names.tolist()]
        out += [type(v.obsm.parent_mapping).__name__, [np.arange(n)[i].tolist() for i, n in zip(v.layers.subset_idx, a.shape, strict=True)]]
        out += [a.obsm.to_df().columns.tolist(), a.obsm.to_df().values.tolist()]
        return out

    theirs, ours = both(make)
    assert ours == theirs


def test_view_to_df_keeps_the_values():
    # anndata 0.12 gives NaN here (the subset values meet the parent's index); annio keeps them
    a = annio.AnnData(X, obsm={"a": X})
    df = a[[1, 3]].obsm.to_df()
    assert df.index.tolist() == ["1", "3"] and df.values.tolist() == [X[1].tolist(), X[3].tolist()]


def test_transpose_shares_uns_and_raw_shares_X():
    def make(lib):
        a = lib.AnnData(X.copy(), uns={"k": 1})
        same_uns = a.T.uns is a.uns
        a.raw = a
        b = lib.AnnData(sparse.csr_matrix(X))
        b.raw = b
        return same_uns, a.raw.X is a.X, b.raw.X is b.X, a.raw.var is a.var

    theirs, ours = both(make)
    assert ours == theirs == (True, True, True, False)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_dataframe_index_in_uns_reads_back_as_written(fmt, tmp_path):
    def make(lib):
        a = lib.AnnData(X, uns={"ints": pd.DataFrame({"x": [1, 2]}, index=[10, 20]),
                                "floats": pd.DataFrame({"x": [1, 2]}, index=[1.5, 2.5])})
        path = tmp_path / f"{lib.__name__}.{fmt}"
        getattr(a, f"write_{fmt}")(path)
        b = getattr(lib, f"read_{fmt}")(path)
        return [(b.uns[k].index.tolist(), str(b.uns[k].index.dtype)) for k in ("ints", "floats")]

    theirs, ours = both(make)
    assert ours == theirs


def test_write_elem_keeps_a_numeric_index(tmp_path):
    def make(lib):
        group = zarr.open_group(tmp_path / f"{lib.__name__}.zarr", mode="w")
        lib.io.write_elem(group, "df", pd.DataFrame({"x": [1, 2]}, index=pd.Index([3, 7], name="n")))
        back = lib.io.read_elem(group["df"])
        return back.index.tolist(), str(back.index.dtype), back.index.name

    theirs, ours = both(make)
    assert ours == theirs


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_categorical_obs_names_come_back_categorical(fmt, tmp_path):
    def make(lib):
        a = lib.AnnData(X, obs=pd.DataFrame(index=pd.CategoricalIndex(list("abcd"))))
        path = tmp_path / f"{lib.__name__}.{fmt}"
        getattr(a, f"write_{fmt}")(path)
        b = getattr(lib, f"read_{fmt}")(path)
        return type(a.obs_names).__name__, type(b.obs_names).__name__, b.obs_names.tolist()

    theirs, ours = both(make)
    assert ours == theirs


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("lazy")
    a = ad.AnnData(sparse.random(40, 30, density=0.3, format="csr", random_state=1), layers={"d": np.ones((40, 30))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_zarr(root / "v2.zarr")
        with ad.settings.override(zarr_write_format=3, auto_shard_zarr_v3=True):
            a.write_zarr(root / "v3.zarr")
    return root


def test_integer_chunks_on_zarr(stores):
    # anndata 0.12 fails on an int (TypeError); annio reads it as dask does: that length per axis
    group = zarr.open_group(stores / "v2.zarr")
    assert read_elem_lazy(group["layers/d"], chunks=10).chunks == ((10,) * 4, (10,) * 3)
    X = read_elem_lazy(group["X"], chunks=10)
    assert X.chunks == ((10,) * 4, (30,))
    np.testing.assert_array_equal(X.compute().toarray(), annio.io.read_elem(group["X"]).toarray())


def test_chunks_none_on_sharded_zarr_v3_follows_anndata(stores):
    group = zarr.open_group(stores / "v3.zarr")

    def chunks(lib):
        return lib.experimental.read_elem_lazy(group["layers/d"]).chunks, lib.experimental.read_elem_lazy(group["X"]).chunks

    theirs, ours = both(chunks)
    assert ours == theirs


def test_lazy_anndata_accepts_an_xarray_mask(stores):
    xr = pytest.importorskip("xarray")

    def sub(lib):
        lazy = lib.experimental.read_lazy(stores / "v2.zarr")
        mask = xr.DataArray(np.arange(40) % 2 == 0)
        return lazy[mask].shape, lazy[mask, xr.DataArray(np.arange(30) < 5)].shape

    theirs, ours = both(sub)
    assert ours == theirs == ((20, 30), (20, 5))
    lazy = read_lazy(stores / "v2.zarr")
    mask = xr.DataArray(np.arange(40) % 3 == 0)
    np.testing.assert_array_equal(lazy[mask].to_memory().X.toarray(), annio.read_zarr(stores / "v2.zarr").X[::3].toarray())


def test_backed_file_is_closed_after_write(tmp_path):
    def run(lib):
        path = tmp_path / f"{lib.__name__}.h5ad"
        lib.AnnData(X).write_h5ad(path)
        b = lib.read_h5ad(path, backed="r+")
        b.obs["k"] = 1
        b.write()
        return b.file.is_open, lib.read_h5ad(path).obs.columns.tolist()

    theirs, ours = both(run)
    assert ours == theirs == (False, ["k"])


def test_transpose_of_backed_X_raises(tmp_path):
    for lib in (ad, annio):
        path = tmp_path / f"{lib.__name__}.h5ad"
        lib.AnnData(X).write_h5ad(path)
        b = lib.read_h5ad(path, backed="r")
        with pytest.raises(ValueError, match="(?i)transpose"):
            b.T
        b.file.close()


def test_item_assignment_on_backed_sparse_X(tmp_path):
    def run(lib):
        path = tmp_path / f"{lib.__name__}.h5ad"
        lib.AnnData(sparse.csr_matrix(np.eye(4, 3) + np.eye(4, 3, k=1))).write_h5ad(path)
        b = lib.read_h5ad(path, backed="r+")
        if lib is ad and ANNDATA_013:
            with pytest.raises(TypeError, match="item assignment"):  # 0.13: backed sparse is read-only
                b.X[1, 1] = 100.0
            b.file.close()
            expected = np.eye(4, 3) + np.eye(4, 3, k=1)
            expected[1, 1], expected[0, 1] = 100.0, 50.0
            return expected.tolist(), True
        b.X[1, 1] = 100.0
        b.X[0, 1] = 50.0
        try:
            b.X[0, 2] = 1.0
            structural = "allowed"
        except ValueError as err:
            structural = "sparsity structure" in str(err)
        b.file.close()
        return lib.read_h5ad(path).X.toarray().tolist(), structural

    theirs, ours = both(run)
    assert ours == theirs
