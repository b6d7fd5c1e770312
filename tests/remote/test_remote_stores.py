"""zarr stores and HDF5 files read over S3 (SeaweedFS) and HTTP (wsgidav) through
:mod:`annio.io._storage.remote`, with request counts checked at the HTTP server and at the store."""

from __future__ import annotations

import pickle
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from _remote_data import (
    CHUNK_ROWS,
    N_COLS,
    N_ROWS,
    SHARD_ROWS,
    SPECS,
    StoreSpec,
    chunk_key,
    consolidated_keys,
    expected_obs,
    expected_x,
    row_chunks,
    shard_index,
    write_h5,
    write_store,
)
from zarr.abc.store import RangeByteRequest, Store, SuffixByteRequest
from zarr.storage import WrapperStore

from annio.io._storage.remote import (
    MetadataPrefetchStore,
    RemoteH5File,
    is_url,
    open_h5_file_from_url,
    zarr_store_from_url,
)

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]

SPEC_IDS = [s.name for s in SPECS]
COALESCING_ZARR = hasattr(Store, "get_ranges")  # zarr >= 3.4: shard reads coalesce byte ranges
ROWS = (25, 45)  # a row slice crossing a chunk boundary


@pytest.fixture(scope="session")
def local_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test zarr stores and an HDF5 file, written locally with zarr-python / h5py."""
    local = tmp_path_factory.mktemp("remote-src") / "stores"
    local.mkdir()
    for spec in SPECS:
        write_store(local / spec.dirname, spec)
    write_h5(local / "file.h5ad")
    return local


@pytest.fixture(scope="session")
def s3_stores(local_stores: Path, s3_server: Any) -> Any:
    """``s3_server`` with the local stores uploaded under ``stores/``."""
    s3_server.upload_dir(local_stores, "stores")
    return s3_server


@pytest.fixture(scope="session")
def http_stores(local_stores: Path, http_server: Any) -> Any:
    """``http_server`` with the local stores placed under ``/stores/``."""
    shutil.copytree(local_stores, http_server.root / "stores")
    return http_server


def _url(request: pytest.FixtureRequest, server: str, name: str) -> tuple[str, dict[str, Any]]:
    """URL and storage_options of ``stores/<name>`` on ``server`` (``"s3"`` or ``"http"``);
    only that server's fixture is requested, so one missing server skips only its tests."""
    if server == "s3":
        s3 = request.getfixturevalue("s3_stores")
        return s3.url(f"stores/{name}"), s3.storage_options()
    return request.getfixturevalue("http_stores").url(f"stores/{name}"), {}


class CountingStore(WrapperStore[Any]):
    """Records every read a zarr store is asked for (key, byte range)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.reads: list[tuple[str, Any]] = []

    def _with_store(self, store: Any) -> CountingStore:
        return type(self)(store)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self.reads.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]) -> Any:
        key_ranges = list(key_ranges)
        self.reads.extend(key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)

    if COALESCING_ZARR:

        async def get_ranges(self, key: str, byte_ranges: Any, *, prototype: Any, **kwargs: Any) -> Any:
            # zarr >= 3.4 reads the inner chunks of a shard through ``Store.get_ranges``; a
            # WrapperStore would forward it to the wrapped store's ``get`` behind our back. Run the
            # stock implementation (coalescing, then ``self.get``) so every fetch is recorded.
            options = {k: v for k, v in kwargs.items() if v is not None}
            async for group in Store.get_ranges(self, key, byte_ranges, prototype=prototype, **options):
                yield group


def counted(store: Any) -> CountingStore:
    """Put a :class:`CountingStore` between the prefetch wrapper and the backend store."""
    assert isinstance(store, MetadataPrefetchStore)
    counter = CountingStore(store._store)
    store._store = counter
    return counter


def expected_slice_reads(local: Path, spec: StoreSpec, rows: tuple[int, int]) -> list[tuple[str, str | None]]:
    """The (key, HTTP Range header) pairs reading ``X[rows]`` must cause."""
    chunks = row_chunks(*rows, CHUNK_ROWS)
    if not spec.sharded:
        return [(chunk_key(spec, "X", (c, 0)), None) for c in chunks]
    per_shard = SHARD_ROWS // CHUNK_ROWS
    out: list[tuple[str, str | None]] = []
    for shard in sorted({c // per_shard for c in chunks}):
        key = chunk_key(spec, "X", (shard, 0))
        index = shard_index(local / key, per_shard)
        out.append((key, f"bytes=-{16 * per_shard + 4}"))
        ranges = sorted(index[c % per_shard] for c in chunks if c // per_shard == shard)
        if COALESCING_ZARR:  # zarr >= 3.4 merges nearby inner-chunk ranges into one request
            ranges = _coalesce(ranges)
        out.extend((key, f"bytes={offset}-{offset + nbytes - 1}") for offset, nbytes in ranges)
    return out


def _coalesce(ranges: list[tuple[int, int]], max_gap: int = 1 << 20, max_bytes: int = 16 << 20) -> list[tuple[int, int]]:
    """(offset, nbytes) ranges merged like zarr's default ``Store.get_ranges`` policy."""
    merged: list[tuple[int, int]] = []
    for offset, nbytes in ranges:
        if merged:
            start, size = merged[-1]
            end = max(start + size, offset + nbytes)
            if offset - (start + size) <= max_gap and end - start <= max_bytes:
                merged[-1] = (start, end - start)
                continue
        merged.append((offset, nbytes))
    return merged


# ----------------------------------------------------------------------------- basics
def test_is_url() -> None:
    assert is_url("s3://bucket/x.zarr")
    assert is_url("https://example.org/x.zarr")
    assert is_url("http://127.0.0.1:8000/a/b.h5ad")
    assert not is_url("file:///tmp/x.zarr")
    assert not is_url("/tmp/x.zarr")
    assert not is_url(Path("x.zarr"))
    assert not is_url(3)
    with pytest.raises(ValueError, match="not a URL"):
        zarr_store_from_url("/tmp/x.zarr")


def test_storage_options_conflict() -> None:
    with pytest.raises(ValueError, match="conflicting values for access_key_id"):
        zarr_store_from_url("s3://b/x.zarr", storage_options={"key": "a", "aws_access_key_id": "b"})
    with pytest.raises(ValueError, match="backend"):
        zarr_store_from_url("s3://b/x.zarr", storage_options={"backend": "nope"})
    with pytest.raises(ValueError, match="read-only"):
        zarr_store_from_url("https://example.org/x.zarr", read_only=False)


@pytest.mark.parametrize("backend", ["obstore", "fsspec"])
@pytest.mark.parametrize("server", ["s3", "http"])
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_read_matches_local(request: pytest.FixtureRequest, local_stores: Path, server: str, backend: str, spec: StoreSpec) -> None:
    url, options = _url(request, server, spec.dirname)
    store = zarr_store_from_url(url, storage_options={**options, "backend": backend})
    inner = store._store if isinstance(store, MetadataPrefetchStore) else store
    assert type(inner).__name__ == ("ObjectStore" if backend == "obstore" else "FsspecStore")
    remote = zarr.open_group(store, mode="r")
    local = zarr.open_group(local_stores / spec.dirname, mode="r")
    assert remote.metadata.zarr_format == spec.zarr_format
    assert remote.metadata.consolidated_metadata is not None
    assert dict(remote.attrs) == dict(local.attrs)
    assert dict(remote["obs"].attrs) == {"kind": "frame"}
    assert dict(remote["X"].attrs) == {"encoding-type": "array"}
    assert sorted(k for k, _ in remote.members(max_depth=None)) == sorted(consolidated_keys(local_stores / spec.dirname, spec))
    np.testing.assert_array_equal(remote["X"][:], expected_x())
    np.testing.assert_array_equal(remote["X"][slice(*ROWS), 3:7], expected_x()[slice(*ROWS), 3:7])
    np.testing.assert_array_equal(remote["obs/idx"][:], expected_obs())
    if spec.sharded:
        assert remote["X"].shards == (SHARD_ROWS, N_COLS)


def test_anonymous_read(s3_stores: Any) -> None:
    store = zarr_store_from_url(s3_stores.url("stores/v3.zarr"), storage_options=s3_stores.storage_options(anon=True))
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["X"][:5], expected_x()[:5])
    # obstore spellings of the credentials work too
    store = zarr_store_from_url(s3_stores.url("stores/v3.zarr"), storage_options=s3_stores.storage_options(style="obstore"))
    assert zarr.open_group(store, mode="r").attrs["n"] == N_ROWS


def test_missing_store(s3_server: Any, http_server: Any) -> None:
    s3_stores, http_stores = s3_server, http_server
    for url, options in (
        (s3_stores.url("stores/nothing.zarr"), s3_stores.storage_options()),
        (http_stores.url("stores/nothing.zarr"), {}),
    ):
        with pytest.raises(FileNotFoundError):
            zarr.open_group(zarr_store_from_url(url, storage_options=options), mode="r")


def test_store_pickles(http_stores: Any) -> None:
    store = zarr_store_from_url(http_stores.url("stores/v3.zarr"))
    zarr.open_group(store, mode="r")
    clone = pickle.loads(pickle.dumps(store))
    assert isinstance(clone, MetadataPrefetchStore)
    np.testing.assert_array_equal(zarr.open_group(clone, mode="r")["X"][:3], expected_x()[:3])


# ----------------------------------------------------------------------------- request counts
@pytest.mark.parametrize("hint", [False, True], ids=["no-hint", "format-hint"])
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_consolidated_open_is_one_request_http(http_stores: Any, spec: StoreSpec, hint: bool) -> None:
    prefix = f"/stores/{spec.dirname}/"
    store = zarr_store_from_url(http_stores.url(f"stores/{spec.dirname}"), zarr_format=spec.zarr_format if hint else None)
    http_stores.log.clear()
    group = zarr.open_group(store, mode="r")
    # walking the whole hierarchy and its attributes costs nothing more: it is all in the one document
    members = dict(group.members(max_depth=None))
    assert {k: dict(v.attrs) for k, v in members.items()}["obs"] == {"kind": "frame"}
    assert members["X"].shape == (N_ROWS, N_COLS)
    requests = [(e.method, e.path) for e in http_stores.log.under(prefix)]
    if spec.zarr_format == 3:
        assert requests == [("GET", prefix + "zarr.json")]
    elif hint:
        assert requests == [("GET", prefix + ".zmetadata")]
    else:  # v2 without the format hint: zarr.json (absent), then .zmetadata
        assert requests == [("GET", prefix + "zarr.json"), ("GET", prefix + ".zmetadata")]
    assert all(e.status in (200, 404) for e in http_stores.log.under(prefix))


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_plain_zarr_open_costs_more(http_stores: Any, spec: StoreSpec) -> None:
    """Without the prefetch wrapper zarr-python probes four keys: the reason the wrapper exists."""
    prefix = f"/stores/{spec.dirname}/"
    store = zarr_store_from_url(http_stores.url(f"stores/{spec.dirname}"), prefetch_metadata=False)
    http_stores.log.clear()
    zarr.open_group(store, mode="r")
    assert sorted(e.path for e in http_stores.log.under(prefix)) == sorted(prefix + k for k in ("zarr.json", ".zgroup", ".zattrs", ".zmetadata"))


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_consolidated_open_is_one_request_s3(s3_stores: Any, spec: StoreSpec) -> None:
    store = zarr_store_from_url(s3_stores.url(f"stores/{spec.dirname}"), storage_options=s3_stores.storage_options(), zarr_format=spec.zarr_format)
    counter = counted(store)
    group = zarr.open_group(store, mode="r")
    dict(group.members(max_depth=None))
    assert counter.reads == [("zarr.json" if spec.zarr_format == 3 else ".zmetadata", None)]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_row_slice_fetches_only_its_chunks_http(local_stores: Path, http_stores: Any, spec: StoreSpec) -> None:
    prefix = f"/stores/{spec.dirname}/"
    group = zarr.open_group(zarr_store_from_url(http_stores.url(f"stores/{spec.dirname}")), mode="r")
    x = group["X"]
    http_stores.log.clear()
    np.testing.assert_array_equal(x[slice(*ROWS)], expected_x()[slice(*ROWS)])
    got = sorted((e.path.removeprefix(prefix), e.range) for e in http_stores.log.under(prefix))
    expected = sorted(expected_slice_reads(local_stores / spec.dirname, spec, ROWS), key=lambda t: (t[0], t[1] or ""))
    assert got == sorted(expected, key=lambda t: (t[0], t[1] or "")), got
    assert all(e.status in (200, 206) for e in http_stores.log.under(prefix))


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_row_slice_fetches_only_its_chunks_s3(local_stores: Path, s3_stores: Any, spec: StoreSpec) -> None:
    store = zarr_store_from_url(s3_stores.url(f"stores/{spec.dirname}"), storage_options=s3_stores.storage_options())
    group = zarr.open_group(store, mode="r")
    x = group["X"]
    counter = counted(store)
    np.testing.assert_array_equal(x[slice(*ROWS)], expected_x()[slice(*ROWS)])

    def as_header(byte_range: Any) -> str | None:
        if byte_range is None:
            return None
        if isinstance(byte_range, SuffixByteRequest):
            return f"bytes=-{byte_range.suffix}"
        assert isinstance(byte_range, RangeByteRequest), byte_range
        return f"bytes={byte_range.start}-{byte_range.end - 1}"

    got = sorted(((k, as_header(r)) for k, r in counter.reads), key=lambda t: (t[0], t[1] or ""))
    expected = sorted(expected_slice_reads(local_stores / spec.dirname, spec, ROWS), key=lambda t: (t[0], t[1] or ""))
    assert got == expected


# ----------------------------------------------------------------------------- writing
@pytest.mark.parametrize("backend", ["obstore", "fsspec"])
def test_write_zarr_to_s3(s3_server: Any, backend: str) -> None:
    s3_stores = s3_server
    key = f"written/{backend}.zarr"
    options = {**s3_stores.storage_options(), "backend": backend}
    store = zarr_store_from_url(s3_stores.url(key), storage_options=options, read_only=False)
    assert not isinstance(store, MetadataPrefetchStore) and not store.read_only
    root = zarr.open_group(store, mode="w", zarr_format=3)
    root.attrs["written-by"] = backend
    arr = root.create_array("X", shape=(60, 4), chunks=(10, 4), shards=(30, 4), dtype="int32")
    arr[:] = np.arange(240, dtype="int32").reshape(60, 4)
    zarr.consolidate_metadata(store)
    assert set(s3_stores.keys(key + "/")) == {f"{key}/zarr.json", f"{key}/X/zarr.json", f"{key}/X/c/0/0", f"{key}/X/c/1/0"}
    back = zarr.open_group(zarr_store_from_url(s3_stores.url(key), storage_options=s3_stores.storage_options()), mode="r")
    assert back.attrs["written-by"] == backend
    np.testing.assert_array_equal(back["X"][:], np.arange(240, dtype="int32").reshape(60, 4))


# ----------------------------------------------------------------------------- HDF5
@pytest.mark.parametrize("server", ["s3", "http"])
def test_h5_over_fsspec(request: pytest.FixtureRequest, local_stores: Path, server: str) -> None:
    url, options = _url(request, server, "file.h5ad")
    http_stores = request.getfixturevalue("http_stores") if server == "http" else None
    if http_stores is not None:
        http_stores.log.clear()
    with open_h5_file_from_url(url, storage_options=options) as remote, h5py.File(local_stores / "file.h5ad", "r") as local:
        assert isinstance(remote, RemoteH5File)
        assert remote.attrs["title"] == local.attrs["title"]
        assert sorted(remote["obs"]) == sorted(local["obs"])
        np.testing.assert_array_equal(remote["X"][slice(*ROWS)], local["X"][slice(*ROWS)])
        np.testing.assert_array_equal(remote["obs/col7"][:], local["obs/col7"][:])
        np.testing.assert_array_equal(remote["big"][123_456:234_567], local["big"][123_456:234_567])
        fobj = remote._annio_fileobj
    assert fobj.closed
    if http_stores is not None:
        requests = http_stores.log.under("/stores/file.h5ad")
        # a HEAD (or GET) for the size plus a handful of 2 MiB blocks, never one request per read
        assert 1 <= len(requests) <= 6, [(e.method, e.range) for e in requests]


def test_open_timing_smoke(s3_stores: Any, http_stores: Any) -> None:
    """Opening a consolidated store is a single round trip: well under a second locally."""
    for url, options in (
        (s3_stores.url("stores/v3-sharded.zarr"), s3_stores.storage_options()),
        (http_stores.url("stores/v3-sharded.zarr"), {}),
    ):
        start = time.perf_counter()
        group = zarr.open_group(zarr_store_from_url(url, storage_options=options), mode="r")
        dict(group.members(max_depth=None))
        assert time.perf_counter() - start < 2.0
