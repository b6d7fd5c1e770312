"""read_lazy: what it returns, what it reads when opening, subsetting and materialising."""

from __future__ import annotations

import dask.array as da
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr
from lazy_helpers import counting_store, make_adata, read_eager, write

import annio
from annio._lazy import Dataset2D, read_lazy


def _compute(x):
    return x.compute() if isinstance(x, da.Array) else x


def test_read_lazy_equals_eager(stored):
    fmt, path = stored
    eager = read_eager(fmt, path)
    lazy = read_lazy(path)
    try:
        assert isinstance(lazy.X, da.Array) and isinstance(lazy.X._meta, sp.csr_matrix)
        assert isinstance(lazy.obs, Dataset2D) and isinstance(lazy.var, Dataset2D)
        assert isinstance(lazy.layers["dense"], da.Array) and isinstance(lazy.obsm["X_pca"], da.Array)
        assert lazy.shape == eager.shape
        assert lazy.uns["note"] == "hello"
        np.testing.assert_array_equal(_compute(lazy.uns["nested"]["v"]), eager.uns["nested"]["v"])
        assert (lazy.X.compute() != eager.X).nnz == 0
        np.testing.assert_array_equal(lazy.layers["dense"].compute(), eager.layers["dense"])
        np.testing.assert_array_equal(lazy.obsm["X_pca"].compute(), eager.obsm["X_pca"])
        pd.testing.assert_frame_equal(lazy.obs.to_memory(), eager.obs)
        pd.testing.assert_frame_equal(lazy.var.to_memory(), eager.var)
        pd.testing.assert_index_equal(lazy.obs_names, eager.obs_names)
    finally:
        lazy.file.close()


def test_h5ad_file_handle(stored_h5ad):
    fmt, path = stored_h5ad
    lazy = read_lazy(path)
    assert lazy.file.is_open and not lazy.isbacked
    lazy.file.close()
    assert not lazy.file.is_open
    assert lazy[:5].X.compute().shape == (5, 40)  # tasks reopen the file by path
    with h5py.File(path, "r") as f:  # an open file stays the caller's
        lazy = read_lazy(f)
        lazy.file.close()
        assert f.id.valid


def test_load_annotation_index_false(stored):
    fmt, path = stored
    eager = read_eager(fmt, path)
    lazy = read_lazy(path, load_annotation_index=False)
    try:
        assert list(lazy.obs_names[:2]) == ["0", "1"]
        pd.testing.assert_frame_equal(lazy.obs.to_memory(), eager.obs)
    finally:
        lazy.file.close()


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3-sharded"])
def test_open_reads_only_metadata_and_indexes(tmp_path, fmt):
    path = write(make_adata(3000, 10), tmp_path / "d", fmt)
    store = counting_store(path)
    lazy = read_lazy(store)
    keys = store.keys_read()
    metadata = [k for k in keys if k.endswith(("zarr.json", ".zmetadata", ".zgroup", ".zattrs", ".zarray"))]
    data = sorted(set(keys) - set(metadata))
    assert len(metadata) <= 4  # one consolidated read (zarr probes v3 and v2 names concurrently)
    assert all(k.startswith(("obs/cell_id/", "var/_index/", "uns/note/", "uns/note/c")) for k in data), data  # indexes, uns scalars
    # subsetting reads nothing
    store.reset()
    view = lazy[np.arange(2600, 2650), ["g1", "g3"]]
    view2 = view[10:20]
    assert view2.shape == (10, 2)
    assert store.log == []
    # materialising reads only the chunks holding the selected rows
    obs = view2.obs.to_memory()
    dense = view2.layers["dense"].compute()
    X = view2.X.compute()
    eager = annio.io.read_zarr(path)[np.arange(2600, 2650), ["g1", "g3"]][10:20]
    pd.testing.assert_frame_equal(obs, pd.DataFrame(eager.obs))
    np.testing.assert_array_equal(dense, eager.layers["dense"])
    assert (X != eager.X).nnz == 0
    keys = set(store.keys_read())
    g = zarr.open_group(path)
    for name in ("obs/zeta", "obs/alpha", "layers/dense", "X/indptr", "X/data"):
        assert any(k.startswith(name + "/") for k in keys), name
        if fmt == "zarr2":
            first = f"{name}/0" + (".0" if name == "layers/dense" else "")
            assert first not in keys, (first, sorted(keys))
        elif name == "layers/dense":
            assert "layers/dense/c/0/0" not in keys
        else:  # 1-D arrays are one shard: only the shard index and the needed chunks are read
            reads = [r for k, r in store.log if k.startswith(name + "/")]
            assert all(r is not None for r in reads), reads
            n_chunks = -(-g[name].shape[0] // g[name].chunks[0])
            chunk_reads = [r for r in reads if type(r).__name__ == "RangeByteRequest"]
            assert len(chunk_reads) < n_chunks, (name, reads)
    assert not any(k.startswith("obsm/") or k.startswith("var/mean") for k in keys)
    dense_grid = g["layers/dense"].shards or g["layers/dense"].chunks
    touched = {k for k in keys if k.startswith("layers/dense/")}
    assert len(touched) == 1, (touched, dense_grid)  # rows 2610..2620 sit in one storage block


def test_to_memory_materialises_everything(stored):
    fmt, path = stored
    eager = read_eager(fmt, path)
    lazy = read_lazy(path)
    mem = lazy[5:50, :7].to_memory()
    assert isinstance(mem.obs, pd.DataFrame)
    assert sp.issparse(mem.X) and isinstance(mem.layers["dense"], np.ndarray)
    assert (mem.X != eager[5:50, :7].X).nnz == 0
    lazy.file.close()


def test_not_consolidated_warns(tmp_path):
    path = write(make_adata(50, 5), tmp_path / "d", "zarr2", consolidate_metadata=False)
    with pytest.warns(UserWarning, match="Did not read zarr as consolidated"):
        lazy = read_lazy(path)
    assert isinstance(lazy.obs, Dataset2D)
    pd.testing.assert_frame_equal(lazy.obs.to_memory(), annio.io.read_zarr(path).obs)
