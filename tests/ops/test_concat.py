"""``annio.concat`` (eager and lazy) and ``concat_on_disk``: the three paths agree with each
other on a grid of options and element types, and with real anndata's in-memory concat."""

from __future__ import annotations

import copy
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
from annio.experimental import concat_on_disk, read_lazy
from annio.testing import assert_equal

ad = pytest.importorskip("anndata")


def make_part(seed: int, n_obs: int, genes: list[str], *, sparse_fmt: str | None = "csr", sparray: bool = False, layer: bool = True) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    n_vars = len(genes)
    dense = (rng.random((n_obs, n_vars)) < 0.3) * rng.integers(1, 9, (n_obs, n_vars))
    dense = dense.astype(np.float32)
    if sparse_fmt is None:
        X: object = dense
    else:
        X = (sp.csr_array if sparray else sp.csr_matrix)(dense)
        X = X.asformat(sparse_fmt)
    cats = [["x10", "x2", "b"], ["a", "x1", "x2"], ["b", "z3"]][seed % 3]
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(cats, n_obs), categories=cats),
            "num": rng.random(n_obs),
            "int": np.arange(n_obs, dtype=np.int64),
            "flag": rng.random(n_obs) > 0.5,
            "nint": pd.array([i if i % 3 else None for i in range(n_obs)], dtype="Int64"),
            "nbool": pd.array(rng.random(n_obs) > 0.5, dtype="boolean"),
            "text": [f"t{seed}_{i}" for i in range(n_obs)],
        },
        index=[f"cell{seed}_{i}" for i in range(n_obs)],
    )
    if seed % 2:
        obs[f"only{seed}"] = np.arange(n_obs, dtype=np.int64)
    var = pd.DataFrame({"gene_id": [f"id_{g}" for g in genes], "score": np.arange(n_vars, dtype=np.float64)}, index=genes)
    a = annio.AnnData(X=X, obs=obs, var=var)
    if layer:
        a.layers["counts"] = sp.csr_matrix(dense)
        a.layers["dense"] = dense * 2
    a.obsm["X_pca"] = rng.random((n_obs, 3 + seed % 2))
    a.obsm["sp"] = sp.csr_matrix(rng.random((n_obs, 2)) > 0.5, dtype=np.float64)
    a.obsm["frame"] = pd.DataFrame({"u": np.arange(n_obs, dtype=np.float64)}, index=obs.index)
    a.varm["loadings"] = np.arange(n_vars * 2, dtype=np.float64).reshape(n_vars, 2)
    a.obsp["dist"] = sp.csr_matrix(np.eye(n_obs))
    a.varp["corr"] = np.eye(n_vars)
    a.uns = {"common": 1, "differs": seed, "nested": {"same": "x", f"own{seed}": seed}, "arr": np.arange(3)}
    a.raw = a
    return a


GENES = [f"g{i}" for i in range(12)]


@pytest.fixture(scope="module")
def parts():
    return [
        make_part(0, 7, GENES),
        make_part(1, 5, GENES[2:] + ["gx"], sparse_fmt="csc", layer=False),
        make_part(2, 0, GENES[::-1], sparse_fmt="csr", sparray=True),
        make_part(3, 6, GENES[1:], sparse_fmt=None),
    ]


@pytest.fixture(scope="module")
def stored(parts, tmp_path_factory):
    """The parts written as h5ad, zarr v2, zarr v3 and h5ad."""
    d = tmp_path_factory.mktemp("concat_parts")
    paths = []
    for i, a in enumerate(parts):
        if i % 3 == 0:
            p = d / f"p{i}.h5ad"
            a.write_h5ad(p)
        else:
            p = d / f"p{i}.zarr"
            with annio.settings.override(zarr_write_format=2 if i == 1 else 3):
                a.write_zarr(p)
        paths.append(p)
    return paths


def eager_reads(paths):
    return [annio.read_h5ad(p) if str(p).endswith(".h5ad") else annio.read_zarr(p) for p in paths]


def lazy_reads(paths):
    return [read_lazy(p) for p in paths]


def read_any(p):
    return annio.read_h5ad(p) if str(p).endswith(".h5ad") else annio.read_zarr(p)


OPTIONS = [
    {"axis": 0, "join": "inner"},
    {"axis": 0, "join": "outer", "label": "batch", "index_unique": "-", "merge": "same", "uns_merge": "same", "pairwise": True},
    {"axis": 0, "join": "outer", "merge": "unique", "uns_merge": "unique", "fill_value": 0},
    {"axis": 0, "join": "inner", "merge": "first", "uns_merge": "first", "keys": ["a", "b", "c", "d"], "label": "src"},
    {"axis": 0, "join": "outer", "merge": "only", "uns_merge": "only", "fill_value": -1},
    {"axis": "var", "join": "inner", "merge": "same", "label": "batch", "pairwise": True},
    {"axis": 1, "join": "outer", "merge": "first", "index_unique": "_", "uns_merge": "same"},
]


def _ids(o):
    return ",".join(f"{k}={v}" for k, v in o.items())


@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
def test_three_paths_agree(stored, options, tmp_path):
    options = dict(options)
    paths = stored
    if options.get("axis") in (1, "var"):  # concatenating variables needs the same cells
        paths = [stored[0], stored[0], stored[0], stored[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        eager = annio.concat(eager_reads(paths), **options)
        lazy = annio.concat(lazy_reads(paths), **options)
        assert type(lazy.obs).__name__ == "Dataset2D" or options.get("axis") in (1, "var")
        assert_equal(lazy.to_memory(), eager)
        out = tmp_path / ("out.h5ad" if len(options) % 2 else "out.zarr")
        concat_on_disk(paths, out, **options)
    assert_equal(read_any(out), eager)


def test_dtypes_survive(parts, stored):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = annio.concat(lazy_reads(stored), join="outer").to_memory()
        eager = annio.concat(eager_reads(stored), join="outer")
    obs = result.obs
    # exactly the eager dtypes (pandas 3 tells "str" from "string" and keeps object columns)
    assert {c: repr(d) for c, d in obs.dtypes.items()} == {c: repr(d) for c, d in eager.obs.dtypes.items()}
    assert obs.index.dtype == eager.obs.index.dtype
    assert isinstance(obs["cat"].dtype, pd.CategoricalDtype)
    assert list(obs["cat"].cat.categories) == ["a", "b", "x1", "x2", "x10", "z3"]  # union, natural order
    assert obs["nint"].dtype == "Int64" and obs["nbool"].dtype == "boolean"
    assert obs["only1"].dtype == np.float64  # missing in other parts: NaN-padded like pandas
    assert sp.issparse(result.layers["counts"])  # missing in part 1: padded sparse, stays sparse
    assert result.layers["counts"][7:12].nnz == 0


def _oracle_inputs(paths):
    return [ad.read_h5ad(p) if str(p).endswith(".h5ad") else ad.read_zarr(p) for p in paths]


def _as_padded_strings(theirs, ours):
    """anndata 0.12 (pandas 2) pads string columns into ``object`` with NaN, which it cannot
    write; annio gives pandas' ``str`` dtype there, as anndata 0.13 does (pandas 3): the
    oracle's columns are cast to it where that is the only difference."""
    out = theirs.copy()
    for c in out.columns:
        if c in ours.columns and isinstance(ours[c].dtype, pd.StringDtype) and out[c].dtype == object:
            out[c] = out[c].astype(ours[c].dtype)
    return out


def _compare_with_anndata(ours, theirs, skip=()):
    assert ours.shape == theirs.shape
    assert list(ours.obs_names) == list(theirs.obs_names)
    assert list(ours.var_names) == list(theirs.var_names)
    for name in ("obs", "var"):
        if name not in skip:
            pd.testing.assert_frame_equal(getattr(ours, name), _as_padded_strings(getattr(theirs, name), getattr(ours, name)), check_column_type=False, check_index_type=False)
    assert_equal(ours.X, theirs.X)
    for attr in ("layers", "obsm", "varm", "obsp", "varp"):
        # anndata 0.13 (like annio) lists X as the layer ``None``: X is compared above
        theirs_keys = sorted(k for k in getattr(theirs, attr).keys() if k is not None)
        assert sorted(k for k in getattr(ours, attr).keys() if k is not None) == theirs_keys, attr
        for k in theirs_keys:
            mine, other = getattr(ours, attr)[k], getattr(theirs, attr)[k]
            if isinstance(other, pd.DataFrame):
                pd.testing.assert_frame_equal(mine, other, check_dtype=False)
            else:
                assert_equal(mine, other)
    assert_equal(dict(ours.uns), dict(theirs.uns))


ORACLE = [
    {"join": "inner", "label": "batch", "merge": "same", "uns_merge": "same", "index_unique": "-"},
    {"join": "outer", "merge": "unique", "uns_merge": "unique"},
    {"join": "outer", "merge": "first", "uns_merge": "first", "pairwise": True, "keys": ["a", "b", "c"], "label": "k"},
    {"join": "inner", "merge": "only", "uns_merge": "only", "axis": 1},
]


@pytest.mark.parametrize("options", ORACLE, ids=_ids)
def test_matches_anndata(stored, options):
    paths = [stored[0], stored[1], stored[3]]  # the 0-cell part is checked separately
    if options.get("axis") == 1:
        paths = [stored[0], stored[0], stored[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = annio.concat(eager_reads(paths), **options)
        theirs = ad.concat(_oracle_inputs(paths), **options)
    # anndata pads missing obs columns with NaN but (unlike here) keeps an all-int column int
    _compare_with_anndata(ours, theirs)


def test_matches_anndata_zero_cells_and_categories(stored):
    paths = [stored[0], stored[2], stored[3]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = annio.concat(eager_reads(paths), join="outer", label="b")
        theirs = ad.concat(_oracle_inputs(paths), join="outer", label="b")
    pd.testing.assert_frame_equal(ours.obs, theirs.obs)
    assert_equal(ours.X, theirs.X)


def test_ordered_categories_that_differ_become_object():
    a = annio.AnnData(obs=pd.DataFrame({"c": pd.Categorical(["x", "y"], ordered=True)}, index=["a", "b"]))
    b = annio.AnnData(obs=pd.DataFrame({"c": pd.Categorical(["y", "z"], ordered=True)}, index=["c", "d"]))
    same = annio.AnnData(obs=pd.DataFrame({"c": pd.Categorical(["y", "x"], categories=["x", "y"], ordered=True)}, index=["e", "f"]))
    ours = annio.concat([a, b]).obs["c"]
    kept = annio.concat([a, same]).obs["c"]
    assert kept.dtype == pd.CategoricalDtype(["x", "y"], ordered=True)
    theirs = ad.concat([ad.AnnData(obs=x.obs) for x in (a, b)]).obs["c"]
    # the values' dtype: object with pandas 2, str with pandas 3
    assert not isinstance(theirs.dtype, pd.CategoricalDtype)
    pd.testing.assert_series_equal(ours, theirs, check_index_type=False)
    lazy = annio.concat([_stored_lazy(x, i) for i, x in enumerate((a, b))]).to_memory().obs["c"]
    pd.testing.assert_series_equal(lazy, ours, check_index_type=False)


_TMP: list = []


def _stored_lazy(adata, i):
    import tempfile

    d = tempfile.mkdtemp()
    _TMP.append(d)
    path = os.path.join(d, f"p{i}.h5ad")
    adata.write_h5ad(path)
    return read_lazy(path)


def test_default_join_drops_x_missing_in_some_inputs_with_a_warning():
    """anndata 0.13: some inputs without X and no explicit ``join`` → X dropped, UserWarning;
    an explicit inner join drops it silently, an outer join pads it."""
    idx = lambda *n: pd.DataFrame(index=list(n))
    a = annio.AnnData(np.ones((2, 2)), obs=idx("a", "b"), var=idx("x", "y"))
    a.layers["L"] = np.ones((2, 2))
    b = annio.AnnData(obs=idx("c", "d"), var=idx("x", "y"))
    with pytest.warns(UserWarning, match="join"):
        dropped = annio.concat([a, b])
    assert dropped.X is None and list(dropped.layers.keys()) in ([], [None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert annio.concat([a, b], join="inner").X is None
        assert annio.concat([a, a.copy()], index_unique="-").X is not None
    padded = annio.concat([a, b], join="outer")
    np.testing.assert_array_equal(padded.X[:2], np.ones((2, 2)))
    assert np.isnan(padded.X[2:]).all() and "L" in padded.layers
    from importlib.metadata import version

    if int(version("anndata").split(".")[1]) >= 13:  # 0.12 raised NotImplementedError here
        to_ad = lambda x: ad.AnnData(x.X, obs=x.obs, var=x.var, layers=dict(x.layers.items()) if x.X is not None else None)
        with pytest.warns(UserWarning, match="Xs will be dropped"):
            theirs = ad.concat([to_ad(a), to_ad(b)])
        assert theirs.X is None
        theirs = ad.concat([to_ad(a), to_ad(b)], join="outer")
        assert_equal(padded.X, theirs.X)
        assert_equal(padded.layers["L"], theirs.layers["L"])


def test_bad_arguments_raise_like_anndata(parts):
    a, b = parts[0], parts[3]
    for kwargs, err in [({"axis": 2}, ValueError), ({"join": "left"}, ValueError), ({"merge": "bogus"}, ValueError)]:
        with pytest.raises(err):
            annio.concat([a, b], **kwargs)
        if "merge" not in kwargs:
            with pytest.raises(err):
                ad.concat([ad.AnnData(np.zeros((1, 1)))] * 2, **kwargs)
    with pytest.raises(TypeError, match="both mapping keys"):
        annio.concat({"a": a, "b": b}, keys=["x", "y"])
    with pytest.raises(ValueError, match="No objects"):
        annio.concat([])
    with pytest.raises(ValueError, match="No objects"):
        concat_on_disk([], "x.h5ad")
    with pytest.raises(TypeError):
        annio.concat([a, "not an AnnData"])


def test_mapping_keys_and_duplicates_and_inputs_untouched(parts):
    a = parts[0]
    before = copy.deepcopy(a)
    with pytest.warns(UserWarning):  # duplicate obs names: anndata's uniqueness warning
        result = annio.concat({"x": a, "y": a}, label="origin", merge="same", uns_merge="same")
    assert list(result.obs["origin"].cat.categories) == ["x", "y"]
    assert result.n_obs == 2 * a.n_obs
    assert_equal(a, before)
    assert_equal(result.var, a.var)


def test_some_raw_warns(parts):
    a = parts[0].copy()
    b = parts[3].copy()
    b.raw = None
    with pytest.warns(UserWarning, match="Only some AnnData objects have `.raw`"):
        assert annio.concat([a, b]).raw is None


def test_mixed_dense_sparse_and_dask(parts):
    import dask.array as da

    a = parts[0].copy()
    b = parts[3].copy()  # dense X
    a.X = sp.csr_array(a.X)
    result = annio.concat([a, b], join="outer")
    assert isinstance(result.X, sp.csr_array)
    theirs = ad.concat([ad.AnnData(a.X, obs=pd.DataFrame(index=a.obs_names), var=pd.DataFrame(index=a.var_names)),
                        ad.AnnData(b.X, obs=pd.DataFrame(index=b.obs_names), var=pd.DataFrame(index=b.var_names))], join="outer")
    assert_equal(result.X, theirs.X)
    c = b.copy()
    c.X = da.from_array(np.asarray(b.X), chunks=(2, -1))
    lazy_x = annio.concat([b, c], join="outer").X
    assert type(lazy_x).__module__.startswith("dask")
    assert_equal(np.asarray(lazy_x.compute()), np.concatenate([b.X, b.X]))


def _corrupt(array_dir):
    """Overwrite the chunk files of a zarr v2 array with garbage (missing chunks would read
    as the fill value)."""
    for name in os.listdir(array_dir):
        if not name.startswith("."):
            (array_dir / name).write_bytes(b"not a chunk")


def test_lazy_concat_reads_nothing_until_to_memory(stored, tmp_path):
    src = tmp_path / "copy.zarr"
    shutil.copytree(stored[1], src)
    lazy = read_lazy(src)
    # the data of an obs column and of X are gone: building the concat must not need them
    _corrupt(src / "obs" / "num")
    _corrupt(src / "X" / "data")
    result = annio.concat([lazy, read_lazy(stored[3])], join="outer", label="batch")
    assert result.n_obs == lazy.n_obs + 6
    assert result.obs["cat"].dtype is not None
    with pytest.raises(Exception):
        result.to_memory()


def test_on_disk_atomic_sharded_progress(stored, tmp_path):
    out = tmp_path / "out.zarr"
    calls = []
    with annio.settings.override(zarr_write_format=3):
        concat_on_disk(stored, out, join="outer", progress=lambda done, total: calls.append((done, total)), max_loaded_elems=10_000)
    assert calls and calls[-1][0] == calls[-1][1] > 0
    import zarr

    group = zarr.open_group(out, mode="r")
    assert group["X"]["data"].shards is not None
    # a failing run leaves an existing output untouched and no temporary files
    broken = tmp_path / "broken.zarr"
    shutil.copytree(stored[1], broken)
    _corrupt(broken / "X" / "indices")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(Exception):
        concat_on_disk([stored[0], broken], out, join="outer")
    assert sorted(os.listdir(tmp_path)) == before
    assert_equal(annio.read_zarr(out), annio.concat(eager_reads(stored), join="outer"))


def test_on_disk_single_input_applies_label_and_groups(stored, tmp_path):
    import h5py

    out = tmp_path / "one.h5ad"
    concat_on_disk({"only": stored[0]}, out, label="batch", index_unique="-")
    expected = annio.concat({"only": annio.read_h5ad(stored[0])}, label="batch", index_unique="-")
    assert_equal(annio.read_h5ad(out), expected)
    assert annio.read_h5ad(out).obs_names[0].endswith("-only")
    with h5py.File(tmp_path / "g.h5ad", "w") as f:
        concat_on_disk([stored[0], stored[3]], f)
    assert_equal(annio.read_h5ad(tmp_path / "g.h5ad"), annio.concat(eager_reads([stored[0], stored[3]])))


def test_anndata_inputs_are_accepted_without_copying():
    import anndata as ad
    import scipy.sparse as sp

    parts = []
    for i in range(2):
        X = sp.random(5, 4, density=0.5, format="csr", random_state=i, dtype=np.float32)
        parts.append(ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}_{j}" for j in range(5)]),
                                var=pd.DataFrame(index=[f"g{j}" for j in range(4)])))
    got = annio.concat(parts, label="batch")
    assert isinstance(got, annio.AnnData)
    assert got.shape == (10, 4) and list(got.obs["batch"].cat.categories) == ["0", "1"]
    expected = ad.concat(parts, label="batch")
    np.testing.assert_array_equal(got.X.toarray(), expected.X.toarray())
    assert list(got.obs_names) == list(expected.obs_names)
