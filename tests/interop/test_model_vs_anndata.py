"""Run the same operations on real anndata and on annio and compare the results."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
import pytest
from packaging.version import Version
from scipy import sparse

import annio._core as an
from annio.testing import assert_equal

ad = pytest.importorskip("anndata")

pytestmark = pytest.mark.interop

# annio follows anndata 0.13 where 0.12 behaved differently. Against anndata 0.12 the reference
# outcome is translated into its 0.13 form below (the comparison itself still runs).
ANNDATA_0_12 = Version(version("anndata")) < Version("0.13")

_ERRORS_0_12_TO_0_13 = {
    # 0.13 treats numpy scalars as 0-d arrays
    "Unknown indexer np.True_ of type <class 'numpy.bool'>": (
        "Boolean index does not match AnnData’s shape along this dimension. "
        "Boolean index has shape () while AnnData index has shape (4,)."
    ),
    # 0.13 unpacks ``n_obs, n_vars = X.shape[:2]`` (and accepts >2-D X with a warning)
    "X needs to be 2-dimensional, not 1-dimensional.": "not enough values to unpack (expected 2, got 1)",
    # 0.13 reshapes a mismatched X (FutureWarning) instead of rejecting it up front
    "Data matrix has wrong shape (2, 2), need to be (3, 2).": "cannot reshape array of size 4 into shape (3,2)",
}
_WARNINGS_ADDED_IN_0_13 = {
    "cannot reshape array of size 4 into shape (3,2)": [
        ("FutureWarning", "Automatic reshaping when setting X will be removed in the future.")
    ],
}
# anndata 0.13 deprecates obs_vector/var_vector in favour of ``anndata.acc``, which annio does not
# implement; annio keeps the methods undeprecated (a deliberate difference).
_ACC_DEPRECATION = re.compile(r"The method (obs|var)_vector is deprecated and will be removed in the future\. Use anndata\.acc")


def _error_message(err: Exception) -> str:
    msg = str(err)
    return _ERRORS_0_12_TO_0_13.get(msg, msg) if ANNDATA_0_12 else msg


def _warning_list(warns: list, err: Exception | None, *, reference: bool) -> list[tuple[str, str]]:
    out = [(w.category.__name__, str(w.message)) for w in warns]
    if reference:
        out = [(c, m) for c, m in out if not (c == "FutureWarning" and _ACC_DEPRECATION.match(m))]
        if ANNDATA_0_12 and err is not None:
            out = _WARNINGS_ADDED_IN_0_13.get(_error_message(err), []) + out
    return out


def _repr_0_13(text: str, *, has_x: bool) -> str:
    """anndata 0.12's AnnData repr in 0.13 form: layers listed last, X shown as ``None (.X)``."""
    if not ANNDATA_0_12:
        return text
    lines = text.split("\n")
    layers = [ln for ln in lines if ln.startswith("    layers: ")]
    lines = [ln for ln in lines if not ln.startswith("    layers: ")]
    if has_x:
        layers = [ln.replace("layers: ", "layers: None (.X), ", 1) for ln in layers] or ["    layers: None (.X)"]
    return "\n".join(lines + layers)


def _mapping_repr_0_13(text: str, *, has_x: bool = False) -> str:
    """anndata 0.12's aligned-mapping repr in 0.13 form: quoted keys, X as the ``None`` layer."""
    if not ANNDATA_0_12:
        return text
    head, _, keys = text.partition(" with keys: ")
    names = [repr(k) for k in keys.split(", ") if k]
    return f"{head} with keys: {', '.join((['None'] if has_x else []) + names)}"


def _build(mod: Any, X_kind: str = "dense") -> Any:
    X = np.arange(20, dtype=float).reshape(4, 5)
    obs = pd.DataFrame(
        {"c": pd.Categorical(list("aabc")), "f": [1.0, 2.0, 3.0, 4.0], "s": list("pqrs")}, index=list("wxyz")
    )
    var = pd.DataFrame({"g": np.arange(5)}, index=list("ABCDE"))
    a = mod.AnnData(sparse.csr_matrix(X) if X_kind == "csr" else X, obs=obs, var=var)
    a.obsm["X_pca"] = np.arange(8.0).reshape(4, 2)
    a.obsm["df"] = pd.DataFrame({"q": [1, 2, 3, 4]}, index=a.obs_names)
    a.varm["vm"] = np.arange(10.0).reshape(5, 2)
    a.obsp["p"] = sparse.csr_matrix(np.eye(4))
    a.layers["l"] = X * 2
    a.uns["u"] = {"n": 1}
    a.uns["c_colors"] = np.array(["r", "g", "b"])
    return a


def _run(fn: Callable[[Any], Any], mod: Any) -> tuple[Any, Any, list]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            out, err = fn(mod), None
        except Exception as e:
            out, err = None, e
    return out, err, [w for w in rec if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]


INDEXERS = {
    "int": 1,
    "neg_int": -1,
    "np_int": np.int64(2),
    "slice": slice(1, 3),
    "neg_step": slice(None, None, -1),
    "label_slice": slice("x", "z"),
    "bool_np": np.array([True, False, True, True]),
    "bool_list": [False, True, False, True],
    "bool_series": pd.Series([True, False, True, False], index=list("wxyz")),
    "int_array": np.array([3, 0, 0]),
    "int_list": [2, -1],
    "name": "y",
    "names": ["z", "w"],
    "pd_index": pd.Index(["y", "x"]),
    "empty": [],
    "sparse_mask": sparse.csr_matrix(np.array([[True], [False], [True], [False]])),
    "2d_mask": np.array([[True, True, False, False]]),
    "tuple_obs_var": (slice(1, None), ["B", "E"]),
    "ellipsis_var": (..., [0, 4]),
    "obs_ellipsis": ([1, 2], ...),
    "var_only": (slice(None), np.array([True, False, True, False, True])),
    "var_names_slice": (slice(None), slice("B", "D")),
}


@pytest.mark.parametrize("X_kind", ["dense", "csr"])
@pytest.mark.parametrize("key", list(INDEXERS))
def test_subsetting(key, X_kind):
    idx = INDEXERS[key]
    ref, ours = _build(ad, X_kind)[idx], _build(an, X_kind)[idx]
    assert ours.is_view and ref.is_view
    assert ours.shape == ref.shape
    assert_equal(ours, ref)
    assert_equal(ours.copy(), ref.copy(), exact=False)
    assert list(ours.obs["c"].cat.categories) == list(ref.obs["c"].cat.categories)
    assert list(ours.uns["c_colors"]) == list(ref.uns["c_colors"])
    assert type(ours.X).__name__ == type(ref.X).__name__


@pytest.mark.parametrize(
    "idx",
    [[True, False], 9, -9, [0, 9], ["x", "q"], "q", None, np.bool_(True), (0, 0, 0), (..., ..., 1), [0.5]],
    ids=repr,
)
def test_subsetting_errors(idx):
    _, err_ref, _ = _run(lambda m: _build(m)[idx], ad)
    _, err_ours, _ = _run(lambda m: _build(m)[idx], an)
    assert err_ref is not None and err_ours is not None
    assert type(err_ours) is type(err_ref)
    if not isinstance(err_ref, KeyError) or idx != "q":
        assert str(err_ours) == _error_message(err_ref)


def test_views_of_views():
    for mod in (ad, an):
        v = _build(mod)[1:][[2, 0], ::-1][:, ["D", "A"]]
        assert v.is_view
    ref = _build(ad)[1:][[2, 0], ::-1][:, ["D", "A"]]
    ours = _build(an)[1:][[2, 0], ::-1][:, ["D", "A"]]
    assert_equal(ours, ref)


COW_ACTIONS = {
    "obs_setitem": lambda v: v.obs.__setitem__("new", 1),
    "var_setitem": lambda v: v.var.__setitem__("new", 1),
    "X_setitem": lambda v: v.X.__setitem__((0, 0), -1.0),
    "obsm_setitem": lambda v: v.obsm.__setitem__("k", np.zeros((v.n_obs, 1))),
    "obsm_delitem": lambda v: v.obsm.__delitem__("X_pca"),
    "obsm_array_setitem": lambda v: v.obsm["X_pca"].__setitem__((0, 0), 5.0),
    "layers_setitem": lambda v: v.layers.__setitem__("k", np.zeros(v.shape)),
    "layer_array_setitem": lambda v: v.layers["l"].__setitem__((0, 0), 5.0),
    "uns_setitem": lambda v: v.uns.__setitem__("k", 1),
}


@pytest.mark.parametrize("name", list(COW_ACTIONS))
def test_copy_on_write(name):
    action = COW_ACTIONS[name]
    results = {}
    for mod in (ad, an):
        parent = _build(mod)
        before = parent.copy()
        view = parent[1:3]
        _, err, warns = _run(lambda m, view=view: action(view), mod)
        assert err is None
        results[mod.__name__] = (view, warns, parent, before)
    (v_ref, w_ref, p_ref, b_ref), (v_ours, w_ours, p_ours, b_ours) = results["anndata"], results["annio._core"]
    assert not v_ref.is_view and not v_ours.is_view
    assert [w.category.__name__ for w in w_ours] == [w.category.__name__ for w in w_ref] == ["ImplicitModificationWarning"]
    if name != "uns_setitem":  # anndata 0.12 names the attribute `._uns`
        assert [str(w.message) for w in w_ours] == [str(w.message) for w in w_ref]
    assert_equal(v_ours, v_ref)
    assert_equal(p_ours, b_ours) and assert_equal(p_ref, b_ref)  # parents untouched


def test_inplace_dataframe_method_on_view():
    """anndata actualises silently here; annio warns like for every other view modification."""
    for mod in (ad, an):
        parent = _build(mod)
        v = parent[1:3]
        _, err, warns = _run(lambda m, v=v: v.obs.drop(columns="c", inplace=True), mod)
        assert err is None and not v.is_view and "c" not in v.obs and "c" in parent.obs
        assert all(w.category.__name__ == "ImplicitModificationWarning" for w in warns)


def test_view_derived_types():
    for v in (_build(ad)[:2], _build(an)[:2]):
        assert type(v.X.copy()) is np.ndarray and type(v.X + 1) is np.ndarray
        assert type(v.obs.copy()) is pd.DataFrame
        assert type(v.X).__name__ == "ArrayView" and type(v.obs).__name__ == "DataFrameView"


def test_raw():
    objs = {}
    for mod in (ad, an):
        a = _build(mod)
        a.raw = a
        a = a[:, :2].copy()
        objs[mod.__name__] = a
    ref, ours = objs["anndata"], objs["annio._core"]
    assert ours.raw.shape == ref.raw.shape
    assert_equal(ours.raw, ref.raw)
    assert_equal(ours.raw[1:, "B"].X, ref.raw[1:, "B"].X)
    assert_equal(ours[[3, 1]].raw.X, ref[[3, 1]].raw.X)
    assert_equal(ours.raw.to_adata(), ref.raw.to_adata())
    np.testing.assert_array_equal(ours.raw.obs_vector("C"), ref.raw.obs_vector("C"))
    _, e1, _ = _run(lambda m: setattr(objs["anndata"], "raw", objs["anndata"][:2].copy()), ad)
    _, e2, _ = _run(lambda m: setattr(objs["annio._core"], "raw", objs["annio._core"][:2].copy()), an)
    assert str(e1) == str(e2)


@pytest.mark.parametrize(
    "names",
    [["a", "a", "a", "b"], ["a", "a", "a-1", "b"], ["a", "a-1", "a", "a"], ["a", "a", "a-1", "a-1"], ["a-1", "a", "a"]],
)
def test_names_make_unique(names):
    outs = []
    for mod in (ad, an):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = mod.AnnData(np.zeros((len(names), 2)), obs=pd.DataFrame(index=names))
        _, err, warns = _run(lambda m, a=a: a.obs_names_make_unique(), mod)
        assert err is None
        outs.append((list(a.obs_names), [str(w.message) for w in warns]))
    assert outs[0] == outs[1]


def test_strings_to_categoricals():
    df = pd.DataFrame(
        {"s": ["b10", "b2", "b2", "a"], "u": list("abcd"), "n": [1, 2, 3, 4], "nan": ["x", np.nan, "x", "y"],
         "pstr": pd.array(["q", "q", "r", None], dtype="string"), "mixed": ["a", 1, "a", 1]},
        index=list("wxyz"),
    )
    objs = []
    for mod in (ad, an):
        a = mod.AnnData(np.zeros((4, 2)), obs=df.copy())
        a.strings_to_categoricals()
        objs.append(a)
    assert [str(d) for d in objs[0].obs.dtypes] == [str(d) for d in objs[1].obs.dtypes]
    assert_equal(objs[1].obs, objs[0].obs, exact=True)


def test_strings_to_categoricals_on_view():
    df = pd.DataFrame({"s": ["b", "b", "a", "c"]}, index=list("wxyz"))
    res = []
    for mod in (ad, an):
        v = mod.AnnData(np.zeros((4, 2)), obs=df.copy())[:3]
        _, err, warns = _run(lambda m, v=v: v.strings_to_categoricals(), mod)
        res.append((v.is_view, list(v.obs["s"].cat.categories), {w.category.__name__ for w in warns}))
    assert res[0] == res[1]


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.AnnData(np.zeros((3, 2)), obs=pd.DataFrame(index=[1, 2, 3])),
        lambda m: m.AnnData(np.zeros((3, 2)), obs=pd.DataFrame(index=list("aab"))),
        lambda m: m.AnnData(np.zeros((3, 2)), var=pd.DataFrame(index=list("aa"))),
        lambda m: m.AnnData(np.zeros((3, 2)), obs=pd.DataFrame(index=list("ab"))),
        lambda m: m.AnnData(np.zeros((3, 2)), var=pd.DataFrame(index=list("abc"))),
        lambda m: m.AnnData(np.zeros((3, 2)), obsm={"a": np.zeros((2, 2))}),
        lambda m: m.AnnData(np.zeros((3, 2)), obsp={"a": np.zeros((3, 2))}),
        lambda m: m.AnnData(np.zeros((3, 2)), layers={"a": np.zeros((3, 3))}),
        lambda m: m.AnnData(np.zeros((3, 2)), layers={"a": sparse.coo_matrix(np.zeros((3, 2)))}),
        lambda m: m.AnnData(np.zeros((3, 2)), obsm={"a": np.matrix(np.zeros((3, 2)))}),
        lambda m: m.AnnData(np.zeros(3)),
        lambda m: m.AnnData(np.zeros((3, 2)), shape=(3, 2)),
        lambda m: m.AnnData(np.zeros((3, 2))).obs_vector("nope"),
        lambda m: m.AnnData(shape=(2, 2)).to_df(),
        lambda m: m.AnnData(np.zeros((3, 2)))[1:].T,
        lambda m: setattr(m.AnnData(np.zeros((3, 2))), "X", np.zeros((2, 2))),
        lambda m: setattr(m.AnnData(np.zeros((3, 2))), "obs_names", ["a"]),
        lambda m: m.AnnData(np.zeros((3, 2))) == 1,
    ],
)
def test_construction_messages(build):
    out_ref, err_ref, w_ref = _run(build, ad)
    out_ours, err_ours, w_ours = _run(build, an)
    assert type(err_ours) is type(err_ref)
    if err_ref is not None:
        assert str(err_ours) == _error_message(err_ref)
    else:
        assert_equal(out_ours, out_ref)
    assert _warning_list(w_ours, err_ours, reference=False) == _warning_list(w_ref, err_ref, reference=True)


def test_repr_and_misc():
    ref, ours = _build(ad), _build(an)
    assert repr(ours) == _repr_0_13(repr(ref), has_x=True)
    assert repr(ours[1:, :2]) == _repr_0_13(repr(ref[1:, :2]), has_x=True)
    assert repr(ours.obsm) == _mapping_repr_0_13(repr(ref.obsm))
    assert repr(ours[:1].layers) == _mapping_repr_0_13(repr(ref[:1].layers), has_x=True)
    assert repr(an.AnnData()) == repr(ad.AnnData())
    assert list(ours.layers) == ([None] if ANNDATA_0_12 else []) + list(ref.layers)
    assert len(ours) == len(ref)
    assert_equal(ours.T, ref.T)
    assert_equal(ours.to_df(), ref.to_df())
    assert_equal(ours.to_df(layer="l"), ref.to_df(layer="l"))
    for k in ("B", "f", "c"):
        assert_equal(pd.Series(ours.obs_vector(k)), pd.Series(ref.obs_vector(k)))
    for k in ("y", "g"):
        assert_equal(ours.var_vector(k), ref.var_vector(k))
    a_ref, a_ours = ref.copy(), ours.copy()
    a_ref.obs_names, a_ours.obs_names = list("abcd"), list("abcd")
    assert_equal(a_ours.obsm["df"], a_ref.obsm["df"])


def test_namespaces():
    results = []
    for mod in (ad, an):
        cls_annot = mod.AnnData

        class NS:
            def __init__(self, adata: cls_annot) -> None:  # type: ignore[valid-type]
                self.adata = adata

        NS.__init__.__annotations__["adata"] = mod.AnnData
        mod.register_anndata_namespace("interop_ns")(NS)
        try:
            a = mod.AnnData(np.zeros((2, 2)))
            cached = a.interop_ns is a.interop_ns
            _, err_res, _ = _run(lambda m: m.register_anndata_namespace("X")(NS), mod)
            _, _, w_over = _run(lambda m: m.register_anndata_namespace("interop_ns")(NS), mod)

            class Bad:
                def __init__(self, x: int) -> None:
                    pass

            _, err_bad, _ = _run(lambda m: m.register_anndata_namespace("bad_ns")(Bad), mod)
            results.append((cached, mod.AnnData.interop_ns is NS, str(err_res), [str(w.message) for w in w_over], str(err_bad)))
        finally:
            delattr(mod.AnnData, "interop_ns")
    assert results[0] == results[1]
