"""Values of small datasets of a remote HDF5 file fetched ahead (``h5_prefetch``): after the
prefetch, HDF5 reading those datasets — variable-length strings included — makes no read
outside the fetched bytes; the global heap collections are sized to cover what HDF5 reads;
local files are left alone."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import fsspec
import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annio.io._storage import h5_prefetch
from annio.io._storage.h5_ranges import RangeCachedFile, cached_file_of, register_open


def _write(path: Path, strings: list[str], *, chunked: bool = False) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        kwargs = {"chunks": (max(1, len(strings) // 3),)} if chunked else {}
        f.create_dataset("obs/_index", data=np.array(strings, dtype=object), dtype=h5py.string_dtype(), **kwargs)
        f.create_dataset("obs/big", data=rng.random(20_000))  # between the index and uns: not fetched
        f.create_dataset("uns/scalar", data=3.5)
        f.create_dataset("uns/name", data="a name", dtype=h5py.string_dtype())
        f.create_dataset("uns/values", data=rng.integers(0, 9, 100))
        f.create_dataset("uns/gz", data=np.arange(5000), compression="gzip", chunks=(1000,))
        f.create_dataset("uns/words", data=np.array(["w" * i for i in range(1, 60)], dtype=object), dtype=h5py.string_dtype())


def _open_counting(path: Path, monkeypatch: Any) -> tuple[h5py.File, list[tuple[int, int]]]:
    """``path`` opened as a remote file is (local fsspec file, metadata walked), and the
    list of reads that miss every fetched range (those go to the block-cached file)."""
    misses: list[tuple[int, int]] = []
    read_cached = RangeCachedFile._read_cached

    def counting(self: RangeCachedFile, start: int, n: int) -> bytes:
        misses.append((start, n))
        return read_cached(self, start, n)

    monkeypatch.setattr(RangeCachedFile, "_read_cached", counting)
    fs = fsspec.filesystem("file")
    fobj = RangeCachedFile(fs.open(str(path), "rb"), fs, str(path))
    fobj.prefetch_metadata()
    f = h5py.File(fobj, "r")
    register_open(f, fobj)
    return f, misses


def _read_all(f: h5py.File) -> dict[str, Any]:
    names = ["obs/_index", "uns/scalar", "uns/name", "uns/values", "uns/gz", "uns/words"]
    return {n: f[n][()] for n in names}


@pytest.mark.parametrize("chunked", [False, True])
def test_prefetched_datasets_are_read_from_memory(tmp_path: Path, monkeypatch: Any, chunked: bool) -> None:
    from annio.io._storage import h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)  # a small file walked as a large one would be
    path = tmp_path / "a.h5"
    _write(path, [f"cell-{i:06d}-{'x' * (i % 40)}" for i in range(3000)], chunked=chunked)
    f, misses = _open_counting(path, monkeypatch)
    try:
        datasets = [f[n] for n in ("obs/_index", "uns/scalar", "uns/name", "uns/values", "uns/gz", "uns/words")]
        misses.clear()
        with h5_prefetch.prefetching_datasets(datasets) as rounds:
            got = _read_all(f)
        # the values with a guess of the heap collections after them, then what the guess missed
        assert rounds == 2
        assert misses == [], misses
        with h5py.File(path, "r") as plain:
            want = _read_all(plain)
        for name, value in want.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        assert cached_file_of(datasets[0])._parts == []  # dropped after the block
    finally:
        f.close()


def test_local_files_are_not_prefetched(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    _write(path, ["a", "b"])
    with h5py.File(path, "r") as f, h5_prefetch.prefetching_datasets([f["obs/_index"]]) as rounds:
        assert rounds == 0


def _collections(image: bytes, refs: bytes) -> dict[int, int]:
    """Address -> size of every global heap collection the references point to, from the
    collections' own headers."""
    out = {}
    for pos in range(0, len(refs) - 15, 16):
        addr = struct.unpack_from("<Q", refs, pos + 4)[0]
        if addr:
            assert image[addr : addr + 4] == b"GCOL"
            out[addr] = struct.unpack_from("<Q", image, addr + 8)[0]
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(0, 70_000), min_size=1, max_size=60), repeat=st.integers(1, 2000))
def test_collection_ranges_cover_each_collection(tmp_path: Path, lengths: list[int], repeat: int) -> None:
    strings = [("s" * n) for n in lengths] * max(1, repeat // len(lengths))
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("s", data=np.array(strings, dtype=object), dtype=h5py.string_dtype())
        offset, size = ds.id.get_offset(), ds.id.get_storage_size()
    image = path.read_bytes()
    refs = image[offset : offset + size]
    ranges = h5_prefetch.collection_ranges([refs], 8, len(image))
    for addr, size in _collections(image, refs).items():
        assert any(s <= addr and addr + size <= e for s, e in ranges), (addr, size, ranges)
    assert sum(e - s for s, e in ranges) <= 2 * len(image)  # a guess, never an unbounded one


def test_collection_ranges_ignore_references_outside_the_file() -> None:
    refs = struct.pack("<IQI", 5, 10**12, 1) + struct.pack("<IQI", 5, 0, 1)
    assert h5_prefetch.collection_ranges([refs], 8, 4096) == []
    assert h5_prefetch.collection_ranges([b""], 8, 4096) == []


def test_row_byte_ranges_of_string_datasets_use_the_stored_element_size(tmp_path: Path) -> None:
    from annio.io._storage.h5_ranges import dataset_byte_ranges, stored_item_size

    with h5py.File(tmp_path / "s.h5", "w") as f:
        ds = f.create_dataset("s", data=np.array([f"v{i}" for i in range(1000)], dtype=object), dtype=h5py.string_dtype())
        nums = f.create_dataset("n", data=np.arange(1000, dtype=np.int32))
        assert stored_item_size(ds) == ds.id.get_storage_size() // 1000 == 16  # numpy's object itemsize is 8
        assert stored_item_size(nums) == 4
        (start, stop), = dataset_byte_ranges(ds, [100], [200])
        assert start == ds.id.get_offset() + 100 * 16 and stop >= ds.id.get_offset() + 200 * 16
        assert h5_prefetch.reference_ranges(ds, [100], [200]) == [(ds.id.get_offset() + 1600, ds.id.get_offset() + 3200)]


def test_overlapped_prefetch_is_waited_for_by_the_reads_that_need_it(tmp_path: Path, monkeypatch: Any) -> None:
    import threading

    from annio.io._storage import h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)
    path = tmp_path / "a.h5"
    _write(path, [f"cell-{i:06d}" for i in range(3000)])
    f, misses = _open_counting(path, monkeypatch)
    fobj = cached_file_of(f["obs/_index"])
    release = threading.Event()
    cat_ranges = RangeCachedFile._cat_ranges

    def slow(self: RangeCachedFile, starts: list[int], stops: list[int]) -> list[bytes]:
        release.wait(10)  # the fetch is still out while the block starts
        return cat_ranges(self, starts, stops)

    monkeypatch.setattr(RangeCachedFile, "_cat_ranges", slow)
    try:
        datasets = [f[n] for n in ("obs/_index", "uns/scalar", "uns/name", "uns/values", "uns/gz", "uns/words")]
        misses.clear()
        with h5_prefetch.prefetching_datasets(datasets, overlap=True) as rounds:
            assert rounds == -1 and fobj._job is not None and not fobj._job.done()
            threading.Timer(0.2, release.set).start()
            got = _read_all(f)  # waits for the fetch, then reads from it
        assert misses == [], misses
        with h5py.File(path, "r") as plain:
            for name, value in _read_all(plain).items():
                np.testing.assert_array_equal(got[name], value, err_msg=name)
        assert fobj._parts == [] and fobj._job is None
    finally:
        release.set()
        f.close()


def test_a_failed_overlapped_prefetch_leaves_the_reads_to_the_file(tmp_path: Path, monkeypatch: Any) -> None:
    from annio.io._storage import h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)
    path = tmp_path / "a.h5"
    _write(path, [f"cell-{i:06d}" for i in range(3000)])
    f, misses = _open_counting(path, monkeypatch)

    def failing(self: RangeCachedFile, starts: list[int], stops: list[int]) -> list[bytes]:
        raise ConnectionError("network down during the prefetch")

    monkeypatch.setattr(RangeCachedFile, "_cat_ranges", failing)
    try:
        datasets = [f["obs/_index"], f["uns/words"]]
        with h5_prefetch.prefetching_datasets(datasets, overlap=True):
            got = f["obs/_index"][()]
        assert misses  # read through the remote file object instead
        with h5py.File(path, "r") as plain:
            np.testing.assert_array_equal(got, plain["obs/_index"][()])
    finally:
        f.close()


def test_heap_collections_after_the_values_come_with_them(tmp_path: Path, monkeypatch: Any) -> None:
    """Short strings written in one go: their collections follow the values and are covered
    by the first round's guess, so one round does."""
    from annio.io._storage import h5_ranges

    monkeypatch.setattr(h5_ranges, "_WHOLE_FILE_BYTES", 0)
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("obs/_index", data=np.array([f"c{i}" for i in range(5000)], dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("obs/big", data=np.zeros(300_000))  # after the collections: not guessed into
    f, misses = _open_counting(path, monkeypatch)
    try:
        misses.clear()
        with h5_prefetch.prefetching_datasets([f["obs/_index"]]) as rounds:
            got = f["obs/_index"][()]
        assert rounds == 1 and misses == []
        assert got[4999] == b"c4999"
    finally:
        f.close()
