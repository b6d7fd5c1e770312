"""Writing lazy objects and lazy views: same content as writing the eager equivalent,
with memory bounded by ``settings.write_block_bytes``."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pytest
import zarr
from lazy_helpers import read_eager

import annio
from annio._lazy import read_elem_lazy, read_lazy
from annio.io._storage.adapter import StorageGroup, wrap


def _tree(node, out=None, prefix=""):
    """{path: (attrs, values)} of every node below ``node``."""
    out = {} if out is None else out
    node = wrap(node)
    attrs = {k: v for k, v in node.attrs.items()}
    if isinstance(node, StorageGroup):
        out[prefix or "/"] = (attrs, None)
        for key in node.keys():
            _tree(node[key], out, f"{prefix}/{key}")
    else:
        out[prefix] = (attrs, node.read() if node.shape != () or not node.is_null else None)
    return out


def assert_same_content(a, b):
    ta, tb = _tree(a), _tree(b)
    assert sorted(ta) == sorted(tb)
    for path in ta:
        (attrs_a, va), (attrs_b, vb) = ta[path], tb[path]
        attrs_a = {k: list(v) if isinstance(v, list | tuple | np.ndarray) else v for k, v in attrs_a.items()}
        attrs_b = {k: list(v) if isinstance(v, list | tuple | np.ndarray) else v for k, v in attrs_b.items()}
        assert attrs_a == attrs_b, path
        if va is None:
            assert vb is None, path
            continue
        assert va.dtype == vb.dtype, (path, va.dtype, vb.dtype)
        np.testing.assert_array_equal(va, vb, err_msg=path)


def _open(path):
    return h5py.File(path, "r") if str(path).endswith(".h5ad") else zarr.open_group(path, mode="r")


@pytest.mark.parametrize(("target", "subset"), [("h5ad", False), ("zarr", True), ("h5ad", True)])
def test_write_lazy_equals_eager(stored, tmp_path, target, subset):
    fmt, path = stored
    eager = read_eager(fmt, path)
    lazy = read_lazy(path)
    if subset:
        idx = np.arange(7, 590, 4)
        lazy, eager = lazy[idx][::2, 3:30], eager[idx][::2, 3:30]
    suffix = ".h5ad" if target == "h5ad" else ".zarr"
    out_lazy, out_eager = tmp_path / f"lazy{suffix}", tmp_path / f"eager{suffix}"
    write = annio.io.write_h5ad if target == "h5ad" else annio.io.write_zarr
    # lazy string columns are not converted to categoricals (that would read them): compare
    # without the conversion
    write(out_lazy, lazy, convert_strings_to_categoricals=False)
    write(out_eager, eager, convert_strings_to_categoricals=False)
    lazy.file.close()
    a, b = _open(out_lazy), _open(out_eager)
    assert_same_content(a, b)
    back = read_eager("h5ad" if target == "h5ad" else "zarr", out_lazy)
    assert back.obs["cell_type"].dtype == eager.obs["cell_type"].dtype


def test_write_elem_lazy_frame(stored, tmp_path):
    fmt, path = stored
    frame = read_lazy(path).obs
    g = zarr.open_group(tmp_path / "f.zarr", mode="w")
    annio.io.write_elem(g, "obs", frame.iloc[::3])
    got = annio.io.read_elem(g["obs"])
    expected = frame.iloc[::3].to_memory()
    import pandas as pd

    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("target", ["h5ad", "zarr"])
def test_write_memory_is_bounded(tmp_path, target):
    """A 32 MB dense array read lazily is written with a peak far below its size."""
    n, m = 4000, 1000
    src = zarr.open_group(tmp_path / "src.zarr", mode="w", zarr_format=3)
    data = np.random.default_rng(0).random((n, m))
    annio.io.write_elem(src, "x", data, dataset_kwargs={"chunks": (100, m), "shards": (200, m)})
    arr = src["x"]
    del data
    lazy = read_elem_lazy(src["x"])
    assert lazy.chunksize == (200, m)
    out = zarr.open_group(tmp_path / "out.zarr", mode="w") if target == "zarr" else h5py.File(tmp_path / "out.h5", "w")
    # sharded zarr targets are written shard by shard: the bound is the larger of the block
    # budget and the shard size
    with annio.settings.override(write_block_bytes=2**20, shard_target_bytes=2**20):
        tracemalloc.start()
        annio.io.write_elem(out, "x", lazy)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    total = n * m * 8
    assert peak < total / 4, (peak, total)
    np.testing.assert_array_equal(wrap(out["x"]).read()[::97], arr[::97])
