"""Row selections decoded from held bytes (:mod:`annio.io._storage.zarr_tree_rows`) equal
zarr-python's reads of the same arrays, for every layout annio decodes itself; anything not
held makes the decoder give up rather than guess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.abc.store import RangeByteRequest, SuffixByteRequest

from annio.errors import FormatError
from annio.io._storage.zarr_tree_layout import doc_layout
from annio.io._storage.zarr_tree_rows import read_cached_rows, row_request

MISSING = object()


def _lookup(root: Path, held: set[str] | None = None) -> Any:
    """Bytes of the store's objects read from disk (``held``: only those keys)."""

    def lookup(key: str, byte_range: Any) -> Any:
        if held is not None and key not in held:
            return MISSING
        try:
            data = (root / key).read_bytes()
        except FileNotFoundError:
            return None
        if byte_range is None:
            return data
        if isinstance(byte_range, SuffixByteRequest):
            return data[-byte_range.suffix :]
        assert isinstance(byte_range, RangeByteRequest)
        return data[byte_range.start : byte_range.end]

    return lookup


def _write(root: Path, values: np.ndarray, chunks: int, shards: int | None, compressors: Any) -> Any:
    g = zarr.open_group(root, mode="w", zarr_format=3)
    arr = g.create_array("a", shape=values.shape, chunks=(chunks,), shards=None if shards is None else (shards,), dtype=values.dtype,
                         fill_value=3, compressors=compressors)  # fmt: skip
    arr[:] = values
    doc = json.loads((root / "a" / "zarr.json").read_text())  # the document a consolidated tree holds
    return doc_layout(doc, "/a", np.dtype(values.dtype), (chunks,), None if shards is None else (shards,), "a")


@st.composite
def _case(draw: Any) -> tuple[np.ndarray, int, int | None, Any, Any]:
    n = draw(st.integers(1, 60))
    chunks = draw(st.integers(1, 9))
    shards = draw(st.sampled_from([None, chunks, 2 * chunks, 4 * chunks]))
    dtype = draw(st.sampled_from(["i4", "f8", "u1", "bool"]))
    values = np.asarray(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=dtype)
    if draw(st.booleans()):  # a run of the fill value: chunks not written at all
        values[: n // 2] = np.asarray(3).astype(dtype)
    rows = draw(st.one_of(
        st.builds(lambda a, b: slice(min(a, b), max(a, b)), st.integers(0, n), st.integers(0, n)),
        st.lists(st.integers(0, n - 1), unique=True).map(lambda v: np.array(sorted(v), dtype=np.int64)),
        st.just(Ellipsis),
    ))  # fmt: skip
    return values, chunks, shards, draw(st.sampled_from(["auto", None])), rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_case())
def test_cached_rows_equal_zarr_python(tmp_path: Path, case: Any) -> None:
    values, chunks, shards, compressors, rows = case
    root = tmp_path / "s.zarr"
    lay = _write(root, values, chunks, shards, compressors)
    assert lay is not None
    request = row_request(rows, len(values))
    assert request is not None
    got = read_cached_rows(lay, *request, _lookup(root), MISSING)
    expected = zarr.open_array(root / "a", mode="r")[rows if not isinstance(rows, np.ndarray) else rows] if len(values) else values
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


def test_not_held_bytes_give_up(tmp_path: Path) -> None:
    root = tmp_path / "s.zarr"
    lay = _write(root, np.arange(40, dtype="i4"), 5, 20, "auto")
    held = {"a/c/0"}  # the first shard only
    assert read_cached_rows(lay, 0, 20, None, _lookup(root, held), MISSING) is not None
    assert read_cached_rows(lay, 15, 25, None, _lookup(root, held), MISSING) is None


def test_corrupt_shard_index_names_the_element(tmp_path: Path) -> None:
    root = tmp_path / "s.zarr"
    lay = _write(root, np.arange(40, dtype="i4"), 5, 20, "auto")
    shard = root / "a" / "c" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="/a.*checksum"):
        read_cached_rows(lay, 0, 10, None, _lookup(root), MISSING)


@pytest.mark.parametrize("selection", [slice(0, 10, 2), np.array([3, 1]), np.array([1, 1]), np.array([-1]), (slice(0, 2), slice(0, 1)), 3])
def test_selections_it_does_not_decode(selection: Any) -> None:
    assert row_request(selection, 10) is None


@pytest.mark.parametrize("shards", [None, 8])
@pytest.mark.parametrize("compressors", ["auto", None])
def test_cached_string_rows_equal_zarr_python(tmp_path: Path, shards: int | None, compressors: Any) -> None:
    root = tmp_path / "s.zarr"
    values = np.array([f"s{i}" * (i % 4) for i in range(21)], dtype=object)
    g = zarr.open_group(root, mode="w", zarr_format=3)
    arr = g.create_array("a", shape=values.shape, chunks=(4,), shards=None if shards is None else (shards,), dtype=str, compressors=compressors)
    arr[:] = values
    doc = json.loads((root / "a" / "zarr.json").read_text())
    lay = doc_layout(doc, "/a", np.dtype(object), (4,), None if shards is None else (shards,), "a")
    assert lay is not None
    expected = zarr.open_array(root / "a", mode="r")
    for rows in (slice(3, 17), np.array([0, 5, 6, 20])):
        got = read_cached_rows(lay, *row_request(rows, len(values)), _lookup(root), MISSING)
        assert got.dtype == object and all(type(v) is str for v in got)
        np.testing.assert_array_equal(got, np.asarray(expected[rows], dtype=object))


def test_damaged_string_chunk_names_the_element(tmp_path: Path) -> None:
    root = tmp_path / "s.zarr"
    g = zarr.open_group(root, mode="w", zarr_format=3)
    g.create_array("a", shape=(8,), chunks=(4,), dtype=str, compressors=None)[:] = np.array(list("abcdefgh"), dtype=object)
    (root / "a" / "c" / "0").write_bytes(b"\x09\x00\x00\x00junk")
    doc = json.loads((root / "a" / "zarr.json").read_text())
    lay = doc_layout(doc, "/a", np.dtype(object), (4,), None, "a")
    with pytest.raises(FormatError, match="/a"):
        read_cached_rows(lay, 0, 4, None, _lookup(root), MISSING)
