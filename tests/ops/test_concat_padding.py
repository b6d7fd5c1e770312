"""Columns that a join pads with missing values, on the three paths (eager ``concat``, lazy
``concat`` + ``to_memory``, ``concat_on_disk`` read back):

* a string column missing from some parts (or from some genes of an outer join) becomes
  pandas' ``str`` dtype (NaN for missing), as anndata 0.13 gives it. anndata 0.12 (pandas 2)
  gives ``object`` strings mixed with NaN, which neither it nor annio can write without
  converting strings to categoricals; the result here is always writable.
* categorical columns whose parts share one set of categories keep the first part's order
  (anndata's behaviour), and a union of different sets is sorted naturally.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
from annio.experimental import concat_on_disk, read_lazy
from annio.testing import assert_equal

ad = pytest.importorskip("anndata")


def _part(genes, n, name, *, sym=True, text=True, seed=0):
    rng = np.random.default_rng(seed)
    var = pd.DataFrame({"num": np.arange(len(genes), dtype=np.float64)}, index=genes)
    if sym:
        var["sym"] = np.array([f"S{g}" for g in genes], dtype=object)
    obs = pd.DataFrame({"score": rng.random(n)}, index=[f"{name}{i}" for i in range(n)])
    if text:
        obs["text"] = np.array([f"{name}-t{i}" for i in range(n)], dtype=object)
    X = sp.random(n, len(genes), density=0.5, format="csr", dtype=np.float32, random_state=seed)
    return annio.AnnData(X=X, obs=obs, var=var)


@pytest.fixture(scope="module")
def padded_parts(tmp_path_factory):
    """Part 1 has neither the var column ``sym`` nor the obs column ``text``; the genes
    differ (an outer join pads both)."""
    d = tmp_path_factory.mktemp("padding")
    parts = [_part(["g1", "g2", "g3"], 3, "a", seed=1), _part(["g2", "g3", "g4"], 2, "b", sym=False, text=False, seed=2)]
    paths = [d / "p0.h5ad", d / "p1.zarr"]
    parts[0].write_h5ad(paths[0])
    parts[1].write_zarr(paths[1])
    return parts, paths


def _read(path):
    return annio.read_h5ad(path) if path.suffix == ".h5ad" else annio.read_zarr(path)


def _three_paths(paths, tmp_path, **options):
    eager = annio.concat([_read(p) for p in paths], **options)
    lazy = annio.concat([read_lazy(p) for p in paths], **options).to_memory()
    out = tmp_path / "out.h5ad"
    concat_on_disk(paths, out, **options)
    return eager, lazy, annio.read_h5ad(out)


def _is_padded_str(column):
    return isinstance(column.dtype, pd.StringDtype) and column.dtype.na_value is not pd.NA


def _values(column):
    return [None if pd.isna(v) else v for v in column]


def _writable(adata, tmp_path):
    """Written (h5ad and zarr, strings converted to categoricals or not) and read back with
    the same values."""
    for i, kwargs in enumerate(({}, {"convert_strings_to_categoricals": False})):
        for path in (tmp_path / f"w{i}.h5ad", tmp_path / f"w{i}.zarr"):
            copy = adata.copy()
            copy.write_h5ad(path, **kwargs) if path.suffix == ".h5ad" else copy.write_zarr(path, **kwargs)
            back = _read(path)
            for name in ("obs", "var"):
                for c in getattr(adata, name).columns:
                    assert _values(getattr(back, name)[c]) == _values(getattr(adata, name)[c]), (path, c)


def _oracle(paths, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.concat([ad.read_h5ad(p) if p.suffix == ".h5ad" else ad.read_zarr(p) for p in paths], **options)


@pytest.mark.parametrize("merge", ["same", "unique", "first"])
def test_padded_var_strings_are_str_and_writable(padded_parts, tmp_path, merge):
    _, paths = padded_parts
    eager, lazy, disk = _three_paths(paths, tmp_path, join="outer", merge=merge)
    theirs = _oracle(paths, join="outer", merge=merge)
    assert ("sym" in eager.var) == ("sym" in theirs.var) == (merge != "same")  # "same": part 1 lacks it
    if merge != "same":
        for result in (eager, lazy, disk):
            assert _is_padded_str(result.var["sym"]), result.var["sym"].dtype
            # the values of anndata (0.12: object with NaN, 0.13: str with NaN)
            assert _values(result.var["sym"]) == _values(theirs.var["sym"]) == ["Sg1", "Sg2", "Sg3", None]
    assert_equal(eager, lazy)
    assert_equal(eager, disk)
    _writable(eager, tmp_path)
    _writable(lazy, tmp_path)


def test_padded_obs_strings_are_str_and_writable(padded_parts, tmp_path):
    _, paths = padded_parts
    eager, lazy, disk = _three_paths(paths, tmp_path, join="outer")
    theirs = _oracle(paths, join="outer")
    for result in (eager, lazy, disk):
        assert _is_padded_str(result.obs["text"]), result.obs["text"].dtype
        assert _values(result.obs["text"]) == _values(theirs.obs["text"]) == ["a-t0", "a-t1", "a-t2", None, None]
    assert_equal(eager, lazy)
    assert_equal(eager, disk)
    _writable(eager, tmp_path)


def test_unpadded_strings_keep_their_dtype(padded_parts):
    """A string column in every part (nothing padded) keeps pandas' concatenation dtype
    (``object`` on pandas 2, ``str`` on pandas 3), as anndata's."""
    parts, _ = padded_parts
    first = parts[0]
    result = annio.concat([first, first.copy()], join="outer", merge="same", index_unique="-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ad.concat([ad.AnnData(obs=first.obs.copy(), var=first.var.copy(), X=first.X)] * 2, join="outer", merge="same", index_unique="-")
    assert result.obs["text"].dtype == theirs.obs["text"].dtype
    assert result.var["sym"].dtype == theirs.var["sym"].dtype


def _cat_part(cats, values, name):
    return annio.AnnData(obs=pd.DataFrame({"c": pd.Categorical(values, categories=cats)}, index=[f"{name}{i}" for i in range(len(values))]))


@pytest.mark.parametrize(
    "spec",
    [
        [(["b", "a"], ["a", "b"]), (["b", "a"], ["b"])],  # the same categories, unsorted
        [(["b", "a"], ["a", "b"]), (["a", "b"], ["b"])],  # the same set in another order
        [(["b", "a"], ["a"]), (["b", "a", "c"], ["c"])],  # different sets: a sorted union
        [(["x10", "x2"], ["x2"]), (["x1"], ["x1"])],  # natural order
    ],
)
def test_category_order_matches_anndata(spec, tmp_path):
    parts = [_cat_part(cats, vals, f"p{i}") for i, (cats, vals) in enumerate(spec)]
    ours = annio.concat(parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ad.concat([ad.AnnData(obs=p.obs.copy()) for p in parts])
    assert list(ours.obs["c"].cat.categories) == list(theirs.obs["c"].cat.categories)
    assert ours.obs["c"].tolist() == theirs.obs["c"].tolist()
    paths = []
    for i, p in enumerate(parts):
        paths.append(tmp_path / f"c{i}.h5ad")
        p.write_h5ad(paths[-1])
    lazy = annio.concat([read_lazy(p) for p in paths]).to_memory()
    assert list(lazy.obs["c"].cat.categories) == list(ours.obs["c"].cat.categories)
    concat_on_disk(paths, tmp_path / "out.h5ad")
    disk = annio.read_h5ad(tmp_path / "out.h5ad")
    assert list(disk.obs["c"].cat.categories) == list(ours.obs["c"].cat.categories)
