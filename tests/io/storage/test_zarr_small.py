"""Small zarr arrays annio writes itself (zarr_small), consolidated metadata it assembles
(zarr_meta) and local consolidated stores it reads without zarr objects (zarr_tree): the
bytes are zarr-python's, and zarr-python, anndata and annio read them back."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import annio
from annio.errors import FormatError
from annio.io import read_elem, write_elem
from annio.io._storage import adapter, zarr_tree
from annio.io._storage.zarr_meta import consolidate

_DEFAULT_PIPELINE = {"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline", "array.write_empty_chunks": False}

VALUES = {
    "i0": np.int64(0), "i5": np.int64(5), "f": 0.5, "fz": 0.0, "nan": float("nan"), "negz": -0.0,
    "s": "héllo", "se": "", "b": True, "bf": False,
    "a": np.arange(4.0), "zeros": np.zeros(3), "i32": np.arange(7, dtype=np.int32), "u8": np.arange(3, dtype=np.uint8),
    "f2": np.arange(3, dtype=np.float16), "bools": np.array([True, False]), "strs": np.array(["a", "bb", "", "é"], dtype=object),
    "m": np.arange(6.0).reshape(2, 3), "cat": pd.Categorical(["x", "y", "x"]),
}  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for base, _, names in os.walk(root):
        for name in names:
            path = Path(base, name)
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _reference_files(value, zarr_format: int, shard: bool) -> dict[str, bytes]:
    """What zarr-python writes (annio's writer into a MemoryStore, which zarr-python serves)."""
    store = zarr.storage.MemoryStore()
    with zarr.config.set(_DEFAULT_PIPELINE), annio.settings.override(auto_shard_zarr_v3=shard):
        write_elem(zarr.open_group(store, mode="w", zarr_format=zarr_format), "uns", value)
    return {k: v.to_bytes() for k, v in store._store_dict.items() if k.startswith("uns")}


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("shard", [True, False])
def test_small_arrays_are_byte_identical_to_zarr_python(tmp_path: Path, zarr_format: int, shard: bool) -> None:
    value = {**VALUES, "nested": dict(VALUES)}
    with zarr.config.set(_DEFAULT_PIPELINE), annio.settings.override(auto_shard_zarr_v3=shard):
        group = zarr.open_group(zarr.storage.LocalStore(tmp_path / "d"), mode="w", zarr_format=zarr_format)
        assert isinstance(adapter.wrap(group).create_scalar("probe", 1), adapter._WrittenArray)  # the direct path ran
        del group["probe"]
        write_elem(group, "uns", value)
    ours = _files(tmp_path / "d")
    ours = {k: v for k, v in ours.items() if k.startswith("uns")}
    assert ours == _reference_files(value, zarr_format, shard)
    back = read_elem(zarr.open_group(tmp_path / "d", mode="r")["uns"])
    assert back["s"] == "héllo" and list(back["strs"]) == ["a", "bb", "", "é"] and back["nested"]["m"].tolist() == VALUES["m"].tolist()
    assert np.isnan(back["nan"]) and np.signbit(back["negz"]) and back["b"] is True or back["b"] == True  # noqa: E712
    zarr_back = zarr.open_group(tmp_path / "d", mode="r")
    np.testing.assert_array_equal(zarr_back["uns/m"][...], VALUES["m"])
    assert zarr_back["uns/s"][()] == "héllo"


_dtypes = st.sampled_from(["f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "bool", "f2", "str"])


@given(dtype=_dtypes, shape=st.lists(st.integers(0, 5), min_size=0, max_size=3), seed=st.integers(0, 10), zarr_format=st.sampled_from([2, 3]), shard=st.booleans())
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_small_arrays_match_zarr_python(tmp_path: Path, dtype: str, shape: list[int], seed: int, zarr_format: int, shard: bool) -> None:
    rng = np.random.default_rng(seed)
    shape_t = tuple(shape)
    if dtype == "str":
        data = np.array([f"v{rng.integers(0, 3)}" if rng.random() > 0.3 else "" for _ in range(int(np.prod(shape_t)))], dtype=object).reshape(shape_t)
    else:
        data = (rng.integers(0, 3, size=shape_t) * (rng.random(shape_t) > 0.5)).astype(dtype)
    value = {"x": data}
    target = tmp_path / f"d{seed}{dtype}{shape}{zarr_format}{shard}"
    shutil.rmtree(target, ignore_errors=True)
    with zarr.config.set(_DEFAULT_PIPELINE), annio.settings.override(auto_shard_zarr_v3=shard):
        write_elem(zarr.open_group(zarr.storage.LocalStore(target), mode="w", zarr_format=zarr_format), "uns", value)
    ours = {k: v for k, v in _files(target).items() if k.startswith("uns")}
    assert ours == _reference_files(value, zarr_format, shard)
    back = zarr.open_group(target, mode="r")["uns/x"][...]
    np.testing.assert_array_equal(np.asarray(back).astype(data.dtype) if dtype != "str" else np.asarray(back, dtype=object), data)


def _rich() -> annio.AnnData:
    return annio.AnnData(
        X=np.arange(12.0, dtype=np.float32).reshape(4, 3),
        obs=pd.DataFrame({"c": pd.Categorical(["a", "b", "a", "b"]), "Zé": [1, 2, 3, 4], "s": ["p", "q", "r", "s"]}, index=list("wxyz")),
        uns={"B": {"x": 1, "y": "s", "deep": {"q": np.arange(3)}}, "a": 0.5, "nan": float("nan"), "É": "é", "Aa": [1, 2], "zz": None,
             "rec": np.array([(1, 2.0), (3, 4.0)], dtype=[("n", "<i8"), ("v", "<f8")]), "c64": np.arange(3, dtype=np.complex64)},
        obsm={"p": np.ones((4, 2))},
    )


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_consolidated_metadata_is_byte_identical_to_zarr_python(tmp_path: Path, zarr_format: int) -> None:
    annio.write_zarr(tmp_path / "d.zarr", _rich(), zarr_format=zarr_format)
    shutil.copytree(tmp_path / "d.zarr", tmp_path / "z.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(zarr.storage.LocalStore(tmp_path / "z.zarr"))
    assert _files(tmp_path / "d.zarr") == _files(tmp_path / "z.zarr")
    consolidate(zarr.storage.LocalStore(tmp_path / "z.zarr"))  # idempotent: consolidating again changes nothing
    assert _files(tmp_path / "d.zarr") == _files(tmp_path / "z.zarr")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_anndata_and_zarr_read_what_annio_writes(tmp_path: Path, zarr_format: int) -> None:
    anndata = pytest.importorskip("anndata")
    annio.write_zarr(tmp_path / "d.zarr", _rich(), zarr_format=zarr_format)
    theirs = anndata.read_zarr(tmp_path / "d.zarr")
    assert theirs.uns["B"]["deep"]["q"].tolist() == [0, 1, 2] and theirs.uns["É"] == "é" and np.isnan(theirs.uns["nan"])
    assert list(theirs.obs["c"]) == ["a", "b", "a", "b"] and theirs.obs["Zé"].tolist() == [1, 2, 3, 4]
    ours = annio.read_zarr(tmp_path / "d.zarr")
    assert list(ours.uns) == list(theirs.uns) and ours.uns["zz"] is None


def _via_zarr_python(path: Path, key: str = "uns"):
    """Element ``key`` of the store read through zarr-python's objects (no tree)."""
    return read_elem(adapter.StorageGroup(zarr.open_group(path, mode="r"))[key])


def _assert_same(ours, theirs, where: str = "") -> None:
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where  # same order, too
        for key in theirs:
            _assert_same(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, pd.DataFrame):
        pd.testing.assert_frame_equal(ours, theirs)
    elif isinstance(theirs, float) and np.isnan(theirs):
        assert np.isnan(ours), where
    elif hasattr(theirs, "toarray"):
        assert (ours != theirs).nnz == 0, where
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


@pytest.mark.parametrize("writer", ["annio", "anndata"])
def test_tree_read_equals_zarr_python_read(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "d.zarr"
    if writer == "annio":
        annio.write_zarr(path, _rich())
    else:
        anndata = pytest.importorskip("anndata")
        adata = anndata.AnnData(X=np.arange(12.0, dtype=np.float32).reshape(4, 3), uns={"k": {"a": 1, "b": "x", "c": np.arange(3)}, "f": 2.5})
        with anndata.settings.override(zarr_write_format=3):
            adata.write_zarr(path)
    group = zarr_tree.open_tree(zarr.storage.LocalStore(path, read_only=True))
    root = adapter.wrap(group)
    assert isinstance(root, zarr_tree.TreeGroup)
    assert root.keys() == adapter.StorageGroup(zarr.open_group(path, mode="r")).keys()
    for key in root.keys():
        _assert_same(read_elem(root[key]), _via_zarr_python(path, key), key)
    _assert_same(annio.read_zarr(path).uns, _via_zarr_python(path))


def test_tree_keeps_a_missing_chunk_as_fill_and_names_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    annio.write_zarr(path, annio.AnnData(uns={"a": np.arange(1.0, 5.0), "s": "text", "z": np.zeros(3)}))
    assert not (path / "uns" / "z" / "c").exists()  # all fill: no chunk, as zarr-python does
    shard = path / "uns" / "a" / "c" / "0"
    (path / "uns" / "s" / "c").unlink()
    assert annio.read_zarr(path).uns["s"] == ""  # fill value, as zarr-python reads it
    assert _via_zarr_python(path)["s"] == ""
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="/uns/a"):
        annio.read_zarr(path)


def test_unrecognised_consolidated_metadata_is_left_to_zarr_python(tmp_path: Path) -> None:
    import json

    path = tmp_path / "d.zarr"
    annio.write_zarr(path, annio.AnnData(uns={"a": 1}))
    doc = json.loads((path / "zarr.json").read_text())
    doc["consolidated_metadata"]["metadata"]["uns/a"]["chunk_grid"]["configuration"]["chunk_shape"] = [0]
    (path / "zarr.json").write_text(json.dumps(doc))
    assert zarr_tree.open_tree(zarr.storage.LocalStore(path, read_only=True)) is None
    assert annio.read_zarr(path).uns["a"] == 1  # zarr-python warns, reads each element's own metadata


def test_rewriting_an_element_replaces_it(tmp_path: Path) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(tmp_path / "d"), mode="w", zarr_format=3)
    write_elem(group, "x", np.arange(3))
    write_elem(group, "x", "now a string")
    assert read_elem(zarr.open_group(tmp_path / "d", mode="r")["x"]) == "now a string"
    assert sorted(os.listdir(tmp_path / "d" / "x")) == ["c", "zarr.json"]


@pytest.mark.parametrize("level", [1, 3])
def test_zstd_level_setting_is_honoured_and_standard(tmp_path: Path, level: int) -> None:
    rng = np.random.default_rng(0)
    value = {"big": rng.poisson(2, size=(3000, 40)).astype(np.float32), "small": np.arange(5.0), "s": np.array(["a", "b"], dtype=object)}
    with zarr.config.set(_DEFAULT_PIPELINE), annio.settings.override(zarr_zstd_level=level, chunk_target_bytes=2**14, shard_target_bytes=2**16):
        write_elem(zarr.open_group(zarr.storage.LocalStore(tmp_path / "d"), mode="w", zarr_format=3), "uns", value)
        reference = _reference_files(value, 3, True)
    ours = {k: v for k, v in _files(tmp_path / "d").items() if k.startswith("uns")}
    assert len(ours) > 10 and ours == reference  # sharded writer, small-array writer and zarr-python agree
    arr = zarr.open_array(tmp_path / "d" / "uns" / "big", mode="r")
    assert [c.level for c in arr.compressors] == [level]
    np.testing.assert_array_equal(arr[...], value["big"])


def test_zstd_level_setting_validates() -> None:
    with pytest.raises(ValueError, match="between"):
        annio.settings.zarr_zstd_level = 99
    with annio.settings.override(zarr_zstd_level="2"):
        assert annio.settings.zarr_zstd_level == 2
    assert annio.settings.zarr_zstd_level is None


def test_tree_arrays_serve_selections_through_zarr_python(tmp_path: Path) -> None:
    path = tmp_path / "d.zarr"
    values = np.arange(50.0)
    annio.write_zarr(path, annio.AnnData(uns={"v": values, "s": np.array(["a", "b", "c"], dtype=object), "k": 7}))
    uns = adapter.wrap(zarr_tree.open_tree(zarr.storage.LocalStore(path, read_only=True)))["uns"]
    arr = uns["v"]
    assert isinstance(arr, zarr_tree.TreeArray) and arr.shape == (50,) and arr.dtype == np.float64 and arr.chunks == arr.shards == (50,)
    np.testing.assert_array_equal(arr.read(slice(3, 9)), values[3:9])
    np.testing.assert_array_equal(arr.read_ranges(np.array([1, 10]), np.array([3, 12])), values[[1, 2, 10, 11]])
    np.testing.assert_array_equal(arr.read(np.array([4, 2])), values[[4, 2]])
    assert list(uns["s"].read(slice(1, None))) == ["b", "c"] and uns["k"].read_scalar() == 7
    assert uns.attrs["encoding-type"] == "dict" and "v" in uns and "w" not in uns
    with pytest.raises(annio.errors.MissingElementError):
        uns["w"]
