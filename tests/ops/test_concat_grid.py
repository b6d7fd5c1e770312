"""A hypothesis grid over concat's options and element types: eager, lazy → ``to_memory``
and ``concat_on_disk`` → read agree; awkward arrays in obsm through all three paths."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annio
from annio.experimental import concat_on_disk, read_lazy
from annio.testing import assert_equal

ak = pytest.importorskip("awkward")

GENES = [f"g{i}" for i in range(8)]
KINDS = ("csr", "csc", "dense", "csr_array")


def _part(seed: int, n_obs: int, genes: list[str], kind: str, extra_layer: bool) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    dense = ((rng.random((n_obs, len(genes))) < 0.4) * rng.integers(1, 5, (n_obs, len(genes)))).astype(np.float32)
    X = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "csr_array": sp.csr_array, "dense": np.asarray}[kind](dense)
    obs = pd.DataFrame(
        {"cat": pd.Categorical(rng.choice(["a", f"b{seed % 2}"], n_obs)), "f": rng.random(n_obs), "nb": pd.array(rng.random(n_obs) > 0.5, dtype="boolean")},
        index=[f"c{seed}_{i}" for i in range(n_obs)],
    )
    if seed % 2:
        obs[f"only{seed}"] = np.arange(n_obs)
    # (a string var column would be NaN-padded by an outer join + merge: such object columns
    # cannot be written, on disk or by anndata, so the grid keeps var numeric)
    var = pd.DataFrame({"w": np.arange(len(genes), dtype=float)}, index=genes)
    a = annio.AnnData(X=X, obs=obs, var=var)
    a.layers["counts"] = sp.csr_matrix(dense)
    if extra_layer:
        a.layers["dense"] = dense * 2.0
    a.obsm["pca"] = rng.random((n_obs, 2 + seed % 2))
    a.varm["load"] = rng.random((len(genes), 2))
    a.obsp["d"] = sp.csr_matrix(np.eye(n_obs))
    a.uns = {"k": 1, "s": seed}
    return a


def _write(a: annio.AnnData, path) -> None:
    if str(path).endswith(".h5ad"):
        a.write_h5ad(path)
    else:
        a.write_zarr(path)


def _read(path) -> annio.AnnData:
    return annio.read_h5ad(path) if str(path).endswith(".h5ad") else annio.read_zarr(path)


@st.composite
def grid(draw):
    n = draw(st.integers(2, 3))
    axis = draw(st.sampled_from([0, 1]))
    parts = []
    for i in range(n):
        genes = GENES if axis == 1 else draw(st.sampled_from([GENES, GENES[::-1], GENES[1:] + ["gx"]]))
        parts.append((i, draw(st.sampled_from([0, 3, 6])) if axis == 0 else 5, genes, draw(st.sampled_from(KINDS)), draw(st.booleans()), draw(st.sampled_from(["h5ad", "zarr"]))))
    options = {
        "axis": axis,
        "join": draw(st.sampled_from(["inner", "outer"])),
        "merge": draw(st.sampled_from([None, "same", "unique", "first", "only"])),
        "uns_merge": draw(st.sampled_from([None, "same", "first"])),
        "fill_value": draw(st.sampled_from([None, 0, -1])),
        "pairwise": draw(st.booleans()),
    }
    if draw(st.booleans()):
        options["label"] = "batch"
        if draw(st.booleans()):
            options["keys"] = [f"k{i}" for i in range(n)]
    if axis == 1 or draw(st.booleans()):
        options["index_unique"] = "-"
    return parts, options


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=grid())
def test_three_paths_agree_on_a_grid(tmp_path_factory, case):
    specs, options = case
    d = tmp_path_factory.mktemp("grid")
    paths = []
    for seed, n_obs, genes, kind, extra, ext in specs:
        a = _part(seed if options["axis"] == 0 else 0, n_obs, genes, kind, extra)
        if options["axis"] == 1:  # the same cells, different genes
            a.var_names = [f"{g}_{seed}" for g in a.var_names]
        p = d / f"p{seed}.{ext}"
        _write(a, p)
        paths.append(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = annio.concat([_read(p) for p in paths], **options)
        lazies = [read_lazy(p) for p in paths]
        assert_equal(annio.concat(lazies, **options).to_memory(), eager)
        out = d / ("out.h5ad" if len(specs) % 2 else "out.zarr")
        concat_on_disk(paths, out, **options)
    assert_equal(_read(out), eager)
    for a in lazies:
        a.file.close()


def test_awkward_in_obsm_through_the_three_paths(tmp_path):
    paths = []
    expected_rows = []
    for i, n in enumerate([4, 0, 3]):
        a = _part(i, n, GENES, "csr", False)
        rows = [[float(j)] * (j % 3) for j in range(n)]
        a.obsm["ragged"] = ak.Array(rows) if n else ak.Array([[1.0]])[:0]
        expected_rows += rows
        p = tmp_path / (f"p{i}.h5ad" if i % 2 == 0 else f"p{i}.zarr")
        _write(a, p)
        paths.append(p)
    eager = annio.concat([_read(p) for p in paths], join="inner")
    assert ak.to_list(eager.obsm["ragged"]) == expected_rows
    lazy = annio.concat([read_lazy(p) for p in paths], join="inner").to_memory()
    assert_equal(lazy, eager)
    assert ak.to_list(lazy.obsm["ragged"]) == expected_rows
    for ext in ("h5ad", "zarr"):
        out = tmp_path / f"out.{ext}"
        concat_on_disk(paths, out, join="inner")
        back = _read(out)
        assert_equal(back, eager)
        assert ak.to_list(back.obsm["ragged"]) == expected_rows
