"""Ranges of unfiltered HDF5 datasets read with pread: the values h5py reads, for chunked
and contiguous layouts, unwritten chunks, user blocks; only for read-only local files."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import annio
from annio.errors import FormatError
from annio.io._storage import adapter as storage
from annio.io._storage import h5_chunks, h5_pread


@st.composite
def _ranges(draw, n: int):
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=40))))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return np.array([a for a, _ in pairs], dtype=np.int64), np.array([b for _, b in pairs], dtype=np.int64)


def _expected(ds: h5py.Dataset, starts, stops) -> np.ndarray:
    parts = [ds[int(a) : int(b)] for a, b in zip(starts, stops, strict=True)]
    return np.concatenate(parts) if parts else np.zeros(0, ds.dtype)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 5000),
    chunk=st.sampled_from([None, 1, 37, 512]),
    dtype=st.sampled_from(["<f4", "<i8", "u1", "<f8", "<i4"]),
    userblock=st.sampled_from([0, 512]),
    data=st.data(),
)
def test_same_values_as_h5py(tmp_path_factory, n, chunk, dtype, userblock, data):
    path = tmp_path_factory.mktemp("h") / "x.h5"
    values = np.random.default_rng(n).integers(0, 200, n).astype(dtype)
    with h5py.File(path, "w", userblock_size=userblock) as f:
        if chunk is None:
            f.create_dataset("x", data=values)
        else:
            f.create_dataset("x", data=values, chunks=(min(chunk, n),))
    starts, stops = data.draw(_ranges(n))
    with h5py.File(path, "r") as f:
        ds = f["x"]
        assert h5_pread.can_read_ranges(ds) and h5_chunks.can_read_ranges(ds)
        got = storage.wrap(ds).read_ranges(starts, stops)
        np.testing.assert_array_equal(got, _expected(ds, starts, stops))
        assert got.dtype == ds.dtype


def test_unwritten_chunks_read_the_fill_value(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(1000,), dtype="f4", chunks=(100,), fillvalue=-2.5)
        ds[250:420] = np.arange(170, dtype="f4")  # chunks 2, 3, 4 written; the rest never
        f.create_dataset("empty", shape=(50,), dtype="i4", fillvalue=7)  # contiguous, unallocated
    with h5py.File(path, "r") as f:
        starts, stops = np.array([5, 190, 399, 990]), np.array([10, 260, 520, 1000])
        np.testing.assert_array_equal(h5_pread.read_ranges(f["x"], starts, stops), _expected(f["x"], starts, stops))
        np.testing.assert_array_equal(h5_pread.read_ranges(f["empty"], np.array([3]), np.array([9])), np.full(6, 7, "i4"))


def test_only_read_only_unfiltered_local(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("plain", data=np.arange(100.0), chunks=(10,))
        f.create_dataset("gzip", data=np.arange(100.0), chunks=(10,), compression="gzip")
        f.create_dataset("shuffled", data=np.arange(100.0), chunks=(10,), shuffle=True)
        f.create_dataset("big_endian", data=np.arange(100.0).astype(">f8"))
        f.create_dataset("two_d", data=np.zeros((10, 10)))
        assert not h5_pread.can_read_ranges(f["plain"])  # writable: HDF5 may hold unflushed data
    with h5py.File(path, "r") as f:
        assert h5_pread.can_read_ranges(f["plain"])
        for name in ("gzip", "shuffled", "big_endian", "two_d"):
            assert not h5_pread.can_read_ranges(f[name]), name
    with open(path, "rb") as fobj, h5py.File(fobj, "r") as f:  # file objects: not a plain file
        assert not h5_pread.can_read_ranges(f["plain"])


def test_writable_file_sees_unflushed_values(tmp_path):
    """Regression guard for the read-only rule: values written but not flushed must be
    read back through h5py, not from the (stale) file bytes."""
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(1000, "f4"), chunks=(100,))
    with h5py.File(path, "r+") as f:
        f["x"][10:20] = 5.0
        got = storage.wrap(f["x"]).read_ranges(np.array([0, 15, 500]), np.array([2, 30, 510]))
        np.testing.assert_array_equal(got, np.concatenate([np.zeros(2), np.full(5, 5.0), np.zeros(20)]).astype("f4"))


def test_truncated_file_is_a_format_error(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(100_000, dtype="f8"))  # contiguous, at the end
    with h5py.File(path, "r") as f:
        ds = f["x"]
        with open(path, "r+b") as raw:  # cut the file short under the open handle
            raw.truncate(path.stat().st_size - 400_000)
        with pytest.raises(FormatError, match="beyond the end of the file"):
            h5_pread.read_ranges(ds, np.array([10, 99_000]), np.array([20, 99_990]))


@pytest.mark.parametrize("threads", [1, 3])
def test_read_into_whole_datasets(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(h5_pread, "MIN_DIRECT_BYTES", 0)
    monkeypatch.setattr(h5_pread, "_PIECE_BYTES", 1000)  # many jobs, pieces across chunk edges
    rng = np.random.default_rng(3)
    path = tmp_path / "x.h5"
    with h5py.File(path, "w", userblock_size=1024) as f:
        f.create_dataset("chunked", data=rng.random(10_001), chunks=(333,))
        f.create_dataset("contiguous", data=rng.integers(0, 9, (301, 7)).astype("i4"))
        part = f.create_dataset("partial", shape=(5000,), dtype="f4", chunks=(128,), fillvalue=3.0)
        part[1000:2100] = rng.random(1100).astype("f4")
        f.create_dataset("gzip", data=rng.random(4000), chunks=(100,), compression="gzip")
        f.create_dataset("chunked_2d", data=rng.random((200, 30)), chunks=(17, 30))
    with annio.settings.override(io_threads=threads), h5py.File(path, "r") as f:
        for name in ("chunked", "contiguous", "partial", "gzip", "chunked_2d"):
            ds = f[name]
            out = np.empty(ds.shape, ds.dtype)
            h5_pread.read_into(ds, out)
            np.testing.assert_array_equal(out, ds[...], err_msg=name)
            np.testing.assert_array_equal(storage.wrap(ds).read(), ds[...], err_msg=name)


def test_chunk_reader_matches_read_direct_chunk(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "x.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("one", data=rng.random(1000), chunks=(64,), compression="gzip")
        two = f.create_dataset("two", shape=(100, 30), dtype="f4", chunks=(16, 7), compression="gzip", shuffle=True)
        two[:40] = rng.random((40, 30)).astype("f4")  # later chunks never written
    with h5py.File(path, "r") as f:
        for name in ("one", "two"):
            ds = f[name]
            reader = h5_pread.ChunkReader.open(ds)
            assert reader is not None
            try:
                for offset in itertools.product(*(range(0, s, c) for s, c in zip(ds.shape, ds.chunks, strict=True))):
                    _, mask, payload = reader.fetch(offset)
                    try:
                        want_mask, want = ds.id.read_direct_chunk(offset)
                    except (OSError, KeyError, RuntimeError):
                        assert payload is None, offset
                        continue
                    assert (mask, payload) == (want_mask, want), offset
            finally:
                reader.close()
        # a gzip read through the chunk reader gives h5py's values
        np.testing.assert_array_equal(storage.wrap(f["one"]).read(), f["one"][...])
    with h5py.File(path, "r+") as f:
        assert h5_pread.ChunkReader.open(f["one"]) is None  # writable: HDF5's own reads


def test_chunk_reader_truncated_file_is_a_format_error(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.random.default_rng(0).random(200_000), chunks=(10_000,), compression="gzip")
    with h5py.File(path, "r") as f:
        reader = h5_pread.ChunkReader.open(f["x"])
        with open(path, "r+b") as raw:
            raw.truncate(path.stat().st_size // 2)
        try:
            with pytest.raises(FormatError, match="beyond the end of the file"):
                for i in range(20):
                    reader.fetch((i * 10_000,))
        finally:
            reader.close()


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")), max_size=30), two_d=st.booleans())
def test_vlen_strings_read_as_h5py_decodes_them(tmp_path_factory, values, two_d):
    """The joined decode of vlen UTF-8 strings gives what h5py's ``asstr`` gives."""
    path = tmp_path_factory.mktemp("s") / "s.h5"
    data = np.array(values, dtype=object)
    if two_d and len(values) % 2 == 0 and values:
        data = data.reshape(2, -1)
    with h5py.File(path, "w") as f:
        f.create_dataset("s", data=data, dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        got = storage.wrap(f["s"]).read()
        want = np.asarray(f["s"].asstr()[...], dtype=object)
        assert got.dtype == object and got.shape == want.shape
        assert got.tolist() == want.tolist()
        if data.size:
            assert storage.wrap(f["s"]).read((0,) * data.ndim) == want[(0,) * data.ndim]


def test_invalid_utf8_is_a_format_error(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("s", data=np.array([b"ok", b"\xff\xfe"], dtype=object), dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f, pytest.raises(FormatError):
        storage.wrap(f["s"]).read()


def test_not_for_swmr_readers(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("x", data=np.arange(100.0), chunks=(10,))
    with h5py.File(path, "r", swmr=True) as f:
        assert not h5_pread.can_read_ranges(f["x"]) and h5_pread.ChunkReader.open(f["x"]) is None
        np.testing.assert_array_equal(storage.wrap(f["x"]).read_ranges(np.array([3]), np.array([9])), np.arange(3.0, 9.0))
