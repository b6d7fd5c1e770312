"""Row selections of lazy arrays read only the selected rows (not whole dask blocks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from lazy_helpers import counting_store, make_adata, read_eager, write

from annio._lazy import read_lazy


def _chunks_read(store, prefix: str) -> set[str]:
    return {k for k in store.keys_read() if k.startswith(prefix) and "/c" in k[len(prefix) - 1 :]}


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3"])
def test_random_rows_read_only_their_chunks(tmp_path, fmt):
    adata = make_adata(4000, 30)
    path = write(adata, tmp_path / "d", fmt)
    store = counting_store(path)
    lazy = read_lazy(store)
    rows = np.array([5, 1700, 3999])  # three rows in three different dask blocks of 1000
    store.reset()
    sub = lazy[rows].X.compute()
    eager = read_eager(fmt, path)
    assert (sub != eager.X[rows]).nnz == 0
    data_chunks = {k for k in store.keys_read() if k.startswith("X/data/")}
    total = len([k for k in (path / "X" / "data").rglob("*") if k.is_file() and not k.name.startswith((".z", "zarr"))])
    assert 0 < len(data_chunks) <= 3 < total, (data_chunks, total)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3-sharded"])
def test_views_of_views_unsorted_and_repeated_rows(tmp_path, fmt):
    adata = make_adata(2500, 25)
    path = write(adata, tmp_path / "d", fmt)
    eager = read_eager(fmt, path)
    lazy = read_lazy(path)
    first = np.array([2400, 3, 3, 1200, 7, 2499, 0])
    second = np.array([6, 0, 2, 2])
    view = lazy[first][second]
    expected = eager[first][second]
    assert (view.X.compute() != expected.X).nnz == 0
    np.testing.assert_array_equal(view.layers["dense"].compute(), expected.layers["dense"])
    np.testing.assert_array_equal(view.obsm["X_pca"].compute(), expected.obsm["X_pca"])
    mask = np.zeros(lazy.n_obs, dtype=bool)
    mask[[10, 11, 2000]] = True
    assert (lazy[mask].X.compute() != eager[mask].X).nnz == 0
    mem = lazy[first].to_memory()
    assert sp.issparse(mem.X) and mem.n_obs == len(first)
    if hasattr(lazy, "file"):
        lazy.file.close()
