"""Fixtures for the whole-file I/O tests: an element-by-element comparison that works on
annio and anndata objects alike, and a rich anndata-built object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse


def _is_str_kind(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "UOST"


def assert_value_equal(ours: Any, theirs: Any, path: str) -> None:
    """Compare two element values (arrays, sparse, frames, mappings, scalars)."""
    if theirs is None:
        assert ours is None, f"{path}: expected None, got {type(ours).__name__}"
        return
    if isinstance(theirs, Mapping) or (hasattr(theirs, "keys") and not isinstance(theirs, pd.DataFrame)):
        assert hasattr(ours, "keys"), f"{path}: expected a mapping, got {type(ours).__name__}"
        assert sorted(map(str, ours.keys())) == sorted(map(str, theirs.keys())), f"{path}: keys differ"
        for key in theirs.keys():
            assert_value_equal(ours[key], theirs[key], f"{path}/{key}")
        return
    if isinstance(theirs, pd.DataFrame):
        assert isinstance(ours, pd.DataFrame), f"{path}: expected DataFrame, got {type(ours).__name__}"
        assert list(ours.columns) == list(theirs.columns), f"{path}: columns differ"
        assert list(map(str, ours.index)) == list(map(str, theirs.index)), f"{path}: index differs"
        assert ours.index.name == theirs.index.name, f"{path}: index name {ours.index.name!r} != {theirs.index.name!r}"
        for col in theirs.columns:
            a, b = ours[col], theirs[col]
            if isinstance(b.dtype, pd.CategoricalDtype):
                assert isinstance(a.dtype, pd.CategoricalDtype), f"{path}/{col}: expected categorical, got {a.dtype}"
                assert list(a.cat.categories) == list(b.cat.categories), f"{path}/{col}: categories differ"
                assert a.cat.ordered == b.cat.ordered, f"{path}/{col}: ordered differs"
                np.testing.assert_array_equal(a.cat.codes.values, b.cat.codes.values, err_msg=f"{path}/{col}")
            else:
                pd.testing.assert_series_equal(a, b, check_index=False, check_names=False, obj=f"{path}/{col}")
        return
    if sparse.issparse(theirs):
        assert sparse.issparse(ours), f"{path}: expected sparse, got {type(ours).__name__}"
        assert ours.format == theirs.format, f"{path}: format {ours.format} != {theirs.format}"
        assert ours.dtype == theirs.dtype, f"{path}: dtype {ours.dtype} != {theirs.dtype}"
        assert ours.shape == theirs.shape, f"{path}: shape {ours.shape} != {theirs.shape}"
        assert (ours != theirs).nnz == 0, f"{path}: values differ"
        return
    if isinstance(theirs, pd.api.extensions.ExtensionArray):
        pd.testing.assert_extension_array_equal(pd.array(ours), theirs)
        return
    if isinstance(theirs, np.ndarray):
        ours_arr = np.asarray(ours)
        assert ours_arr.shape == theirs.shape, f"{path}: shape {ours_arr.shape} != {theirs.shape}"
        if theirs.dtype.names:
            assert ours_arr.dtype.names == theirs.dtype.names, f"{path}: fields differ"
            for name in theirs.dtype.names:
                assert_value_equal(ours_arr[name], theirs[name], f"{path}[{name}]")
            return
        if _is_str_kind(theirs):
            assert _is_str_kind(ours_arr), f"{path}: expected strings, got {ours_arr.dtype}"
            as_str = lambda arr: [str(v) for v in arr.ravel().tolist()]
            assert as_str(ours_arr) == as_str(theirs), f"{path}: strings differ"
            return
        assert ours_arr.dtype == theirs.dtype, f"{path}: dtype {ours_arr.dtype} != {theirs.dtype}"
        np.testing.assert_array_equal(ours_arr, theirs, err_msg=path)
        return
    if isinstance(theirs, str | bytes):
        assert isinstance(ours, str), f"{path}: expected str, got {type(ours).__name__}"
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"
        return
    if isinstance(theirs, np.generic | int | float | bool | complex):
        assert type(ours) is type(theirs) or np.asarray(ours).dtype == np.asarray(theirs).dtype, (
            f"{path}: type {type(ours).__name__} != {type(theirs).__name__}"
        )
        assert ours == theirs or (ours != ours and theirs != theirs), f"{path}: {ours!r} != {theirs!r}"
        return
    # other types (awkward arrays, ...): compare through numpy-ish equality
    assert type(ours).__name__ == type(theirs).__name__, f"{path}: {type(ours).__name__} != {type(theirs).__name__}"


def assert_adata_matches(ours: Any, theirs: Any) -> None:
    """Element-by-element comparison of two AnnData-like objects (annio or anndata)."""
    assert tuple(ours.shape) == tuple(theirs.shape), f"shape {ours.shape} != {theirs.shape}"
    assert_value_equal(ours.X, theirs.X, "/X")
    for name in ("obs", "var"):
        assert_value_equal(getattr(ours, name), getattr(theirs, name), f"/{name}")
    for name in ("obsm", "varm", "obsp", "varp", "layers"):
        a = {k: v for k, v in getattr(ours, name).items() if k is not None}
        b = {k: v for k, v in getattr(theirs, name).items() if k is not None}
        assert_value_equal(a, b, f"/{name}")
    assert_value_equal(dict(ours.uns), dict(theirs.uns), "/uns")
    if theirs.raw is None:
        assert ours.raw is None, "raw: expected none"
    else:
        assert ours.raw is not None, "raw: missing"
        assert_value_equal(ours.raw.X, theirs.raw.X, "/raw/X")
        assert_value_equal(ours.raw.var, theirs.raw.var, "/raw/var")
        assert_value_equal(dict(ours.raw.varm), dict(theirs.raw.varm), "/raw/varm")


@pytest.fixture
def assert_matches():
    return assert_adata_matches


def rich_parts(n_obs: int = 40, n_vars: int = 15, seed: int = 0) -> dict[str, Any]:
    """The parts of a rich AnnData (every common element kind), to build with any AnnData
    class: ``cls(**{k: v for k, v in parts.items() if k != "raw"})``."""
    rng = np.random.default_rng(seed)
    obs_names = [f"cell{i}" for i in range(n_obs)]
    var_names = [f"gene{i}" for i in range(n_vars)]
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], n_obs)),
            "cat_ordered": pd.Categorical(rng.choice(["lo", "hi"], n_obs), categories=["lo", "hi"], ordered=True),
            "int": rng.integers(0, 100, n_obs),
            "float": rng.random(n_obs),
            "bool": rng.random(n_obs) > 0.5,
            "str_repeated": rng.choice(["x", "y"], n_obs).astype(object),
            "str_unique": np.array([f"u{i}" for i in range(n_obs)], dtype=object),
            "nullable_int": pd.array([None if i % 7 == 0 else i for i in range(n_obs)], dtype="Int32"),
            "nullable_bool": pd.array([None if i % 5 == 0 else bool(i % 2) for i in range(n_obs)], dtype="boolean"),
        },
        index=pd.Index(obs_names),
    )
    var = pd.DataFrame(
        {"gene_type": pd.Categorical(rng.choice(["coding", "noncoding"], n_vars)), "mean": rng.random(n_vars).astype(np.float32)},
        index=pd.Index(var_names, name="gene_id"),
    )
    X = rng.random((n_obs, n_vars)).astype(np.float32)
    csr = sparse.random(n_obs, n_vars, density=0.2, format="csr", random_state=seed, dtype=np.float64)
    return {
        "X": X,
        "obs": obs,
        "var": var,
        "uns": {
            "scalar_int": 3,
            "scalar_float": 1.5,
            "scalar_str": "hello",
            "none": None,
            "strings": np.array(["a", "bb", "ccc"], dtype=object),
            "ints": np.arange(4),
            "nested": {"deeper": {"x": np.ones((2, 2))}, "flag": True},
            "df": pd.DataFrame({"v": [1.0, 2.0]}, index=["r1", "r2"]),
        },
        "obsm": {"X_pca": rng.random((n_obs, 3)), "sparse": csr[:, :5].tocsr(), "df": pd.DataFrame({"a": rng.random(n_obs)}, index=obs_names)},
        "varm": {"loadings": rng.random((n_vars, 3))},
        "obsp": {"distances": sparse.random(n_obs, n_obs, density=0.1, format="csr", random_state=seed + 1)},
        "varp": {"corr": rng.random((n_vars, n_vars))},
        "layers": {"counts": csr, "dense": rng.integers(0, 5, (n_obs, n_vars)).astype(np.int64), "csc": csr.tocsc()},
        "raw": {
            "X": sparse.random(n_obs, n_vars + 5, density=0.3, format="csr", random_state=seed + 2, dtype=np.float32),
            "var": pd.DataFrame({"kind": np.array(["p", "q"] * ((n_vars + 5) // 2) + ["p"] * ((n_vars + 5) % 2), dtype=object)}, index=[f"rg{i}" for i in range(n_vars + 5)]),
        },
    }


def build_adata(cls: Any, parts: dict[str, Any] | None = None) -> Any:
    """An object of AnnData class ``cls`` (annio's or anndata's) from :func:`rich_parts`."""
    parts = dict(parts or rich_parts())
    raw = parts.pop("raw", None)
    adata = cls(**parts)
    if raw is not None:
        adata.raw = cls(X=raw["X"], var=raw["var"], obs=pd.DataFrame(index=adata.obs_names))
    return adata


@pytest.fixture
def annio_adata():
    from annio._core import AnnData

    return build_adata(AnnData)
