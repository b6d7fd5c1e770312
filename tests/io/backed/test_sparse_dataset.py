"""``sparse_dataset``: CSR/CSC matrices in h5ad files and zarr stores, read piece by piece."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy import sparse

import annio
from annio.errors import FormatError
from annio.io import write_elem
from annio.io._backed.file_backing import BackedSparseDataset, CSCDataset, CSRDataset, sparse_dataset
from annio.io._storage import sparse_read

N_ROWS, N_COLS = 53, 37


def _matrix(fmt: str, seed: int = 0, shape: tuple[int, int] = (N_ROWS, N_COLS), density: float = 0.2) -> Any:
    m = sparse.random(*shape, density=density, format="csr", random_state=seed, dtype=np.float32)
    m = m.tolil()
    m[5:9] = 0  # a run of empty rows
    m[:, 3] = 0  # an empty column
    return m.asformat(fmt)


def _write(store: Any, fmt: str, key: str = "X", m: Any = None, **extra: Any) -> tuple[Any, Any]:
    m = _matrix(fmt) if m is None else m
    kwargs = {**store.dataset_kwargs, "chunks": (16,), **extra}  # many chunks: exercises the range logic
    write_elem(store.group, key, m, dataset_kwargs=kwargs)
    return m, store.group[key]


# (rows, cols) indexers; expected values come from the dense matrix with outer indexing
_INDEXERS: list[Any] = [
    7, -1, 0,
    slice(None), slice(3, 20), slice(3, 20, 3), slice(40, 2, -3), slice(None, None, -1), slice(10, 10), slice(-5, None),
    [5, 1, 3], np.array([2, 9, 11]), np.array([11, 2, 2, 9, 52]), np.array([-1, -3, 0]), np.array([], dtype=int),
    np.arange(N_ROWS) % 3 == 0, np.zeros(N_ROWS, bool), range(4, 30, 5), np.arange(5, 12),
    (slice(2, 30), [1, 30, 3]), ([40, 2, 7], slice(None, 20)), (np.array([4, 2]), np.array([7, 1])), (slice(None), 3),
    (slice(None), np.arange(N_COLS) % 2 == 0), (3, 4), (-2, -3), (Ellipsis, 5), (9, Ellipsis), Ellipsis, (),
    (np.arange(N_ROWS) % 4 == 1, slice(30, 5, -2)), (slice(None, None, 2), slice(None, None, 2)),
]


def _axis_positions(idx: Any, n: int) -> Any:
    if isinstance(idx, slice):
        return np.arange(n)[idx]
    if isinstance(idx, int | np.integer):
        return np.array([idx % n])
    if isinstance(idx, range):
        return np.array(idx)
    arr = np.asarray(idx)
    return np.flatnonzero(arr) if arr.dtype == bool else np.where(arr < 0, arr + n, arr).astype(int)


def _expected(dense: np.ndarray, index: Any) -> Any:
    if index is Ellipsis or (isinstance(index, tuple) and not index):
        return dense
    rows, cols = index if isinstance(index, tuple) else (index, slice(None))
    rows = slice(None) if rows is Ellipsis else rows
    cols = slice(None) if cols is Ellipsis else cols
    r, c = _axis_positions(rows, dense.shape[0]), _axis_positions(cols, dense.shape[1])
    out = dense[np.ix_(r, c)]
    if isinstance(rows, int) and isinstance(cols, int):
        return out[0, 0]
    return out


def _check(ds: Any, dense: np.ndarray, index: Any, fmt: str) -> None:
    got = ds[index]
    want = _expected(dense, index)
    if np.ndim(want) == 0:
        assert np.isscalar(got) or np.ndim(got) == 0
        assert got == want
        return
    assert isinstance(got, sparse.csr_matrix if fmt == "csr" else sparse.csc_matrix), type(got)
    assert got.shape == want.shape, (index, got.shape, want.shape)
    np.testing.assert_array_equal(got.toarray(), want, err_msg=repr(index))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_every_indexer_kind(store: Any, fmt: str) -> None:
    m, group = _write(store, fmt)
    ds = sparse_dataset(group)
    assert isinstance(ds, CSRDataset if fmt == "csr" else CSCDataset)
    assert isinstance(ds, BackedSparseDataset) and ds._annio_backed_sparse
    assert ds.format == fmt and ds.shape == m.shape and ds.dtype == np.float32
    assert ds.backend == ("hdf5" if store.kind.startswith("h5ad") else "zarr")
    assert ds.group is group
    assert repr(ds) == f"{fmt.upper()}Dataset: backend {ds.backend}, shape {m.shape}, data_dtype float32"
    dense = m.toarray()
    for index in _INDEXERS:
        _check(ds, dense, index, fmt)
    # the transposed view of the same indexers exercises the other axis as the major one
    for index in [(slice(None), 7), (slice(None), [5, 1, 3]), (slice(None), np.array([11, 2, 2, 9])), (slice(None), slice(30, 2, -4))]:
        _check(ds, dense, index, fmt)
    np.testing.assert_array_equal(ds.to_memory().toarray(), dense)
    assert type(ds.to_memory()) is (sparse.csr_matrix if fmt == "csr" else sparse.csc_matrix)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_no_indptr_cache(store: Any, fmt: str) -> None:
    m, group = _write(store, fmt)
    ds = sparse_dataset(group, should_cache_indptr=False)
    dense = m.toarray()
    for index in _INDEXERS:
        _check(ds, dense, index, fmt)
    assert ds._indptr_cache is None


def test_sparse_array_setting(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        m = _matrix("csc")
        write_elem(f, "X", m)
        ds = sparse_dataset(f["X"])
        with annio.settings.override(use_sparse_array_on_read=True):
            assert type(ds[2:5]) is sparse.csc_array
            assert type(ds[[4, 1]]) is sparse.csc_array
            assert type(ds.to_memory()) is sparse.csc_array
        assert type(ds[2:5]) is sparse.csc_matrix


def test_index_errors(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", _matrix("csr"))
        ds = sparse_dataset(f["X"])
        for bad in (N_ROWS, -N_ROWS - 1, np.array([1, N_ROWS]), (0, N_COLS)):
            with pytest.raises(IndexError):
                ds[bad]
        with pytest.raises(IndexError, match="bool index"):
            ds[np.ones(5, bool)]
        with pytest.raises(ValueError, match="Inexact"):
            ds[2.0]
        with pytest.raises(IndexError):
            ds[np.ones((N_ROWS, N_COLS), bool)]
        with pytest.raises(IndexError):
            ds[1, 2, 3]


def test_unknown_format(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", {"a": np.arange(3)})
        with pytest.raises(ValueError, match="Unknown encoding type"):
            sparse_dataset(f["X"])


def test_legacy_h5sparse_group_and_append_drops_legacy_shape(tmp_path: Path) -> None:
    m = _matrix("csr")
    with h5py.File(tmp_path / "old.h5", "w") as f:
        g = f.create_group("X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = m.shape
        for part in ("data", "indices", "indptr"):
            g.create_dataset(part, data=getattr(m, part), maxshape=(None,))
        ds = sparse_dataset(g)
        assert ds.format == "csr" and ds.shape == m.shape
        np.testing.assert_array_equal(ds[[3, 1]].toarray(), m[[3, 1]].toarray())
        extra = _matrix("csr", seed=5, shape=(4, N_COLS))
        ds.append(extra)
        assert "h5sparse_shape" not in g.attrs
        assert tuple(g.attrs["shape"]) == (N_ROWS + 4, N_COLS)
        np.testing.assert_array_equal(ds.to_memory().toarray(), sparse.vstack([m, extra]).toarray())


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_append(store: Any, fmt: str) -> None:
    m, group = _write(store, fmt)
    ds = sparse_dataset(group)
    ds[[1, 2]]  # fill the indptr cache: append must keep it correct
    n_extra = 9
    extra_shape = (n_extra, N_COLS) if fmt == "csr" else (N_ROWS, n_extra)
    extra = _matrix(fmt, seed=3, shape=extra_shape)
    ds.append(extra)
    stack = sparse.vstack if fmt == "csr" else sparse.hstack
    want = stack([m, extra]).toarray()
    assert ds.shape == want.shape
    np.testing.assert_array_equal(ds.to_memory().toarray(), want)
    tail = slice(N_ROWS - 2, None)
    np.testing.assert_array_equal((ds[tail] if fmt == "csr" else ds[:, tail]).toarray(), want[tail] if fmt == "csr" else want[:, tail])
    # a fresh dataset and the regular reader agree (shape attribute updated)
    reread = annio.io.read_elem(group)
    np.testing.assert_array_equal(reread.toarray(), want)
    np.testing.assert_array_equal(sparse_dataset(group)[[N_ROWS + 1, 0]].toarray() if fmt == "csr" else sparse_dataset(group)[:, [N_COLS + 1, 0]].toarray(),
                                  want[[N_ROWS + 1, 0]] if fmt == "csr" else want[:, [N_COLS + 1, 0]])
    other_fmt = "csc" if fmt == "csr" else "csr"
    with pytest.raises(ValueError, match="same format"):
        ds.append(_matrix(other_fmt))
    with pytest.raises(ValueError, match="same size"):
        ds.append(_matrix(fmt, shape=(12, 12)))


def test_append_overflow(tmp_path: Path) -> None:
    """An on-disk indptr too narrow for the new nnz: OverflowError, nothing changed."""
    m = _matrix("csr", density=0.05)  # ~98 values, int8 indptr holds up to 127
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", m, dataset_kwargs={"indptr_dtype": np.int8})
        ds = sparse_dataset(f["X"])
        assert ds._indptr_node.dtype == np.int8
        with pytest.raises(OverflowError, match="8 bit intptr"):
            ds.append(_matrix("csr", seed=1, shape=(20, N_COLS), density=0.5))
        assert ds.shape == m.shape and f["X/data"].shape == (m.nnz,)
        np.testing.assert_array_equal(ds.to_memory().toarray(), m.toarray())


def test_append_overflow_int32_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", _matrix("csr"), dataset_kwargs={"indptr_dtype": np.int32})
        ds = sparse_dataset(f["X"])
        monkeypatch.setattr(type(ds), "nnz", property(lambda self: 2**31 - 10))
        with pytest.raises(OverflowError, match="written with a 32 bit intptr"):
            ds.append(_matrix("csr", seed=1, shape=(20, N_COLS)))


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_indptr_is_format_error(tmp_path: Path, cache: bool) -> None:
    m = _matrix("csr")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", m)
        f["X/indptr"][10] = 10**6  # beyond nnz, breaks monotonicity
        ds = sparse_dataset(f["X"], should_cache_indptr=cache)
        with pytest.raises(FormatError, match="/X/indptr"):
            ds[9:12]
        with pytest.raises(FormatError, match="/X/indptr"):
            ds[[9, 10, 30]]


def test_corrupt_indices_is_format_error(tmp_path: Path) -> None:
    m = _matrix("csr")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", m)
        f["X/indices"][0] = N_COLS + 5
        with pytest.raises(FormatError, match="/X/indices"):
            sparse_dataset(f["X"])[0:3]


def test_mismatched_parts_are_format_errors(tmp_path: Path) -> None:
    m = _matrix("csr")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_elem(f, "X", m)
        f["X"].attrs["shape"] = (N_ROWS + 1, N_COLS)
        with pytest.raises(FormatError, match="/X/indptr"):
            sparse_dataset(f["X"])
        f["X"].attrs["shape"] = (N_ROWS, N_COLS)
        del f["X/indices"]
        with pytest.raises(FormatError, match="/X/indices"):
            sparse_dataset(f["X"])


# ----------------------------------------------------------------------------- access counting
class RecordingStore(zarr.storage.LocalStore):
    """A LocalStore that records every ``get`` (key and byte range)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gets: list[tuple[str, Any]] = []

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self.gets.append((key, byte_range))
        return await super().get(key, prototype, byte_range)


def _big_csr() -> sparse.csr_matrix:
    return sparse.random(20_000, 500, density=0.02, format="csr", random_state=1, dtype=np.float32)


@pytest.mark.parametrize("sharded", [False, True])
def test_ten_row_slice_reads_only_needed_chunks(tmp_path: Path, sharded: bool) -> None:
    m = _big_csr()  # 200k values
    chunk = 2000
    kwargs: dict[str, Any] = {"chunks": (chunk,)}
    if sharded:
        kwargs["shards"] = (50 * chunk,)
    root = zarr.open_group(zarr.storage.LocalStore(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    with annio.settings.override(auto_shard_zarr_v3=False):
        write_elem(root, "X", m, dataset_kwargs=kwargs)
    assert (root["X/data"].shards is not None) == sharded
    store = RecordingStore(tmp_path / "s.zarr", read_only=True)
    ds = sparse_dataset(zarr.open_group(store, mode="r")["X"], should_cache_indptr=False)
    store.gets.clear()
    got = ds[12_345:12_355]
    np.testing.assert_array_equal(got.toarray(), m[12_345:12_355].toarray())
    chunk_gets = [(k, r) for k, r in store.gets if "/c/" in k or k.split("/")[-1].isdigit()]
    parts = {k.split("/")[1] for k, _ in chunk_gets}
    assert parts <= {"data", "indices", "indptr"}
    lo, hi = m.indptr[12_345], m.indptr[12_355]
    needed = {(lo // chunk), ((hi - 1) // chunk)}
    if not sharded:
        for part in ("data", "indices"):
            keys = {k for k, _ in chunk_gets if k.split("/")[1] == part}
            assert keys == {f"X/{part}/c/{c}" for c in needed}, keys
    else:
        # one shard index read + byte-range reads of exactly the needed inner chunks
        for part in ("data", "indices"):
            ranges = [r for k, r in chunk_gets if k.split("/")[1] == part]
            assert ranges and all(r is not None for r in ranges), ranges
            itemsize = 4
            read_bytes = sum(getattr(r, "end", 0) - getattr(r, "start", 0) for r in ranges if hasattr(r, "end"))
            assert read_bytes <= len(needed) * chunk * itemsize + 4096, read_bytes
    total = sum(1 for _ in chunk_gets)
    assert total <= 12, store.gets


class RecordingFile:
    """A file object that records the bytes h5py reads through it."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        out = self._f.read(n)
        self.bytes_read += len(out)
        return out

    def readinto(self, buf: Any) -> int:
        n = self._f.readinto(buf)
        self.bytes_read += n or 0
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_h5_ten_rows_read_few_bytes(tmp_path: Path, compression: str | None) -> None:
    m = _big_csr()
    path = tmp_path / "a.h5"
    kwargs = {"chunks": (2000,)} | ({"compression": "gzip"} if compression else {})
    with h5py.File(path, "w") as f:
        write_elem(f, "X", m, dataset_kwargs=kwargs)
    rec = RecordingFile(path)
    with h5py.File(rec, "r") as f:
        ds = sparse_dataset(f["X"], should_cache_indptr=False)
        before = rec.bytes_read
        rows = np.array([12_355, 345, 12_345, 12_350])
        got = ds[rows]
        np.testing.assert_array_equal(got.toarray(), m[rows].toarray())
        used = rec.bytes_read - before
    data_bytes = m.nnz * 8  # data + indices
    # at most a few chunks of data, indices and indptr (+ B-tree nodes), not the matrix
    assert used < 8 * 2000 * 4 + 64 * 1024, used
    assert used < data_bytes / 10


def test_read_ranges_paths(tmp_path: Path) -> None:
    """read_ranges agrees with slicing for every storage path."""
    values = np.arange(10_000, dtype=np.int32)
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("contig", data=values)
        f.create_dataset("chunked", data=values, chunks=(300,))
        f.create_dataset("gzip", data=values, chunks=(300,), compression="gzip")
        f.create_dataset("shuffle", data=values, chunks=(300,), compression="gzip", shuffle=True)
        z = zarr.open_array(tmp_path / "z.zarr", mode="w", shape=values.shape, chunks=(300,), dtype=values.dtype)
        z[...] = values
        arrays = [annio.io._storage.adapter.wrap(f[k]) for k in ("contig", "chunked", "gzip", "shuffle")] + [annio.io._storage.adapter.wrap(z)]
        for n in (1, 3, 50, 2000):
            bounds = np.sort(rng.choice(10_000, 2 * n, replace=False))
            starts, stops = bounds[::2], bounds[1::2]
            stops[::3] = starts[::3]  # some empty ranges
            want = np.concatenate([values[a:b] for a, b in zip(starts, stops, strict=True)])
            for arr in arrays:
                np.testing.assert_array_equal(sparse_read.read_ranges(arr, starts, stops), want, err_msg=f"{arr} {n}")


# ----------------------------------------------------------------------------- property test
@st.composite
def _axis_indexer(draw: Any, n: int) -> Any:
    kind = draw(st.sampled_from(["int", "slice", "sorted", "unsorted", "mask", "full"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "slice":
        start = draw(st.one_of(st.none(), st.integers(-n - 2, n + 2)))
        stop = draw(st.one_of(st.none(), st.integers(-n - 2, n + 2)))
        step = draw(st.one_of(st.none(), st.integers(-4, 4).filter(lambda s: s != 0)))
        return slice(start, stop, step)
    if kind == "sorted":
        return np.array(sorted(draw(st.sets(st.integers(0, n - 1), max_size=n))), dtype=int)
    if kind == "unsorted":
        return np.array(draw(st.lists(st.integers(-n, n - 1), max_size=2 * n)), dtype=int)
    if kind == "mask":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return slice(None)


@pytest.fixture(scope="module")
def property_datasets(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("prop")
    f = h5py.File(path / "p.h5", "w")
    z = zarr.open_group(path / "p.zarr", mode="w", zarr_format=3)
    out = []
    for fmt in ("csr", "csc"):
        m = _matrix(fmt, seed=7)
        write_elem(f, fmt, m, dataset_kwargs={"chunks": (8,), "compression": "gzip"})
        write_elem(z, fmt, m, dataset_kwargs={"chunks": (8,)})
        out += [(fmt, m.toarray(), sparse_dataset(f[fmt])), (fmt, m.toarray(), sparse_dataset(z[fmt], should_cache_indptr=False))]
    yield out
    f.close()


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_indexers_match_numpy(property_datasets: Any, data: Any) -> None:
    rows = data.draw(_axis_indexer(N_ROWS), label="rows")
    cols = data.draw(_axis_indexer(N_COLS), label="cols")
    which = data.draw(st.integers(0, len(property_datasets) - 1), label="dataset")
    fmt, dense, ds = property_datasets[which]
    _check(ds, dense, (rows, cols), fmt)
