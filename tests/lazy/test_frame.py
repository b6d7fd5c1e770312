"""The lazy data frame: column order, dtypes, to_memory equal to eager reads, laziness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from lazy_helpers import counting_store, make_adata, open_group, read_eager, write

import annio
from annio._lazy import Dataset2D, LazyCategoricalDtype, read_elem_lazy
from annio.io import read_elem


def drop_unused(df: pd.DataFrame) -> pd.DataFrame:
    """What an eager view does to categorical columns."""
    df = df.copy()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].cat.remove_unused_categories()
    return df


def test_columns_dtypes_to_memory(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    frame = read_elem_lazy(g["obs"])
    eager = read_elem(g["obs"])
    assert isinstance(frame, Dataset2D) and frame._annio_lazy_frame
    assert list(frame.columns) == list(eager.columns) == ["zeta", "alpha", "cell_type", "flag", "count", "ok", "label", "name"]
    assert frame.shape == eager.shape and len(frame) == len(eager)
    pd.testing.assert_index_equal(frame.index, eager.index)
    for col in eager.columns:
        assert frame.dtypes[col] == eager.dtypes[col], col
    assert isinstance(frame.dtypes["cell_type"], LazyCategoricalDtype)
    pd.testing.assert_frame_equal(frame.to_memory(), eager)
    pd.testing.assert_frame_equal(frame.to_pandas(), eager)
    assert list(eager["cell_type"].cat.categories) == ["c", "b", "a", "unused"]
    assert isinstance(frame.ds, xr.Dataset)


def test_getitem_and_iloc(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    frame = read_elem_lazy(g["obs"])
    eager = read_elem(g["obs"])
    col = frame["alpha"]
    assert isinstance(col, xr.DataArray)
    np.testing.assert_array_equal(col.compute().values, eager["alpha"].to_numpy())
    sub = frame[["label", "zeta"]]
    assert list(sub.columns) == ["label", "zeta"]
    pd.testing.assert_frame_equal(sub.to_memory(), eager[["label", "zeta"]])
    idx = np.array([590, 3, 3, 100, 7])
    got = frame.iloc[idx].to_memory()
    expected = drop_unused(eager.iloc[idx])
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(frame.iloc[10:20, [0, 2]].to_memory(), drop_unused(eager.iloc[10:20, [0, 2]]))
    mask = eager["flag"].to_numpy()
    assert frame.iloc[mask].shape == (mask.sum(), 8)
    with annio.settings.override(remove_unused_categories=False):
        kept = frame.iloc[idx].to_memory()
    assert list(kept["cell_type"].cat.categories) == ["c", "b", "a", "unused"]
    # a full selection is not a subset: categories stay as stored
    assert list(frame.iloc[:].to_memory()["cell_type"].cat.categories) == ["c", "b", "a", "unused"]


def test_views_match_eager_views(stored):
    fmt, path = stored
    adata = read_eager(fmt, path)
    lazy = annio._lazy.read_lazy(path)
    try:
        idx1 = np.arange(0, 600, 3)
        idx2 = np.array([5, 1, 80, 120])
        got = lazy[idx1][idx2, 3:9].obs.to_memory()
        expected = adata[idx1][idx2, 3:9].obs
        pd.testing.assert_frame_equal(got, pd.DataFrame(expected))
    finally:
        lazy.file.close()


def test_categorical_dtype_is_lazy(tmp_path):
    path = write(make_adata(200, 5), tmp_path / "d", "zarr3-sharded")
    store = counting_store(path)
    frame = read_elem_lazy(zarr.open_group(store, mode="r")["obs"])
    store.reset()
    dtype = frame.dtypes["cell_type"]
    assert isinstance(dtype, pd.CategoricalDtype) and str(dtype) == "category"
    assert dtype.n_categories == 4 and dtype.ordered is False
    repr(frame.ds)
    assert not any("categories" in k for k in store.keys_read())
    assert list(dtype.categories) == ["c", "b", "a", "unused"]
    assert any("cell_type/categories" in k for k in store.keys_read())
    n_reads = len(store.log)
    frame.iloc[:10].to_memory()
    frame.iloc[10:20].to_memory()
    assert sum("cell_type/categories" in k for k in store.keys_read()[n_reads:]) == 0  # cached


def test_range_index(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    eager = read_elem(g["obs"])
    frame = read_elem_lazy(g["obs"], use_range_index=True)
    assert list(frame.index[:3]) == ["0", "1", "2"]
    assert frame.true_index_dim == "cell_id"
    assert list(frame.columns) == list(eager.columns)
    pd.testing.assert_frame_equal(frame.to_memory(), eager)
    pd.testing.assert_frame_equal(frame.iloc[[4, 2]].to_memory(), drop_unused(eager.iloc[[4, 2]]))


def test_setitem_and_copy(stored):
    fmt, path = stored
    frame = read_elem_lazy(open_group(fmt, path)["obs"])
    frame2 = frame.copy()
    frame2["extra"] = np.arange(len(frame2))
    frame2["cat2"] = pd.Categorical(["u"] * len(frame2))
    assert list(frame2.columns)[-2:] == ["extra", "cat2"] and "extra" not in frame
    mem = frame2.to_memory()
    assert mem["extra"].tolist() == list(range(len(frame2)))
    assert isinstance(mem["cat2"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError):
        frame2["bad"] = np.arange(3)


def test_subsetting_reads_only_needed_chunks(tmp_path):
    path = write(make_adata(3000, 10), tmp_path / "d", "zarr2")
    store = counting_store(path)
    frame = read_elem_lazy(zarr.open_group(store, mode="r")["obs"])
    store.reset()
    sub = frame.iloc[np.arange(2600, 2650)]
    assert store.log == []
    sub.to_memory()
    keys = set(store.keys_read())
    chunk = zarr.open_group(path)["obs/zeta"].chunks[0]
    assert {k for k in keys if k.startswith("obs/zeta/")} == {f"obs/zeta/{i}" for i in range(2600 // chunk, 2649 // chunk + 1)}
    assert "obs/zeta/0" not in keys and "obs/alpha/0" not in keys


def test_row_selection_of_columns_is_pushed_down(stored):
    # integer rows of a lazy frame select its dask columns with the row push-down (tasks
    # reading only those rows), not dask's fancy indexing (a shuffle graph per column)
    fmt, path = stored
    g = open_group(fmt, path)
    frame = read_elem_lazy(g["obs"])
    idx = np.array([590, 3, 3, 100, 7])
    sub = frame.iloc[idx]
    data = sub.ds["alpha"].data
    assert data.name.startswith("annio-take-")
    assert len(data.__dask_graph__()) == data.numblocks[0]
    assert list(sub.ds.data_vars) == list(frame.ds.data_vars)
    np.testing.assert_array_equal(data.compute(), read_elem(g["obs"])["alpha"].to_numpy()[idx])
