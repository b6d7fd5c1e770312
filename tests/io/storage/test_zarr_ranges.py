"""Ranged reads of 1-D sharded zarr v3 arrays decoded chunk by chunk: the same values as
zarr's own reads, bounded memory, clear errors for damaged shards."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from annio.errors import FormatError
from annio.io._storage import adapter as storage
from annio.io._storage import zarr_ranges, zarr_shards


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setattr(zarr_shards, "MIN_PARALLEL_BYTES", 1)  # the thread pool even for tiny arrays


def _write(path: Path, data: np.ndarray, chunk: int, shard: int, compressed: bool = True, fill=0) -> zarr.Array:
    """A 1-D array written by zarr itself (not annio's shard writer)."""
    kwargs = {} if compressed else {"compressors": None}
    arr = zarr.create_array(path, shape=data.shape, dtype=data.dtype, chunks=(chunk,), shards=(shard,), fill_value=fill, **kwargs)
    arr[...] = data
    return zarr.open_array(path, mode="r")


def _expected(data: np.ndarray, starts, stops) -> np.ndarray:
    parts = [data[a:b] for a, b in zip(starts, stops, strict=True)]
    return np.concatenate(parts) if parts else data[:0]


@st.composite
def _ranges(draw, n: int):
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=40))))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return [a for a, _ in pairs], [b for _, b in pairs]


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 3000),
    chunk=st.sampled_from([7, 64, 100]),
    per_shard=st.sampled_from([1, 3, 8]),
    dtype=st.sampled_from(["f4", "i8", "u1", "f8"]),
    compressed=st.booleans(),
    data=st.data(),
)
def test_same_values_as_zarr(tmp_path_factory, n, chunk, per_shard, dtype, compressed, data):
    path = tmp_path_factory.mktemp("z") / "x.zarr"
    rng = np.random.default_rng(n)
    values = (rng.poisson(2, n) * (rng.random(n) > 0.3)).astype(dtype)
    values[: n // 3] = 0  # whole chunks of fill value: zarr skips writing them
    arr = _write(path, values, chunk, chunk * per_shard, compressed)
    assert zarr_ranges.can_read_ranges(arr)
    starts, stops = data.draw(_ranges(n))
    starts, stops = np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64)
    expected = np.asarray(arr.oindex[np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)] or [np.zeros(0, int)])])
    np.testing.assert_array_equal(expected, _expected(values, starts, stops))
    got = storage.wrap(arr).read_ranges(starts, stops)
    assert got.dtype == values.dtype
    np.testing.assert_array_equal(got, expected)


def test_missing_shard_reads_fill_value(tmp_path):
    values = np.arange(1, 1001, dtype="f4")
    arr = _write(tmp_path / "x.zarr", values, 50, 200, fill=-1.0)
    (tmp_path / "x.zarr" / "c" / "2").unlink()  # rows 400..599
    got = zarr_ranges.read_ranges(arr, np.array([10, 390, 590]), np.array([20, 410, 620]))
    expected = np.concatenate([values[10:20], values[390:400], np.full(10, -1.0, "f4"), np.full(10, -1.0, "f4"), values[600:620]])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, _expected(np.asarray(arr[...]), [10, 390, 590], [20, 410, 620]))


def test_damaged_chunk_is_a_format_error(tmp_path):
    arr = _write(tmp_path / "x.zarr", np.arange(1000, dtype="i8"), 50, 500)
    shard = tmp_path / "x.zarr" / "c" / "0"
    raw = bytearray(shard.read_bytes())
    raw[0:8] = b"\x00" * 8  # the first inner chunk's zstd frame header
    shard.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="inner chunk 0"):
        zarr_ranges.read_ranges(arr, np.array([5]), np.array([7]))
    np.testing.assert_array_equal(zarr_ranges.read_ranges(arr, np.array([60]), np.array([70])), np.arange(60, 70))


def test_damaged_index_is_a_format_error(tmp_path):
    arr = _write(tmp_path / "x.zarr", np.arange(1000, dtype="i8"), 50, 500)
    shard = tmp_path / "x.zarr" / "c" / "1"
    raw = bytearray(shard.read_bytes())
    raw[-20] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="checksum"):
        zarr_ranges.read_ranges(arr, np.array([505]), np.array([507]))


def test_truncated_shard_is_a_format_error(tmp_path):
    arr = _write(tmp_path / "x.zarr", np.arange(1000, dtype="i8"), 50, 500)
    (tmp_path / "x.zarr" / "c" / "0").write_bytes(b"\x01\x02")
    with pytest.raises(FormatError, match="less than its"):
        zarr_ranges.read_ranges(arr, np.array([5]), np.array([7]))


def test_memory_is_bounded_by_a_few_chunks(tmp_path):
    """Many small ranges touching every inner chunk: not the whole shard in memory at once
    (zarr's orthogonal selection holds all touched chunks' bytes; this regressed to 2x
    anndata's peak in the lazy subset benchmark)."""
    chunk, n = 16_384, 16_384 * 128  # 128 inner chunks of 128 KiB (f8), one shard of 16 MiB
    rng = np.random.default_rng(0)
    arr = _write(tmp_path / "x.zarr", rng.random(n), chunk, n)
    starts = np.arange(0, n, 4096, dtype=np.int64) + 7
    stops = starts + 3
    tracemalloc.start()
    try:
        got = zarr_ranges.read_ranges(arr, starts, stops)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, _expected(np.asarray(arr[...]), starts, stops))
    assert peak < 16 * chunk * 8, peak  # a handful of chunks, far below the 16 MiB shard


def test_not_eligible(tmp_path):
    two_d = zarr.create_array(tmp_path / "y.zarr", shape=(10, 2), dtype="f4", chunks=(5, 2), shards=(10, 2))
    unsharded = zarr.create_array(tmp_path / "z.zarr", shape=(10,), dtype="f4", chunks=(5,))
    assert not zarr_ranges.can_read_ranges(two_d)
    assert not zarr_ranges.can_read_ranges(unsharded)
    with pytest.raises(ValueError, match="not eligible"):
        zarr_ranges.read_ranges(unsharded, np.array([0]), np.array([1]))
