"""Arrays of several chunks (or shards) in local consolidated zarr v3 stores, decoded by
annio without zarr-python (zarr_tree + zarr_shards.read_layout): the values are what
zarr-python reads from the same files, missing chunks read as the fill value and damaged
chunks raise a FormatError naming the element."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from annio.errors import FormatError
from annio.io._storage import adapter, zarr_tree


def _write(path: Path, data: np.ndarray, *, chunks, shards, compressors, fill_value=0) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(path), mode="w", zarr_format=3)
    arr = group.create_array("a", shape=data.shape, dtype=data.dtype, chunks=chunks, shards=shards, compressors=compressors, fill_value=fill_value)
    arr[...] = data
    zarr.consolidate_metadata(zarr.storage.LocalStore(path))


def _tree_array(path: Path) -> zarr_tree.TreeArray:
    root = adapter.wrap(zarr_tree.open_tree(zarr.storage.LocalStore(path, read_only=True)))
    arr = root["a"]
    assert isinstance(arr, zarr_tree.TreeArray)
    return arr


_ZSTD = [zarr.codecs.ZstdCodec(level=0, checksum=False)]


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(1, 23),
    cols=st.integers(1, 9),
    chunk=st.tuples(st.integers(1, 6), st.integers(1, 4)),
    per_shard=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 2))),
    dtype=st.sampled_from(["float32", "int64", "uint8", "bool", "float64"]),
    compressed=st.booleans(),
)
def test_multi_chunk_read_equals_zarr_python(tmp_path_factory, rows, cols, chunk, per_shard, dtype, compressed) -> None:
    path = tmp_path_factory.mktemp("t") / "d.zarr"
    data = (np.arange(rows * cols) % 7).reshape(rows, cols).astype(dtype)
    shards = None if per_shard is None else (chunk[0] * per_shard[0], chunk[1] * per_shard[1])
    _write(path, data, chunks=chunk, shards=shards, compressors=_ZSTD if compressed else None)
    arr = _tree_array(path)
    assert arr._layout() is not None  # annio's own decoder reads it
    got = arr.read()
    np.testing.assert_array_equal(got, zarr.open_array(path / "a", mode="r")[...])
    assert got.dtype == np.dtype(dtype)


@pytest.mark.parametrize("shards", [None, (8, 4)])
def test_missing_chunks_read_as_fill_value(tmp_path: Path, shards) -> None:
    path = tmp_path / "d.zarr"
    data = np.arange(64.0).reshape(16, 4)
    data[8:] = np.nan  # fill: the second half is never written
    _write(path, data, chunks=(4, 2), shards=shards, compressors=_ZSTD, fill_value=np.nan)
    files = sorted(p.relative_to(path / "a").as_posix() for p in (path / "a").rglob("*") if p.is_file() and p.name != "zarr.json")
    assert files and all(int(f.split("/")[1]) * (shards or (4, 2))[0] < 8 for f in files)
    np.testing.assert_array_equal(_tree_array(path).read(), data)
    np.testing.assert_array_equal(_tree_array(path).read(), zarr.open_array(path / "a", mode="r")[...])


@pytest.mark.parametrize("shards", [None, (8, 4)])
def test_damaged_chunk_names_the_element(tmp_path: Path, shards) -> None:
    path = tmp_path / "d.zarr"
    _write(path, np.arange(64.0).reshape(16, 4), chunks=(4, 2), shards=shards, compressors=_ZSTD)
    victim = path / "a" / "c" / "0" / "0"
    victim.write_bytes(victim.read_bytes()[:-7])
    with pytest.raises(FormatError, match="/a"):
        _tree_array(path).read()


def test_unusual_layouts_go_to_zarr_python(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    data = np.arange(40.0).reshape(10, 4)
    _write(path, data, chunks=(3, 3), shards=None, compressors=[zarr.codecs.GzipCodec()])
    arr = _tree_array(path)
    assert arr._layout() is None
    np.testing.assert_array_equal(arr.read(), data)
