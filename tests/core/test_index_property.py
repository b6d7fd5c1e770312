"""Property test: AnnData indexing agrees with numpy/pandas indexing of the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from annio._core import AnnData
from annio._core.index import compose_index, normalize_index

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@st.composite
def indexers(draw: st.DrawFn, n: int, prefix: str) -> tuple:
    """(indexer, expected positions) for an axis of length n with names f'{prefix}{i}'."""
    names = pd.Index([f"{prefix}{i}" for i in range(n)])
    kind = draw(st.sampled_from(["int", "slice", "mask", "ints", "names", "name", "all"]))
    if kind == "int":
        i = draw(st.integers(-n, n - 1))
        return i, np.array([i % n])
    if kind == "slice":
        bound = st.none() | st.integers(-n - 2, n + 2)
        s = slice(draw(bound), draw(bound), draw(st.none() | st.sampled_from([-3, -2, -1, 1, 2, 3])))
        return s, np.arange(n)[s]
    if kind == "mask":
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        form = draw(st.sampled_from(["numpy", "list", "series"]))
        value = {"numpy": mask, "list": mask.tolist(), "series": pd.Series(mask, index=names)}[form]
        return value, np.flatnonzero(mask)
    if kind == "ints":
        arr = np.array(draw(st.lists(st.integers(-n, n - 1), max_size=2 * n)), dtype=np.int64)
        form = draw(st.sampled_from(["numpy", "list"]))
        return (arr if form == "numpy" else arr.tolist()), np.arange(n)[arr]
    if kind == "names":
        pos = np.array(draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True)), dtype=np.int64)
        form = draw(st.sampled_from(["list", "index", "numpy"]))
        picked = names[pos] if len(pos) else pd.Index([], dtype=object)
        value = {"list": list(picked), "index": picked, "numpy": np.asarray(picked, dtype=str)}[form]
        return value, pos
    if kind == "name":
        i = draw(st.integers(0, n - 1))
        return names[i], np.array([i])
    return slice(None), np.arange(n)


def _make(n_obs: int, n_vars: int, X_kind: str) -> AnnData:
    X = np.arange(n_obs * n_vars, dtype=float).reshape(n_obs, n_vars)
    adata = AnnData(
        sparse.csr_matrix(X) if X_kind == "csr" else X,
        obs=pd.DataFrame({"pos": np.arange(n_obs)}, index=[f"o{i}" for i in range(n_obs)]),
        var=pd.DataFrame({"pos": np.arange(n_vars)}, index=[f"v{j}" for j in range(n_vars)]),
    )
    adata.obsm["o"] = np.arange(n_obs * 2).reshape(n_obs, 2)
    adata.obsp["p"] = np.arange(n_obs * n_obs).reshape(n_obs, n_obs)
    adata.varm["v"] = np.arange(n_vars)[:, None]
    adata.layers["l"] = -X
    return adata


def _dense(x):
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _check(view: AnnData, base: AnnData, opos: np.ndarray, vpos: np.ndarray) -> None:
    assert view.is_view and view.shape == (len(opos), len(vpos))
    X = _dense(base.X)
    np.testing.assert_array_equal(_dense(view.X), X[np.ix_(opos, vpos)])
    np.testing.assert_array_equal(view.obs["pos"].to_numpy(), opos)
    np.testing.assert_array_equal(view.var["pos"].to_numpy(), vpos)
    assert list(view.obs_names) == list(base.obs_names[opos])
    np.testing.assert_array_equal(view.obsm["o"], base.obsm["o"][opos])
    np.testing.assert_array_equal(view.varm["v"], base.varm["v"][vpos])
    np.testing.assert_array_equal(view.obsp["p"], base.obsp["p"][np.ix_(opos, opos)])
    np.testing.assert_array_equal(_dense(view.layers["l"]), -X[np.ix_(opos, vpos)])


@st.composite
def scenario(draw: st.DrawFn) -> tuple:
    n_obs, n_vars = draw(st.integers(1, 7)), draw(st.integers(1, 6))
    X_kind = draw(st.sampled_from(["dense", "csr"]))
    steps = []
    cur_o, cur_v = np.arange(n_obs), np.arange(n_vars)
    for _ in range(draw(st.integers(1, 3))):
        if len(cur_o) == 0 or len(cur_v) == 0:
            break
        # names at each step are the base names of the current selection
        o_idx, o_rel = draw(_relative(cur_o, "o"))
        v_idx, v_rel = draw(_relative(cur_v, "v"))
        form = draw(st.sampled_from(["both", "obs_only", "ellipsis_var", "var_only"]))
        steps.append((o_idx, v_idx, form))
        cur_o = cur_o[o_rel] if form != "var_only" and form != "ellipsis_var" else cur_o
        cur_v = cur_v[v_rel] if form in ("both", "var_only", "ellipsis_var") else cur_v
    return n_obs, n_vars, X_kind, steps, cur_o, cur_v


@st.composite
def _relative(draw: st.DrawFn, current: np.ndarray, prefix: str) -> tuple:
    idx, rel = draw(indexers(len(current), "__"))
    names = pd.Index([f"{prefix}{i}" for i in current])
    name_based = isinstance(idx, (str, pd.Index)) or (isinstance(idx, list) and idx and isinstance(idx[0], str)) or (
        isinstance(idx, np.ndarray) and idx.dtype.kind == "U"
    )
    if name_based and not names.is_unique:
        return np.asarray(rel), rel  # names are ambiguous after duplicating positions
    if isinstance(idx, str):  # rename to the real names of the current selection
        idx = names[int(idx[2:])]
    elif isinstance(idx, pd.Index) or (isinstance(idx, list) and idx and isinstance(idx[0], str)):
        idx = list(names[[int(s[2:]) for s in idx]])
    elif isinstance(idx, np.ndarray) and idx.dtype.kind == "U":
        idx = np.asarray(names[[int(s[2:]) for s in idx]], dtype=str)
    elif isinstance(idx, pd.Series):
        idx = pd.Series(idx.to_numpy(), index=names)
    return idx, rel


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_indexing_matches_numpy(case):
    n_obs, n_vars, X_kind, steps, exp_o, exp_v = case
    base = _make(n_obs, n_vars, X_kind)
    view = base
    for o_idx, v_idx, form in steps:
        key = {"both": (o_idx, v_idx), "obs_only": o_idx, "ellipsis_var": (..., v_idx), "var_only": (slice(None), v_idx)}[form]
        view = view[key]
    if view is base:
        return
    assert view._adata_ref is base
    _check(view, base, exp_o, exp_v)
    copied = view.copy()
    assert not copied.is_view
    np.testing.assert_array_equal(_dense(copied.X), _dense(base.X)[np.ix_(exp_o, exp_v)])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.data())
def test_compose_index(n, data):
    names = pd.Index([f"n{i}" for i in range(n)])
    first, pos1 = data.draw(indexers(n, "n"))
    p = normalize_index(first, names)
    m = len(pos1)
    if m == 0:
        return
    second, pos2 = data.draw(indexers(m, "__"))
    if isinstance(second, (str, pd.Index, list, pd.Series)) or (
        isinstance(second, np.ndarray) and second.dtype.kind == "U"
    ):
        return  # name indexers are covered by test_indexing_matches_numpy
    c = normalize_index(second, pd.Index([f"__{i}" for i in range(m)]))
    composed = compose_index(p, c, n)
    got = np.arange(n)[composed]
    np.testing.assert_array_equal(got, pos1[pos2])
