"""Parallel sharded zarr v3 I/O: shards annio builds itself are exactly what zarr reads, and
annio reads what zarr writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import annio
from annio.errors import FormatError
from annio.io import read_elem, write_elem
from annio.io._storage import adapter as storage
from annio.io._storage import zarr_shards

# (shape, inner chunks, shards): whole shards, edge shards, edge inner chunks
LAYOUTS = [
    ((10_000,), (256,), (1024,)),
    ((1000, 7), (64, 7), (256, 7)),
    ((130, 9), (16, 4), (64, 8)),  # edge chunks on both axes; inner chunks wholly outside
    ((5, 6, 7), (2, 3, 7), (4, 6, 7)),
]
DTYPES = ["f4", "f8", "i4", "i8", "u1", "i1", "bool", "u2", "f2"]


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    monkeypatch.setattr(zarr_shards, "MIN_PARALLEL_BYTES", 1)  # the thread pool even for tiny arrays


def _data(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.poisson(1.5, size=shape)
    if np.dtype(dtype).kind == "f":
        values = values * rng.random(shape)
    data = values.astype(dtype)
    data.reshape(-1)[: data.size // 5] = 0  # some all-fill chunks (skipped, like zarr does)
    return data


def _group(path: Path) -> zarr.Group:
    return zarr.open_group(path, mode="w", zarr_format=3)


def _direct(group: zarr.Group, data: np.ndarray, chunks, shards, **kwargs) -> zarr.Array:
    arr = zarr_shards.create_with_data(group, "x", data, dict(chunks=chunks, shards=shards, **kwargs))
    assert zarr_shards.can_write_direct(arr)
    return arr


def _open(path: Path) -> storage.StorageArray:
    return storage.wrap(zarr.open_group(path, mode="r")["x"])


def _plain_zarr_read(path: Path, name: str, *, zarrs: bool) -> np.ndarray:
    if zarrs:
        pytest.importorskip("zarrs")
        with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
            return zarr.open_array(path / name, mode="r")[...]
    return zarr.open_array(path / name, mode="r")[...]


@pytest.mark.parametrize("zarrs", [False, True], ids=["zarr-python", "zarrs"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: "x".join(map(str, lay[0])))
@pytest.mark.parametrize("dtype", DTYPES)
def test_zarr_reads_what_annio_writes(tmp_path, layout, dtype, zarrs):
    shape, chunks, shards = layout
    data = _data(shape, dtype)
    _direct(_group(tmp_path), data, chunks, shards)
    np.testing.assert_array_equal(_plain_zarr_read(tmp_path, "x", zarrs=zarrs), data)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: "x".join(map(str, lay[0])))
@pytest.mark.parametrize("dtype", ["f4", "i8", "bool", "u1"])
def test_annio_reads_what_zarr_writes(tmp_path, layout, dtype):
    shape, chunks, shards = layout
    data = _data(shape, dtype, seed=3)
    arr = _group(tmp_path).create_array("x", data=data, chunks=chunks, shards=shards)
    assert zarr_shards.can_read_direct(arr)
    np.testing.assert_array_equal(zarr_shards.read_all(arr), data)


def test_annio_reads_what_zarrs_writes(tmp_path):
    pytest.importorskip("zarrs")
    data = _data((3000, 5), "f4", seed=4)
    with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
        arr = _group(tmp_path).create_array("x", data=data, chunks=(100, 5), shards=(400, 5))
    np.testing.assert_array_equal(zarr_shards.read_all(arr), data)


def test_1d_shards_are_byte_identical_to_zarr_python(tmp_path):
    """Same codec, same level, same chunk order (C order = Morton order in 1-D), same
    handling of empty chunks and shards: the very same files."""
    data = _data((100_001,), "f4")
    data[:30_000] = 0  # a whole empty shard: no file
    kwargs = dict(chunks=(4096,), shards=(4096 * 4,))
    # zarr-python's own defaults for the reference, whatever another test left in zarr.config
    reference_config = {"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline", "array.write_empty_chunks": False}
    with zarr.config.set(reference_config):
        _group(tmp_path / "ref").create_array("x", data=data, **kwargs)
    _direct(_group(tmp_path / "ours"), data, kwargs["chunks"], kwargs["shards"])
    ref = sorted(p.relative_to(tmp_path / "ref") for p in (tmp_path / "ref" / "x").rglob("*") if p.is_file())
    ours = sorted(p.relative_to(tmp_path / "ours") for p in (tmp_path / "ours" / "x").rglob("*") if p.is_file())
    assert ref == ours
    assert not (tmp_path / "ours" / "x" / "c" / "0").exists()
    for rel in ref:
        assert (tmp_path / "ref" / rel).read_bytes() == (tmp_path / "ours" / rel).read_bytes(), rel


@pytest.mark.parametrize("zstd_level", [0, 5, None])
def test_zstd_levels_and_uncompressed(tmp_path, zstd_level):
    data = _data((5000,), "i4")
    compressors = None if zstd_level is None else zarr.codecs.ZstdCodec(level=zstd_level)
    arr = _direct(_group(tmp_path), data, (500,), (2000,), compressors=compressors)
    np.testing.assert_array_equal(_plain_zarr_read(tmp_path, "x", zarrs=False), data)
    np.testing.assert_array_equal(zarr_shards.read_all(arr), data)


@pytest.mark.parametrize("fill_value", [7, np.nan, -0.0])
def test_fill_values(tmp_path, fill_value):
    data = np.full((3000,), fill_value, dtype="f8")
    data[1500:1600] = 1.0
    if fill_value == 0:
        data[:10] = 0.0  # +0.0 differs from a -0.0 fill value bitwise: must be kept
    _direct(_group(tmp_path), data, (100,), (500,), fill_value=fill_value)
    got = _plain_zarr_read(tmp_path, "x", zarrs=False)
    np.testing.assert_array_equal(got, data)
    assert np.array_equal(np.signbit(got), np.signbit(data))
    # missing shards and empty index entries read back as the fill value
    arr = zarr.open_array(tmp_path / "x", mode="r")
    assert len(list((tmp_path / "x" / "c").iterdir())) == (2 if fill_value == 0 else 1)
    out = zarr_shards.read_all(arr)
    np.testing.assert_array_equal(out, data)
    assert np.array_equal(np.signbit(out), np.signbit(data))


def test_write_empty_chunks_array_config(tmp_path):
    data = np.zeros(4000, dtype="f4")
    data[3500] = 1
    _direct(_group(tmp_path), data, (100,), (1000,), config={"write_empty_chunks": True})
    assert sorted(p.name for p in (tmp_path / "x" / "c").iterdir()) == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(_plain_zarr_read(tmp_path, "x", zarrs=False), data)


def test_dot_chunk_key_separator(tmp_path):
    data = _data((200, 30), "f4")
    arr = _direct(_group(tmp_path), data, (16, 8), (32, 16), chunk_key_encoding={"name": "default", "separator": "."})
    assert (tmp_path / "x" / "c.1.0").is_file() and not (tmp_path / "x" / "c").exists()
    np.testing.assert_array_equal(_plain_zarr_read(tmp_path, "x", zarrs=False), data)
    np.testing.assert_array_equal(zarr_shards.read_all(arr), data)


def test_ineligible_arrays_fall_back_to_zarr(tmp_path):
    group = _group(tmp_path)
    unsharded = group.create_array("a", shape=(100,), dtype="f4", chunks=(10,))
    blosc = group.create_array("b", shape=(100,), dtype="f4", chunks=(10,), shards=(50,), compressors=zarr.codecs.BloscCodec())
    plain = group.create_array("c", shape=(100,), dtype="f4", chunks=(10,), shards=(50,))
    start = zarr.create(store=tmp_path / "d", shape=(100,), dtype="f4", zarr_format=3, chunk_shape=(50,),
                        codecs=[zarr.codecs.ShardingCodec(chunk_shape=(10,), index_location="start")])
    big_endian = group.create_array("e", shape=(100,), dtype=">f4", chunks=(10,), shards=(50,))
    for arr in (unsharded, blosc, start, big_endian):
        assert not zarr_shards.can_write_direct(arr) and not zarr_shards.can_read_direct(arr), arr
    assert zarr_shards.can_write_direct(plain)
    read_only = zarr.open_array(tmp_path / "c", mode="r")
    assert not zarr_shards.can_write_direct(read_only) and zarr_shards.can_read_direct(read_only)
    v2 = zarr.open_group(tmp_path / "v2", mode="w", zarr_format=2).create_array("x", shape=(10,), dtype="f4", chunks=(5,))
    assert not zarr_shards.can_write_direct(v2)
    mem = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3).create_array("x", shape=(10,), dtype="f4", chunks=(5,), shards=(10,))
    assert not zarr_shards.can_read_direct(mem)


def test_corrupt_index_crc_is_format_error(tmp_path):
    data = _data((4000,), "f4")
    _direct(_group(tmp_path), data, (100,), (1000,))
    shard = tmp_path / "x" / "c" / "2"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the index
    shard.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"^/x: shard c/2: index checksum"):
        _open(tmp_path).read()


def test_corrupt_chunk_is_format_error(tmp_path):
    data = _data((4000,), "f4")
    _direct(_group(tmp_path), data, (100,), (1000,))
    shard = tmp_path / "x" / "c" / "3"
    raw = bytearray(shard.read_bytes())
    raw[8:40] = b"\x00" * 32  # inside the first inner chunk's zstd frame
    shard.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="/x"):
        _open(tmp_path).read()


def test_truncated_shard_is_format_error(tmp_path):
    _direct(_group(tmp_path), _data((4000,), "f4"), (100,), (1000,))
    shard = tmp_path / "x" / "c" / "1"
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(FormatError, match="/x"):
        _open(tmp_path).read()


def test_storage_adapter_takes_the_fast_paths(tmp_path, monkeypatch):
    calls = {"write": 0, "read": 0}
    write, read = zarr_shards.write_shards, zarr_shards.read_shards

    def spy_write(*args, **kwargs):
        calls["write"] += 1
        return write(*args, **kwargs)

    def spy_read(*args, **kwargs):
        calls["read"] += 1
        return read(*args, **kwargs)

    monkeypatch.setattr(zarr_shards, "write_shards", spy_write)
    monkeypatch.setattr(zarr_shards, "read_shards", spy_read)
    data = _data((3000, 40), "f4")
    with annio.settings.override(chunk_target_bytes=2**12, shard_target_bytes=2**16):
        write_elem(_group(tmp_path), "x", data)
    assert calls["write"] == 1
    arr = zarr.open_array(tmp_path / "x", mode="r")
    assert arr.shards is not None and arr.shards != arr.chunks
    np.testing.assert_array_equal(read_elem(arr), data)
    assert calls["read"] == 1
    np.testing.assert_array_equal(arr[...], data)


def test_streamed_writes_go_shard_by_shard(tmp_path, monkeypatch):
    """``StorageArray.write`` of whole shards along axis 0 (``copy_rows``) is direct; a
    write that is not shard-aligned goes to zarr."""
    calls = []
    write = zarr_shards.write_shards
    monkeypatch.setattr(zarr_shards, "write_shards", lambda *a, **k: calls.append(a[2:]) or write(*a, **k))
    data = _data((1000, 6), "i4")
    group = storage.wrap(_group(tmp_path))
    target = group.create_empty_array("x", data.shape, data.dtype, dataset_kwargs={"chunks": (50, 6), "shards": (200, 6)})
    target.write(slice(0, 400), data[:400])
    target.write(slice(400, 1000), data[400:])
    target.write(slice(10, 20), data[10:20] + 1)  # partial shard: zarr's read-modify-write
    assert calls == [(0,), (400,)]
    expected = data.copy()
    expected[10:20] += 1
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "x", mode="r")[...], expected)


def test_anndata_roundtrip_sparse_and_dense(tmp_path):
    adata = annio.datasets.pbmc_like(2000, 500)
    with annio.settings.override(chunk_target_bytes=2**12, shard_target_bytes=2**16):
        adata.write_zarr(tmp_path / "a.zarr")
    back = annio.read_zarr(tmp_path / "a.zarr")
    assert (back.X != adata.X).nnz == 0
    np.testing.assert_array_equal(back.obsm["X_pca"], adata.obsm["X_pca"])
    assert len(list((tmp_path / "a.zarr" / "X" / "data" / "c").iterdir())) > 1
