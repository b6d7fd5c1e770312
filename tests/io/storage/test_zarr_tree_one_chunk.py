"""One-chunk arrays of local consolidated zarr v3 stores, decoded by annio's tree: zstd
frames that declare their decompressed size are decoded straight into the result; frames
that do not (streamed) or that declare the wrong size are still read right or raise a
FormatError naming the element."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from numcodecs import zstd

from annio.errors import FormatError
from annio.io._storage import adapter, zarr_tree
from annio.io._storage.zarr_tree_layout import zstd_content_size


def _raw_frame(payload: bytes, *, declared: int | None) -> bytes:
    """A zstd frame holding ``payload`` in one raw block; ``declared`` is the content size
    written in its header (None: no size, as a streaming compressor writes)."""
    assert len(payload) < 1 << 17
    if declared is None:
        header = bytes([0x00, 7 << 3])  # no content size; window 128 KiB
    else:
        header = bytes([0xA0]) + int(declared).to_bytes(4, "little")  # single segment, 4-byte size
    block = (1 | (len(payload) << 3)).to_bytes(3, "little")  # last block, raw
    return b"\x28\xb5\x2f\xfd" + header + block + payload


@hsettings(max_examples=40, deadline=None)
@given(n=st.integers(0, 200_000), level=st.sampled_from([-3, 0, 1, 3, 9]), checksum=st.booleans())
def test_content_size_is_what_the_frame_declares(n: int, level: int, checksum: bool) -> None:
    data = (np.arange(n) % 251).astype("u1")
    assert zstd_content_size(zstd.compress(data, level, checksum)) == n


def test_content_size_absent_or_not_zstd() -> None:
    assert zstd_content_size(_raw_frame(b"abc" * 10, declared=None)) is None
    assert zstd_content_size(_raw_frame(b"abc" * 10, declared=30)) == 30
    assert zstd_content_size(b"not a zstd frame") is None
    assert zstd_content_size(b"\x28\xb5\x2f\xfd\xa0\x01") is None  # header cut short
    assert zstd_content_size(memoryview(zstd.compress(np.zeros(300, "u1"), 1, False))) == 300


def _store(path: Path, data: np.ndarray, *, shards: bool) -> Path:
    group = zarr.open_group(zarr.storage.LocalStore(path), mode="w", zarr_format=3)
    arr = group.create_array(
        "a", shape=data.shape, dtype=data.dtype, chunks=data.shape, shards=data.shape if shards else None,
        compressors=[zarr.codecs.ZstdCodec(level=0, checksum=False)],
    )
    arr[...] = data
    zarr.consolidate_metadata(zarr.storage.LocalStore(path))
    return path


def _read(path: Path) -> np.ndarray:
    arr = adapter.wrap(zarr_tree.open_tree(zarr.storage.LocalStore(path, read_only=True)))["a"]
    assert isinstance(arr, zarr_tree.TreeArray) and arr._plan() == [(0, False)]
    return arr.read()


@pytest.mark.parametrize("shards", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "uint16", "float64"])
def test_one_chunk_read_equals_zarr_python(tmp_path: Path, dtype: str, shards: bool) -> None:
    data = (np.arange(3 * 41) % 5).reshape(3, 41).astype(dtype)
    got = _read(_store(tmp_path / "d.zarr", data, shards=shards))
    np.testing.assert_array_equal(got, zarr.open_array(tmp_path / "d.zarr" / "a", mode="r")[...])
    assert got.dtype == np.dtype(dtype) and got.flags.writeable and got.flags.c_contiguous
    got[0, 0] = got[0, 1]  # the result owns its memory: writing to it touches nothing else


def test_streamed_frame_is_read(tmp_path: Path) -> None:
    data = np.arange(100, dtype="<f4")
    path = _store(tmp_path / "d.zarr", data, shards=False)
    (path / "a" / "c" / "0").write_bytes(_raw_frame(data.tobytes(), declared=None))
    np.testing.assert_array_equal(_read(path), data)


@pytest.mark.parametrize("declared", [396, 400, 404])
def test_frame_of_wrong_size_names_the_element(tmp_path: Path, declared: int) -> None:
    data = np.arange(100, dtype="<f4")
    path = _store(tmp_path / "d.zarr", data, shards=False)
    (path / "a" / "c" / "0").write_bytes(_raw_frame(data[:99].tobytes(), declared=declared))  # 396 bytes held
    with pytest.raises(FormatError, match=r"\ba\b.*chunk"):
        _read(path)
