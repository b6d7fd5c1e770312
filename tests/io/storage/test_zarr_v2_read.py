"""Whole zarr v2 arrays on local disk decoded by annio (zarr_v2_read) give exactly what
zarr-python reads: every numcodecs compressor, edge chunks, missing chunks (fill value),
big-endian data, strings; other layouts are left to zarr-python; damage names the element."""

from __future__ import annotations

from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from annio.errors import FormatError
from annio.io._storage import adapter, zarr_v2_read


@pytest.fixture(autouse=True)
def _zarr_python_pipeline():
    """zarr-python's own codec pipeline writes and reads the references (the zarrs
    pipeline, which other tests switch on, refuses big-endian data and F order)."""
    with zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline"}):
        yield


_COMPRESSORS = [None, numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1), numcodecs.Zstd(level=3), numcodecs.GZip(level=1)]


def _array(path: Path, data: np.ndarray, chunks, compressor, **kw) -> zarr.Array:
    arr = zarr.create_array(zarr.storage.LocalStore(path), shape=data.shape, dtype=data.dtype, chunks=chunks, zarr_format=2, compressors=compressor, **kw)
    arr[...] = data
    return zarr.open_array(zarr.storage.LocalStore(path, read_only=True), mode="r")


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 7),
    chunks=st.tuples(st.integers(1, 8), st.integers(1, 5)),
    dtype=st.sampled_from(["<f4", ">f8", "<i8", "|u1", "|b1", ">i2"]),
    which=st.integers(0, len(_COMPRESSORS) - 1),
)
def test_numeric_arrays_read_like_zarr_python(tmp_path_factory, rows, cols, chunks, dtype, which) -> None:
    data = (np.arange(rows * cols) % 5).reshape(rows, cols).astype(dtype)
    arr = _array(tmp_path_factory.mktemp("v2") / "a", data, chunks, _COMPRESSORS[which])
    got = zarr_v2_read.read_all(arr)
    assert got is not None and got.dtype.isnative
    np.testing.assert_array_equal(got, arr[...])


def test_missing_chunks_and_strings(tmp_path: Path) -> None:
    data = np.zeros((12, 3), dtype="f4")
    data[:4] = 1.5
    arr = _array(tmp_path / "n", data, (4, 3), _COMPRESSORS[1], fill_value=0.0)  # zeros: no chunk files
    np.testing.assert_array_equal(zarr_v2_read.read_all(arr), data)
    strings = np.array(["a", "", "héllo", "x" * 50, "b"], dtype=object)
    sarr = zarr.create_array(zarr.storage.LocalStore(tmp_path / "s"), shape=(5,), dtype=str, chunks=(2,), zarr_format=2)
    sarr[...] = strings
    sarr = zarr.open_array(zarr.storage.LocalStore(tmp_path / "s", read_only=True), mode="r")
    got = zarr_v2_read.read_all(sarr)
    assert got.dtype == object and list(got) == list(strings)
    np.testing.assert_array_equal(adapter.wrap(sarr).read(), strings)


def test_other_layouts_go_to_zarr_python(tmp_path: Path) -> None:
    data = np.arange(20.0).reshape(4, 5)
    f_order = zarr.create_array(zarr.storage.LocalStore(tmp_path / "f"), shape=data.shape, dtype=data.dtype, chunks=(2, 2), zarr_format=2, order="F")
    f_order[...] = data
    filtered = zarr.create_array(
        zarr.storage.LocalStore(tmp_path / "d"), shape=data.shape, dtype=data.dtype, chunks=(2, 2), zarr_format=2, filters=[numcodecs.Delta(dtype="f8")]
    )
    filtered[...] = data
    for name in ("f", "d"):
        arr = zarr.open_array(zarr.storage.LocalStore(tmp_path / name, read_only=True), mode="r")
        assert zarr_v2_read.read_all(arr) is None
        np.testing.assert_array_equal(adapter.wrap(arr).read(), data)


def test_large_numeric_arrays_go_to_the_parallel_pipeline(tmp_path: Path) -> None:
    """Regression: whole v2 arrays of every size were decoded here on one thread, which made
    the medium read-zarr2 benchmark 3x slower than before; large ones go to the pipeline."""
    data = np.arange(zarr_v2_read.MIN_PARALLEL_BYTES // 8 + 10, dtype="<f8")
    arr = _array(tmp_path / "big", data, (2**16,), numcodecs.Zstd(level=1))
    assert zarr_v2_read.read_all(arr) is None
    np.testing.assert_array_equal(adapter.wrap(arr).read(), data)
    small = _array(tmp_path / "small", data[:1000], (256,), numcodecs.Zstd(level=1))
    np.testing.assert_array_equal(zarr_v2_read.read_all(small), data[:1000])


def test_damaged_chunk_names_the_element(tmp_path: Path) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(tmp_path / "g"), mode="w", zarr_format=2)
    arr = group.create_array("x", shape=(8,), dtype="f8", chunks=(4,), compressors=numcodecs.Zstd())
    arr[...] = np.arange(8.0)
    (tmp_path / "g" / "x" / "1").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="/x"):
        adapter.wrap(zarr.open_group(zarr.storage.LocalStore(tmp_path / "g", read_only=True), mode="r"))["x"].read()
