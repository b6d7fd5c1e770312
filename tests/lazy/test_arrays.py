"""Dask arrays over stored dense and sparse arrays: values, chunk rules, minimal reads."""

from __future__ import annotations

import pickle

import dask
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr
from lazy_helpers import counting_store, open_group

from annio._lazy import ArraySource, read_elem_lazy
from annio._lazy.arrays import SparseSource, read_sparse_block, sparse_stride
from annio.io import read_elem, write_elem
from annio.io._storage.adapter import wrap


def test_dense_equals_eager(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    lazy = read_elem_lazy(g["layers/dense"])
    eager = read_elem(g["layers/dense"])
    assert lazy.dtype == eager.dtype and lazy.shape == eager.shape
    np.testing.assert_array_equal(lazy.compute(), eager)
    np.testing.assert_array_equal(lazy[[3, 1, 500], 2:7].compute(), eager[[3, 1, 500], 2:7])


def test_dense_default_chunks(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    arr = g["layers/dense"]
    lazy = read_elem_lazy(arr)
    if fmt == "zarr3-sharded":
        expected = arr.shards
        assert arr.shards != arr.chunks
    else:
        expected = arr.chunks
    assert lazy.chunksize == tuple(min(e, n) for e, n in zip(expected, arr.shape, strict=True))


def test_dense_explicit_chunks(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    lazy = read_elem_lazy(g["layers/dense"], chunks=(100, -1))
    assert lazy.chunks[0][0] == 100 and lazy.chunks[1] == (g["layers/dense"].shape[1],)
    lazy = read_elem_lazy(g["layers/dense"], chunks=(None, 7))
    assert lazy.chunks[0] == (g["layers/dense"].shape[0],) and lazy.chunks[1][0] == 7


def test_h5_contiguous_default_chunks(tmp_path):
    data = np.arange(1500 * 20, dtype=np.float64).reshape(1500, 20)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        write_elem(f, "x", data)
        assert f["x"].chunks is None
        lazy = read_elem_lazy(f["x"])
        assert lazy.chunks == ((1000, 500), (20,))
        np.testing.assert_array_equal(lazy.compute(), data)


def test_string_array(stored):
    fmt, path = stored
    g = open_group(fmt, path)
    node = g["obs/name"]
    lazy = read_elem_lazy(node)
    if node.attrs["encoding-type"] == "string-array":
        assert lazy.dtype == object
    else:
        # pandas 3 infers `str` columns, written as nullable-string-array like anndata 0.13 does;
        # its lazy reader (MaskedArray) reports numpy's StringDType(na_object=pd.NA) as well.
        assert node.attrs["encoding-type"] == "nullable-string-array" and pd.Series(["s"]).dtype != object
        assert lazy.dtype == np.dtypes.StringDType(na_object=pd.NA)
    got = lazy.compute() if hasattr(lazy, "compute") else lazy.to_memory()
    np.testing.assert_array_equal(np.asarray(got, dtype=object), np.asarray(read_elem(node), dtype=object))


def test_string_array_written_as_object(tmp_path):
    values = np.array([f"cell-{i}" for i in range(50)], dtype=object)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        write_elem(f, "s", values)
        assert f["s"].attrs["encoding-type"] == "string-array"
        lazy = read_elem_lazy(f["s"])
        assert lazy.dtype == object
        np.testing.assert_array_equal(lazy.compute(), values)


@pytest.mark.parametrize("fmt_sparse", ["csr", "csc"])
def test_sparse_equals_eager(tmp_path, fmt_sparse):
    m = sp.random(2500, 300, density=0.05, format=fmt_sparse, dtype=np.float32, random_state=1)
    g = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=2)
    write_elem(g, "m", m)
    lazy = read_elem_lazy(g["m"])
    major = 0 if fmt_sparse == "csr" else 1
    assert lazy.chunks[1 - major] == (300 if major == 0 else 2500,)
    assert isinstance(lazy._meta, sp.csr_matrix if fmt_sparse == "csr" else sp.csc_matrix)
    got = lazy.compute()
    assert got.format == fmt_sparse
    assert (got != m).nnz == 0
    sub = lazy[[5, 2000, 17], :] if major == 0 else lazy[:, [5, 200, 17]]
    expected = m[[5, 2000, 17], :] if major == 0 else m[:, [5, 200, 17]]
    assert (sub.compute() != expected).nnz == 0


def test_sparse_chunk_rules(tmp_path):
    m = sp.random(2500, 30, density=0.1, format="csr", random_state=2)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        write_elem(f, "csr", m)
        write_elem(f, "csc", m.tocsc())
        lazy = read_elem_lazy(f["csr"])
        assert lazy.chunks[1] == (30,) and all(c >= 1000 for c in lazy.chunks[0][:-1])
        assert read_elem_lazy(f["csr"], chunks=(500, -1)).chunks == ((500,) * 5, (30,))
        assert read_elem_lazy(f["csr"], chunks=(500, None)).chunks == ((500,) * 5, (30,))
        assert read_elem_lazy(f["csr"], chunks=(-1, 30)).chunks == ((2500,), (30,))
        assert read_elem_lazy(f["csc"], chunks=(-1, 10)).chunks == ((2500,), (10, 10, 10))
        with pytest.raises(ValueError, match=r"Only the major axis can be chunked. Try setting chunks to \(1000, -1\)"):
            read_elem_lazy(f["csr"], chunks=(500, 10))
        with pytest.raises(ValueError, match="Only the major axis can be chunked"):
            read_elem_lazy(f["csc"], chunks=(500, 10))


def test_sparse_stride_follows_storage_chunks(tmp_path):
    m = sp.random(10000, 50, density=0.01, format="csr", random_state=3)
    g = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    g.create_group("m").attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [10000, 50]})
    g["m"].create_array("data", data=m.data, chunks=(4000,))
    g["m"].create_array("indices", data=m.indices, chunks=(4000,))
    g["m"].create_array("indptr", data=m.indptr, chunks=(1500,))
    stride = sparse_stride(SparseSource(wrap(g["m"]), "csr"))
    assert stride % 1500 == 0 and stride >= 8000  # 4000 values at 0.5 per row
    lazy = read_elem_lazy(g["m"])
    assert lazy.chunks[0][0] == stride
    assert (lazy.compute() != m).nnz == 0


def test_sparse_block_reads_only_its_range(tmp_path):
    m = sp.random(4000, 20, density=0.1, format="csr", dtype=np.float32, random_state=4)
    path = tmp_path / "s.zarr"
    g = zarr.open_group(path, mode="w", zarr_format=2)
    grp = g.create_group("m")
    grp.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [4000, 20]})
    grp.create_array("data", data=m.data, chunks=(500,))
    grp.create_array("indices", data=m.indices, chunks=(500,))
    grp.create_array("indptr", data=m.indptr.astype(np.int64), chunks=(500,))
    store = counting_store(path)
    lazy = read_elem_lazy(zarr.open_group(store, mode="r")["m"], chunks=(1000, -1))
    store.reset()
    block = lazy.blocks[2].compute()
    assert (block != m[2000:3000]).nnz == 0
    lo, hi = m.indptr[2000], m.indptr[3000]
    expected = {f"m/indptr/{i}" for i in range(2000 // 500, 3000 // 500 + 1)}
    expected |= {f"m/{part}/{i}" for part in ("data", "indices") for i in range(lo // 500, (hi - 1) // 500 + 1)}
    assert set(store.keys_read()) == expected


def test_h5_sources_pickle_and_reopen(stored_h5ad):
    fmt, path = stored_h5ad
    f = h5py.File(path, "r")
    lazy = read_elem_lazy(f["layers/dense"])
    sparse = read_elem_lazy(f["X"])
    expected_dense, expected_sparse = lazy.compute(), sparse.compute()
    clone = pickle.loads(pickle.dumps(lazy))
    clone_sparse = pickle.loads(pickle.dumps(sparse))
    f.close()  # tasks reopen the file by path
    np.testing.assert_array_equal(clone.compute(), expected_dense)
    np.testing.assert_array_equal(lazy.compute(), expected_dense)
    assert (clone_sparse.compute() != expected_sparse).nnz == 0
    with dask.config.set(scheduler="sync"):
        assert (sparse.compute() != expected_sparse).nnz == 0


def test_array_source_take(tmp_path):
    g = zarr.open_group(tmp_path / "t.zarr", mode="w")
    g.create_array("a", data=np.arange(1000) * 2, chunks=(100,))
    src = ArraySource(g["a"])
    for pos in ([5, 3, 3, 900], [1, 2, 3], [999, 0], list(range(10, 60, 2)), []):
        np.testing.assert_array_equal(src.take(np.array(pos, dtype=int)), (np.arange(1000) * 2)[pos])


def test_read_sparse_block_validates(tmp_path):
    import annio.errors

    g = zarr.open_group(tmp_path / "bad.zarr", mode="w", zarr_format=2)
    grp = g.create_group("m")
    grp.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [3, 4]})
    grp.create_array("data", data=np.ones(3))
    grp.create_array("indices", data=np.array([0, 9, 1]))
    grp.create_array("indptr", data=np.array([0, 1, 2, 3]))
    with pytest.raises(annio.errors.FormatError, match="indices"):
        read_elem_lazy(g["m"]).compute()
    source = SparseSource(wrap(g["m"]), "csr")
    with pytest.raises(annio.errors.FormatError):
        read_sparse_block(source, 0, 3, sp.csr_matrix)


def test_dense_graph_is_from_arrays_graph(tmp_path):
    # dense_dask builds the graph da.from_array(..., inline_array=True) builds, directly: the
    # same keys and tasks, and slicing still fused into the storage read
    import dask.array as da

    from annio._lazy.arrays import ArraySource, _sliced_array
    from annio.io._storage.adapter import wrap

    g = zarr.open_group(tmp_path / "d.zarr", mode="w", zarr_format=3)
    g.create_array("a", shape=(25, 6), chunks=(10, 4), dtype="f8")[:] = np.arange(150.0).reshape(25, 6)
    source = ArraySource(wrap(zarr.open_group(tmp_path / "d.zarr", mode="r"))["a"])
    meta = np.empty((0, 0))
    mine = _sliced_array(source, (10, 4), "annio-x", meta)
    theirs = da.from_array(source, chunks=(10, 4), name="annio-x", asarray=True, fancy=True, lock=False, inline_array=True, meta=meta)
    assert mine.chunks == theirs.chunks
    assert dict(mine.__dask_graph__()).keys() == dict(theirs.__dask_graph__()).keys()
    np.testing.assert_array_equal(mine.compute(), theirs.compute())
    reads = []
    plain_read = ArraySource.read
    source.read = lambda selection=...: (reads.append(selection), plain_read(source, selection))[1]
    np.testing.assert_array_equal(mine[3:7, 1:2].compute(), np.arange(150.0).reshape(25, 6)[3:7, 1:2])
    assert reads == [(slice(3, 7, None), slice(1, 2, None))]  # the slice fused into one storage read
    reads.clear()
    theirs[3:7, 1:2].compute()
    assert reads == [(slice(3, 7, None), slice(1, 2, None))]
