"""Testing helpers: :func:`assert_equal` for AnnData objects and elements, :func:`gen_adata`.

``assert_equal`` compares by attribute access, so it also accepts objects from the real
``anndata`` package (never imported here). Failures raise ``AssertionError`` naming the
element path, e.g. ``/obsm/X_pca: values differ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["assert_equal", "gen_adata"]

_ANNDATA_ATTRS = ("X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns")


def _fail(path: str, detail: str) -> None:
    raise AssertionError(f"{path or '/'}: {detail}")


def _is_anndata_like(x: Any) -> bool:
    return all(hasattr(x, a) for a in ("X", "obs", "var", "obsm", "layers", "n_obs"))


def _is_raw_like(x: Any) -> bool:
    return not hasattr(x, "obs") and all(hasattr(x, a) for a in ("X", "var", "varm"))


def _is_dataframe_like(x: Any) -> bool:
    return isinstance(x, pd.DataFrame)


def _module(x: Any) -> str:
    return type(x).__module__


def _is_awkward(x: Any) -> bool:
    """An awkward array, or a subclass of one (anndata's awkward view class)."""
    return any(cls.__module__.startswith("awkward") for cls in type(x).__mro__[:-1])


def _is_array_like(x: Any) -> bool:
    return (
        isinstance(x, np.ndarray)
        or sparse.issparse(x)
        or _module(x).startswith(("dask", "h5py", "zarr", "xarray"))
        or (hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (pd.Series, pd.Index)))
    )


def _to_numpy(x: Any) -> np.ndarray:
    """Materialise any array-like (dask, sparse, h5py/zarr, backed) as a dense numpy array."""
    if hasattr(x, "compute") and _module(x).startswith(("dask", "xarray")):
        x = x.compute()
    if hasattr(x, "to_memory") and not isinstance(x, np.ndarray):
        x = x.to_memory()
    if sparse.issparse(x):
        return x.toarray()
    if _module(x).startswith(("h5py", "zarr")):
        x = x[()]
    return np.asarray(x)


def _array_kind(x: Any) -> str:
    if sparse.issparse(x):
        return f"sparse-{x.format}-{'array' if isinstance(x, sparse.sparray) else 'matrix'}"
    if _module(x).startswith("dask"):
        return "dask"
    return "dense"


def _is_missing(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "fc":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        return np.asarray(pd.isna(arr), dtype=bool)
    return np.zeros(arr.shape, dtype=bool)


def _assert_values(a: np.ndarray, b: np.ndarray, path: str, *, exact: bool) -> None:
    if a.shape != b.shape:
        _fail(path, f"shapes differ: {a.shape} != {b.shape}")
    if exact and a.dtype != b.dtype:
        _fail(path, f"dtypes differ: {a.dtype} != {b.dtype}")
    kinds = {a.dtype.kind, b.dtype.kind}
    if kinds & {"U", "S", "O", "T"}:
        a, b = a.astype(object), b.astype(object)
        miss_a, miss_b = _is_missing(a), _is_missing(b)
        if not np.array_equal(miss_a, miss_b):
            _fail(path, "missing values differ")
        a = np.array([v.decode() if isinstance(v, bytes) else v for v in a[~miss_a].ravel()], dtype=object)
        b = np.array([v.decode() if isinstance(v, bytes) else v for v in b[~miss_b].ravel()], dtype=object)
        neq = a != b
    elif a.dtype.kind == "V" or b.dtype.kind == "V":
        if a.dtype.names != b.dtype.names:
            _fail(path, f"record fields differ: {a.dtype.names} != {b.dtype.names}")
        for name in a.dtype.names or ():
            _assert_values(a[name], b[name], f"{path}[{name!r}]", exact=exact)
        return
    else:
        equal = a == b
        if kinds <= set("fc"):
            equal |= np.isnan(a) & np.isnan(b)
        neq = ~np.asarray(equal, dtype=bool)
    if np.any(neq):
        _fail(path, f"values differ ({int(np.sum(neq))} of {neq.size} elements)")


def _assert_arrays(a: Any, b: Any, path: str, *, exact: bool) -> None:
    if exact and _array_kind(a) != _array_kind(b):
        _fail(path, f"array kinds differ: {_array_kind(a)} != {_array_kind(b)}")
    if tuple(a.shape) != tuple(b.shape):
        _fail(path, f"shapes differ: {tuple(a.shape)} != {tuple(b.shape)}")
    _assert_values(_to_numpy(a), _to_numpy(b), path, exact=exact)


def _assert_series(a: pd.Series, b: pd.Series, path: str, *, exact: bool) -> None:
    cat_a, cat_b = isinstance(a.dtype, pd.CategoricalDtype), isinstance(b.dtype, pd.CategoricalDtype)
    if cat_a != cat_b:
        _fail(path, f"dtypes differ: {a.dtype} != {b.dtype}")
    if cat_a:
        if a.cat.ordered != b.cat.ordered:
            _fail(path, "categorical 'ordered' flags differ")
        _assert_values(
            np.asarray(a.cat.categories, dtype=object),
            np.asarray(b.cat.categories, dtype=object),
            f"{path} (categories)",
            exact=False,
        )
        _assert_values(np.asarray(a.cat.codes), np.asarray(b.cat.codes), f"{path} (codes)", exact=False)
        return
    if exact and a.dtype != b.dtype:
        _fail(path, f"dtypes differ: {a.dtype} != {b.dtype}")
    ext = isinstance(a.dtype, pd.api.extensions.ExtensionDtype) or isinstance(
        b.dtype, pd.api.extensions.ExtensionDtype
    )
    if ext:
        av, bv = a.to_numpy(dtype=object, na_value=None), b.to_numpy(dtype=object, na_value=None)
    else:
        av, bv = a.to_numpy(), b.to_numpy()
    _assert_values(av, bv, path, exact=False)


def _assert_index(a: pd.Index, b: pd.Index, path: str, *, exact: bool) -> None:
    if exact and a.name != b.name:
        _fail(path, f"index names differ: {a.name!r} != {b.name!r}")
    _assert_values(np.asarray(a, dtype=object), np.asarray(b, dtype=object), path, exact=False)


def _assert_frames(a: Any, b: Any, path: str, *, exact: bool) -> None:
    if tuple(a.shape) != tuple(b.shape):
        _fail(path, f"shapes differ: {tuple(a.shape)} != {tuple(b.shape)}")
    _assert_index(a.index, b.index, f"{path} (index)", exact=exact)
    cols_a, cols_b = list(a.columns), list(b.columns)
    if (cols_a if exact else sorted(map(str, cols_a))) != (cols_b if exact else sorted(map(str, cols_b))):
        _fail(path, f"columns differ: {cols_a} != {cols_b}")
    for col in cols_a:
        _assert_series(a[col], b[col], f"{path}/{col}", exact=exact)


def _assert_mappings(a: Mapping, b: Mapping, path: str, *, exact: bool) -> None:
    keys_a, keys_b = set(a.keys()), set(b.keys())
    if keys_a != keys_b:
        _fail(path, f"keys differ: only in first {sorted(map(str, keys_a - keys_b))}, "
              f"only in second {sorted(map(str, keys_b - keys_a))}")
    for key in a.keys():
        assert_equal(a[key], b[key], exact=exact, path=f"{path}/{key}")


def _assert_anndata(a: Any, b: Any, path: str, *, exact: bool) -> None:
    if tuple(a.shape) != tuple(b.shape):
        _fail(path, f"shapes differ: {tuple(a.shape)} != {tuple(b.shape)}")
    _assert_index(a.obs_names, b.obs_names, f"{path}/obs_names", exact=exact)
    _assert_index(a.var_names, b.var_names, f"{path}/var_names", exact=exact)
    for attr in _ANNDATA_ATTRS:
        if attr == "layers":
            _assert_layers(a, b, f"{path}/layers", exact=exact)
        else:
            assert_equal(getattr(a, attr), getattr(b, attr), exact=exact, path=f"{path}/{attr}")
    raw_a, raw_b = getattr(a, "raw", None), getattr(b, "raw", None)
    if (raw_a is None) != (raw_b is None):
        _fail(f"{path}/raw", f"one raw is None: {type(raw_a).__name__} vs {type(raw_b).__name__}")
    if raw_a is not None:
        _assert_raw(raw_a, raw_b, f"{path}/raw", exact=exact)


def _named_layers(adata: Any, path: str) -> dict:
    """The layers except the ``None`` key, which anndata 0.13 (and annio) list for X."""
    layers = adata.layers
    if None in list(layers.keys()) and adata.X is None:
        _fail(path, "the None key is listed although X is None")
    return {k: layers[k] for k in layers.keys() if k is not None}


def _assert_layers(a: Any, b: Any, path: str, *, exact: bool) -> None:
    # X was compared as ``/X``; anndata < 0.13 does not list it as ``layers[None]``.
    _assert_mappings(_named_layers(a, path), _named_layers(b, path), path, exact=exact)


def _assert_raw(a: Any, b: Any, path: str, *, exact: bool) -> None:
    for attr in ("X", "var", "varm"):
        assert_equal(getattr(a, attr), getattr(b, attr), exact=exact, path=f"{path}/{attr}")


def _assert_scalars(a: Any, b: Any, path: str, *, exact: bool) -> None:
    if isinstance(a, bytes):
        a = a.decode()
    if isinstance(b, bytes):
        b = b.decode()
    if exact and type(a) is not type(b) and np.asarray(a).dtype != np.asarray(b).dtype:
        _fail(path, f"types differ: {type(a).__name__} != {type(b).__name__}")
    if isinstance(a, str) or isinstance(b, str):
        if str(a) != str(b) or isinstance(a, str) != isinstance(b, str):
            _fail(path, f"values differ: {a!r} != {b!r}")
        return
    both_nan = pd.isna(a) and pd.isna(b) if np.ndim(a) == 0 and np.ndim(b) == 0 else False
    if not both_nan and not bool(a == b):
        _fail(path, f"values differ: {a!r} != {b!r}")


def assert_equal(a: Any, b: Any, *, exact: bool = False, path: str = "") -> None:
    """Assert that two AnnData objects (or elements) are equal.

    Parameters
    ----------
    a, b
        AnnData objects (annio's or anndata's), Raw, arrays (numpy, scipy sparse, dask, h5py,
        zarr), DataFrames (categorical and nullable columns), mappings, scalars or None.
    exact
        Also require equal dtypes and array kinds (dense vs sparse format, index names).
        Otherwise values are compared (object vs string dtypes, view vs actual are equal).
    path
        Element path used as prefix in failure messages.

    Raises
    ------
    AssertionError
        Naming the first element path where ``a`` and ``b`` differ.
    """
    if a is None or b is None:
        if a is not b:
            _fail(path, f"one value is None: {type(a).__name__} vs {type(b).__name__}")
        return
    if _is_anndata_like(a) or _is_anndata_like(b):
        if not (_is_anndata_like(a) and _is_anndata_like(b)):
            _fail(path, f"AnnData compared with {type(b).__name__}")
        _assert_anndata(a, b, path, exact=exact)
    elif _is_raw_like(a) and _is_raw_like(b):
        _assert_raw(a, b, path, exact=exact)
    elif _is_dataframe_like(a) or _is_dataframe_like(b):
        if not (_is_dataframe_like(a) and _is_dataframe_like(b)):
            _fail(path, f"types differ: {type(a).__name__} != {type(b).__name__}")
        _assert_frames(a, b, path, exact=exact)
    elif isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            _fail(path, f"types differ: {type(a).__name__} != {type(b).__name__}")
        _assert_mappings(a, b, path, exact=exact)
    elif _is_awkward(a) or _is_awkward(b):
        import awkward as ak

        if ak.to_list(a) != ak.to_list(b):
            _fail(path, "awkward arrays differ")
    elif isinstance(a, (pd.Series, pd.Index)) or isinstance(b, (pd.Series, pd.Index)):
        _assert_series(pd.Series(np.asarray(a, dtype=object) if isinstance(a, pd.Index) else a),
                       pd.Series(np.asarray(b, dtype=object) if isinstance(b, pd.Index) else b), path, exact=exact)
    elif (_is_array_like(a) or _is_array_like(b)) and not (np.ndim(a) == 0 and np.ndim(b) == 0):
        if not (_is_array_like(a) and _is_array_like(b)):
            _fail(path, f"types differ: {type(a).__name__} != {type(b).__name__}")
        _assert_arrays(a, b, path, exact=exact)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            _fail(path, f"lengths differ: {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, exact=exact, path=f"{path}/{i}")
    else:
        _assert_scalars(_scalar(a), _scalar(b), path, exact=exact)


def _scalar(x: Any) -> Any:
    if _module(x).startswith(("h5py", "zarr")) or isinstance(x, np.ndarray):
        return _to_numpy(x)[()]
    return x


# -- generators ------------------------------------------------------------------------------

_X_TYPES = ("array", "csr", "csc", "csr_array", "csc_array", "dask", None)


def _make_matrix(rng: np.random.Generator, shape: tuple[int, int], kind: str | None, dtype: Any) -> Any:
    if kind is None:
        return None
    dense = rng.random(shape)
    dense[dense < 0.6] = 0  # ~60 % zeros, so sparse formats are meaningful
    if np.dtype(dtype).kind in "iu":
        dense = np.round(dense * 100)
    dense = dense.astype(dtype)
    if kind == "array":
        return dense
    if kind == "dask":
        import dask.array as da

        return da.from_array(dense, chunks=(max(1, shape[0] // 2), max(1, shape[1] // 2)))
    constructors = {
        "csr": sparse.csr_matrix,
        "csc": sparse.csc_matrix,
        "csr_array": sparse.csr_array,
        "csc_array": sparse.csc_array,
    }
    if kind not in constructors:
        raise ValueError(f"X_type must be one of {_X_TYPES}, got {kind!r}")
    return constructors[kind](dense)


def _annotation(rng: np.random.Generator, names: pd.Index, prefix: str, *, full: bool) -> pd.DataFrame:
    n = len(names)
    cats = np.array(["alpha", "beta", "gamma", "delta"])
    columns: dict[str, Any] = {
        f"{prefix}_cat": pd.Categorical(rng.choice(cats[:3], n), categories=cats[:3]),
        "int64": rng.integers(-50, 50, n, dtype=np.int64),
        "float64": rng.normal(size=n),
        "bool": rng.random(n) < 0.5,
        "str_unique": np.array([f"{prefix}-{i}" for i in range(n)], dtype=object),
    }
    if full:
        with_na = rng.random(n) < 0.2
        ints = pd.array(rng.integers(0, 10, n), dtype="Int64")
        ints[with_na] = pd.NA
        bools = pd.array(rng.random(n) < 0.5, dtype="boolean")
        bools[~with_na & (rng.random(n) < 0.2)] = pd.NA
        strings = pd.array([f"s{i}" for i in range(n)], dtype="string")
        if n:
            strings[0] = pd.NA
        columns.update(
            {
                "cat_ordered": pd.Categorical(rng.choice(cats, n), categories=cats, ordered=True),
                "uint8": rng.integers(0, 255, n, dtype=np.uint8),
                "float32_nan": np.where(with_na, np.nan, rng.normal(size=n)).astype(np.float32),
                "nullable_int": ints,
                "nullable_bool": bools,
                "nullable_str": strings,
            }
        )
    return pd.DataFrame(columns, index=names)


def _uns(rng: np.random.Generator) -> dict:
    return {
        "int": 42,
        "float": 3.25,
        "bool": True,
        "str": "a string",
        "np_int": np.int64(7),
        "array": rng.integers(0, 10, 5),
        "float_array": rng.normal(size=(2, 3)),
        "str_array": np.array(["a", "bb", "ccc"]),
        "none": None,
        "sparse": sparse.csr_matrix(np.eye(3)),
        "df": pd.DataFrame({"x": [1, 2], "y": ["u", "v"]}, index=["r0", "r1"]),
        "nested": {
            "scalar": np.float32(1.5),
            "array": np.arange(4),
            "deeper": {"str": "deep", "list_like": np.array([1.0, 2.0])},
        },
    }


def gen_adata(
    shape: tuple[int, int] = (20, 15),
    *,
    seed: int = 0,
    X_type: str | None = "array",
    X_dtype: Any = np.float32,
    full_annotation: bool = True,
    obsm: bool = True,
    varm: bool = True,
    obsp: bool = True,
    varp: bool = True,
    layers: bool = True,
    uns: bool = True,
    raw: bool = False,
    anndata_class: type | None = None,
) -> Any:
    """A random AnnData exercising every element kind.

    Parameters
    ----------
    shape
        ``(n_obs, n_vars)``.
    seed
        Seed of the random generator (the result is deterministic).
    X_type
        ``"array"``, ``"csr"``, ``"csc"``, ``"csr_array"``, ``"csc_array"``, ``"dask"`` or None.
    X_dtype
        dtype of X and the layers.
    full_annotation
        Add ordered categorical, uint8, NaN-float and nullable Int64/boolean/string columns to
        obs and var (besides categorical, int64, float64, bool and str columns).
    obsm, varm, obsp, varp, layers, uns
        Whether to fill these elements (arrays, sparse matrices, DataFrames, nested dicts).
    raw
        Whether to set ``.raw`` (a copy with one extra variable column).
    anndata_class
        The class to build (default: ``annio._core.AnnData``).
    """
    from annio._core import AnnData

    cls = anndata_class or AnnData
    rng = np.random.default_rng(seed)
    n_obs, n_vars = shape
    obs_names = pd.Index([f"cell{i}" for i in range(n_obs)])
    var_names = pd.Index([f"gene{i}" for i in range(n_vars)])
    obs = _annotation(rng, obs_names, "obs", full=full_annotation)
    var = _annotation(rng, var_names, "var", full=full_annotation)
    elements: dict[str, Any] = {}
    if obsm:
        elements["obsm"] = {
            "array": rng.normal(size=(n_obs, 3)),
            "sparse": sparse.random(n_obs, 4, density=0.3, format="csr", random_state=seed),
            "df": pd.DataFrame(
                {"a": rng.integers(0, 5, n_obs), "b": rng.normal(size=n_obs),
                 "cat": pd.Categorical(rng.choice(["x", "y"], n_obs))},
                index=obs_names,
            ),
        }
    if varm:
        elements["varm"] = {
            "array": rng.normal(size=(n_vars, 2)),
            "sparse": sparse.random(n_vars, 3, density=0.3, format="csc", random_state=seed + 1),
        }
    if obsp:
        elements["obsp"] = {
            "array": rng.random((n_obs, n_obs)),
            "sparse": sparse.random(n_obs, n_obs, density=0.2, format="csr", random_state=seed + 2),
        }
    if varp:
        elements["varp"] = {"array": rng.random((n_vars, n_vars)),
                            "sparse": sparse.random(n_vars, n_vars, density=0.2, format="csr", random_state=seed + 3)}
    if layers:
        elements["layers"] = {
            "dense": _make_matrix(rng, shape, "array", X_dtype),
            "sparse": _make_matrix(rng, shape, "csr", X_dtype),
        }
    adata = cls(
        X=_make_matrix(rng, shape, X_type, X_dtype),
        obs=obs,
        var=var,
        uns=_uns(rng) if uns else None,
        **elements,
    )
    if raw:
        raw_var = var.copy()
        raw_var["raw_only"] = np.arange(n_vars)
        raw_X = _make_matrix(rng, shape, "csr" if X_type in (None, "dask") else X_type, X_dtype)
        adata.raw = cls(X=raw_X, obs=pd.DataFrame(index=obs_names), var=raw_var,
                        varm={"array": rng.normal(size=(n_vars, 2))})
    return adata
