"""The direct path of ``concat_on_disk`` (stored sparse/dense parts copied block by block):
taken where it applies, and writing exactly what the lazy (dask) path writes."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

import annio
import annio._ops.concat_direct as direct
from annio.experimental import concat_on_disk, read_lazy
from annio.testing import assert_equal


def _part(seed: int, n_obs: int, genes: list[str], fmt: str = "csr", dense_layer: bool = True) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    dense = ((rng.random((n_obs, len(genes))) < 0.3) * rng.integers(1, 9, (n_obs, len(genes)))).astype(np.float32)
    a = annio.AnnData(X=sp.csr_matrix(dense).asformat(fmt), obs=pd.DataFrame(index=[f"c{seed}_{i}" for i in range(n_obs)]), var=pd.DataFrame(index=genes))
    a.layers["counts"] = sp.csr_matrix(dense.astype(np.int32)).asformat(fmt)
    if dense_layer:
        a.layers["dense"] = dense.astype(np.float64) * 2
    return a


GENES = [f"g{i}" for i in range(30)]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("direct")
    parts = [
        _part(0, 40, GENES),
        _part(1, 0, GENES[::-1]),
        _part(2, 25, GENES[3:] + ["extra"], dense_layer=False),
        _part(3, 33, GENES),
    ]
    out = []
    for i, a in enumerate(parts):
        p = d / (f"p{i}.h5ad" if i % 2 == 0 else f"p{i}.zarr")
        a.write_h5ad(p) if i % 2 == 0 else a.write_zarr(p)
        out.append(p)
    csc = d / "csc.h5ad"
    _part(4, 40, GENES, fmt="csc").write_h5ad(csc)
    return out, csc


def _walk(path) -> dict:
    """dtype, shape, chunks and values of every array under X and layers."""
    out = {}
    if str(path).endswith(".h5ad"):
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: out.__setitem__(n, (str(o.dtype), o.shape, o.chunks, o[()].tobytes())) if isinstance(o, h5py.Dataset) and n.startswith(("X", "layers")) else None)
        return out

    def rec(g, prefix):
        for k, v in g.members():
            if isinstance(v, zarr.Group):
                rec(v, f"{prefix}{k}/")
            elif prefix.startswith(("X", "layers")) or k == "X":
                out[prefix + k] = (str(v.dtype), v.shape, v.chunks, v.shards, v[...].tobytes())

    rec(zarr.open_group(path, mode="r"), "")
    return out


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = direct.substitute_direct

    def spy(*args, **kwargs):
        calls.append(original(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(direct, "substitute_direct", spy)
    return calls


@pytest.mark.parametrize(
    "options,ext,n_direct",
    [
        ({}, "h5ad", 3),  # parts 0, 1 (0 cells, genes reversed) and 3
        ({"join": "outer"}, "zarr", 3),
        ({"join": "outer", "fill_value": 0}, "h5ad", 3),
        ({"join": "outer", "fill_value": 7}, "h5ad", 1),  # sparse gaps with explicit 7s: lazy path; dense: direct
        ({"join": "inner", "label": "b", "index_unique": "-"}, "zarr", 2),  # "dense" not in every part
    ],
)
def test_direct_path_writes_what_the_lazy_path_writes(paths, tmp_path, monkeypatch, counted, options, ext, n_direct):
    inputs, _ = paths
    which = inputs if options else [inputs[0], inputs[3]]
    if not options:
        which = [inputs[0], inputs[1], inputs[3]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        eager = annio.concat([annio.read_h5ad(p) if str(p).endswith("h5ad") else annio.read_zarr(p) for p in which], **options)
        with annio.settings.override(zarr_write_format=3):
            concat_on_disk(which, tmp_path / f"direct.{ext}", max_loaded_elems=50, **options)
            monkeypatch.setattr(direct, "direct_element", lambda *a, **k: None)
            concat_on_disk(which, tmp_path / f"lazy.{ext}", max_loaded_elems=50, **options)
    assert counted[0] == n_direct
    assert _walk(tmp_path / f"direct.{ext}") == _walk(tmp_path / f"lazy.{ext}")
    read = annio.read_h5ad if ext == "h5ad" else annio.read_zarr
    assert_equal(read(tmp_path / f"direct.{ext}"), eager)


def test_axis_1_csc_is_direct_and_csr_on_axis_1_is_not(paths, tmp_path, counted):
    inputs, csc = paths
    concat_on_disk([csc, csc], tmp_path / "a.h5ad", axis=1, index_unique="-", join="inner")
    concat_on_disk([inputs[0], inputs[0]], tmp_path / "b.h5ad", axis=1, index_unique="-", join="inner")
    assert counted[0] == 3 and counted[1] == 1  # the dense layer only
    eager = annio.concat([annio.read_h5ad(csc)] * 2, axis=1, index_unique="-", join="inner")
    assert_equal(annio.read_h5ad(tmp_path / "a.h5ad"), eager)


def test_blocks_stay_within_the_budget(tmp_path):
    big = [_part(10, 3000, GENES), _part(11, 2000, GENES[::-1])]
    paths = [tmp_path / "b0.h5ad", tmp_path / "b1.h5ad"]
    for a, p in zip(big, paths, strict=True):
        a.write_h5ad(p)
    lazies = [read_lazy(p) for p in paths]
    result = annio.concat(lazies)
    budget = 2**16 // 4 // 8  # float32 data + int32 indices in a quarter of the smallest write budget
    with annio.settings.override(write_block_bytes=2**16):
        obj = direct.direct_element([a.X for a in lazies], result.X, 0, [a.n_obs for a in lazies],
                                    [a.var_names for a in lazies], result.var_names, None)
    assert isinstance(obj, direct.ConcatenatedSparse)
    rows = obj.chunks[0]
    starts = np.cumsum((0,) + rows[:-1])
    nnz = [obj[slice(int(s), int(s) + n)].nnz for s, n in zip(starts, rows, strict=True)]
    assert sum(rows) == result.n_obs and sum(nnz) == result.X.compute().nnz
    assert max(nnz) <= budget and len(rows) >= sum(nnz) // budget + 1
    assert_equal(sp.vstack([obj[slice(int(s), int(s) + n)] for s, n in zip(starts, rows, strict=True)]), result.X.compute())
    for a in lazies:
        a.file.close()


def test_selected_or_in_memory_inputs_take_the_lazy_path(paths):
    inputs, _ = paths
    lazies = [read_lazy(inputs[0]), read_lazy(inputs[3])]
    view = lazies[0][:10]
    result = annio.concat([view, lazies[1]])
    assert direct.direct_element([view.X, lazies[1].X], result.X, 0, [10, lazies[1].n_obs], [view.var_names, lazies[1].var_names], result.var_names, None) is None
    for a in lazies:
        a.file.close()


def test_zarr_shards_of_dense_arrays_stay_within_the_block_bound(tmp_path):
    """A zarr shard is encoded whole: one larger than the write block held a whole dense
    obsm in memory, so the peak grew with the data (regression)."""
    paths = []
    for i, n in enumerate((3000, 2000)):
        a = _part(20 + i, n, GENES, dense_layer=False)
        a.obsm["X_pca"] = np.random.default_rng(i).random((n, 50))
        paths.append(tmp_path / f"d{i}.h5ad")
        a.write_h5ad(paths[-1])
    block = 2**15 * 8  # bytes held per block for max_loaded_elems=2**15
    with annio.settings.override(chunk_target_bytes=2**14, zarr_write_format=3, auto_shard_zarr_v3=True):
        before = annio.settings.shard_target_bytes
        concat_on_disk(paths, tmp_path / "out.zarr", max_loaded_elems=2**15)
        assert annio.settings.shard_target_bytes == before
    pca = zarr.open_group(tmp_path / "out.zarr", mode="r")["obsm/X_pca"]
    assert pca.shards is not None and pca.shape == (5000, 50)
    assert pca.shards[0] * 50 * 8 <= block < pca.nbytes
    eager = annio.concat([annio.read_h5ad(p) for p in paths])
    assert_equal(annio.read_zarr(tmp_path / "out.zarr"), eager)
