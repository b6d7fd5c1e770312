"""Parallel direct-chunk gzip for h5ad: files stay standard, data is exact."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from annio.io import read_elem, write_elem
from annio.io._storage import h5_chunks


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setattr(h5_chunks, "MIN_PARALLEL_BYTES", 1)


@pytest.mark.parametrize("shape", [(1000, 37), (12345,), (3, 5, 7)])
@pytest.mark.parametrize("dtype", ["f4", "i8", "u1", "f8"])
def test_roundtrip_and_plain_h5py_reads_it(tmp_path, shape, dtype):
    rng = np.random.default_rng(1)
    data = (rng.poisson(2, size=shape)).astype(dtype)
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        write_elem(f, "x", data, dataset_kwargs={"compression": "gzip"})
        assert h5_chunks.can_use_direct_chunks(f["x"])
    with h5py.File(path, "r") as f:
        assert f["x"].compression == "gzip"
        np.testing.assert_array_equal(f["x"][...], data)  # HDF5's own filter decodes it
        np.testing.assert_array_equal(read_elem(f["x"]), data)  # and so does annio's path


def test_reads_files_written_by_hdf5_itself(tmp_path):
    data = np.arange(50_000, dtype="f4").reshape(500, 100)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("x", data=data, compression="gzip", chunks=(64, 30))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        np.testing.assert_array_equal(read_elem(f["x"]), data)


def test_unwritten_chunks_read_as_fill_value(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        d = f.create_dataset("x", shape=(100, 10), dtype="f4", chunks=(10, 10), compression="gzip", fillvalue=7)
        d[:10] = 1
    with h5py.File(tmp_path / "x.h5", "r") as f:
        out = read_elem(f["x"])
    assert (out[:10] == 1).all() and (out[10:] == 7).all()


def test_size_close_to_zlib(tmp_path):
    rng = np.random.default_rng(0)
    data = np.log1p(rng.negative_binomial(2, 0.3, size=(4000, 300)).astype("f4"))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "x", data, dataset_kwargs={"compression": "gzip"})
        chunks = f["x"].chunks
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f.create_dataset("x", data=data, compression="gzip", chunks=chunks)
    ours = (tmp_path / "a.h5").stat().st_size
    reference = (tmp_path / "b.h5").stat().st_size
    assert ours <= reference * 1.05


def test_read_ranges_direct_chunks_fill_and_gather(tmp_path):
    """StorageArray.read_ranges on gzip chunks: unwritten chunks give the fill value."""
    from annio.io._storage.adapter import wrap

    with h5py.File(tmp_path / "x.h5", "w") as f:
        d = f.create_dataset("x", shape=(10_000,), dtype="i4", chunks=(100,), compression="gzip", fillvalue=-1)
        d[:5000] = np.arange(5000)
    want = np.concatenate((np.arange(5000), np.full(5000, -1))).astype("i4")
    starts, stops = np.array([10, 4990, 7000]), np.array([20, 5010, 9000])
    with h5py.File(tmp_path / "x.h5", "r") as f:
        node = wrap(f["x"])
        assert h5_chunks.can_read_ranges(f["x"])
        got = node.read_ranges(starts, stops)
    np.testing.assert_array_equal(got, np.concatenate([want[a:b] for a, b in zip(starts, stops, strict=True)]))
