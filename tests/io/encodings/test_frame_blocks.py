"""DataFrames read block-wise (numeric columns of one dtype decoded straight into one 2-D
block, see ``annio.io._encodings.frame_blocks``) equal the column-by-column read that a
read callback gets, for every column kind, every store kind and any column order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import annio
from annio.errors import FormatError
from annio.experimental import read_dispatched
from annio.io._encodings.categorical import categorical_dtype

N = 37


def _column(kind: str, rng: np.random.Generator, n: int) -> Any:
    cats = ["b", "a", "c"]
    return {
        "f32": lambda: rng.random(n, dtype=np.float32),
        "f64": lambda: rng.random(n),
        "i8": lambda: rng.integers(-100, 100, n).astype(np.int8),
        "i64": lambda: rng.integers(-(2**40), 2**40, n),
        "u16": lambda: rng.integers(0, 60000, n).astype(np.uint16),
        "bool": lambda: rng.random(n) < 0.5,
        "cat": lambda: pd.Categorical.from_codes(rng.integers(-1, 3, n), categories=cats),
        "cat-ordered": lambda: pd.Categorical.from_codes(rng.integers(0, 3, n), categories=cats, ordered=True),
        "cat-int": lambda: pd.Categorical.from_codes(rng.integers(0, 3, n), categories=[3, 1, 2]),
        "str": lambda: np.array([f"s{i}-{v}" for i, v in enumerate(rng.integers(0, 9, n))], dtype=object),
        "Int32": lambda: pd.array(np.where(rng.random(n) < 0.3, None, rng.integers(0, 9, n)), dtype="Int32"),
        "boolean": lambda: pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.5), dtype="boolean"),
    }[kind]()


KINDS = ["f32", "f64", "i8", "i64", "u16", "bool", "cat", "cat-ordered", "cat-int", "str", "Int32", "boolean"]


def _frame(kinds: list[str], n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"cell{i}" for i in range(n)])
    return pd.DataFrame({f"{kind}_{i}": _column(kind, rng, n) for i, kind in enumerate(kinds)}, index=index)


def _write(df: pd.DataFrame, tmp_path: Path, kind: str) -> Path:
    path = tmp_path / ("a.h5ad" if kind == "h5ad" else "a.zarr")
    adata = annio.AnnData(obs=df)
    if kind == "h5ad":
        adata.write_h5ad(path)
    else:
        with annio.settings.override(auto_shard_zarr_v3=kind == "zarr3-sharded"):
            adata.write_zarr(path, zarr_format=2 if kind == "zarr2" else 3)
    return path


def _read_blockwise(path: Path) -> pd.DataFrame:
    return (annio.read_h5ad(path) if path.suffix == ".h5ad" else annio.read_zarr(path)).obs


def _read_by_columns(path: Path) -> pd.DataFrame:
    """The reference: a read callback sees every element, which keeps the column-by-column path."""

    def callback(read_func: Any, key: str, elem: Any, iospec: Any) -> Any:
        return read_func(elem)

    if path.suffix == ".h5ad":
        with h5py.File(path, "r") as f:
            return read_dispatched(f["obs"], callback)
    return read_dispatched(zarr.open_group(path, mode="r")["obs"], callback)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_index_equal(got.columns, want.columns, exact=True)
    pd.testing.assert_index_equal(got.index, want.index, exact=True)
    assert list(got.dtypes) == list(want.dtypes)


@pytest.mark.parametrize("kind", ["h5ad", "zarr2", "zarr3", "zarr3-sharded"])
def test_every_column_kind_reads_as_column_by_column(tmp_path: Path, kind: str) -> None:
    df = _frame(KINDS * 2)
    path = _write(df, tmp_path, kind)
    got = _read_blockwise(path)
    _assert_same(got, _read_by_columns(path))
    pd.testing.assert_frame_equal(got, df, check_exact=True)


@pytest.mark.parametrize("kind", ["h5ad", "zarr3-sharded"])
def test_numeric_columns_of_one_dtype_share_one_block(tmp_path: Path, kind: str) -> None:
    df = _frame(["f32", "cat", "f32", "i8", "f32", "str", "i8"])
    got = _read_blockwise(_write(df, tmp_path, kind))
    numeric = [b for b in got._mgr.blocks if isinstance(b.dtype, np.dtype) and b.dtype.kind in "biuf"]
    assert sorted((str(b.dtype), b.shape[0]) for b in numeric) == [("float32", 3), ("int8", 2)]
    got.iloc[0, 0] = -1.0  # blocks are owned, writable arrays
    assert got.iloc[0, 0] == -1.0


@hsettings(max_examples=25, deadline=None)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=14), n=st.integers(0, 60), seed=st.integers(0, 99), kind=st.sampled_from(["h5ad", "zarr3", "zarr3-sharded"]))
def test_round_trip_any_columns(tmp_path_factory: pytest.TempPathFactory, kinds: list[str], n: int, seed: int, kind: str) -> None:
    df = _frame(kinds, n, seed)
    path = _write(df, tmp_path_factory.mktemp("frame"), kind)
    got = _read_blockwise(path)
    _assert_same(got, _read_by_columns(path))
    pd.testing.assert_frame_equal(got, df, check_exact=True)


def test_many_columns_decoded_on_worker_threads(tmp_path: Path) -> None:
    df = _frame(["f32", "i8", "f64"] * 150, n=500)  # several decode batches per dtype
    path = _write(df, tmp_path, "zarr3-sharded")
    for threads in (1, 2, 4):
        with annio.settings.override(io_threads=threads):
            pd.testing.assert_frame_equal(_read_blockwise(path), df, check_exact=True)


def _corrupt_frame_body(path: Path, column: str) -> None:
    """Flip bytes inside the zstd frame of ``column``'s one chunk, keeping its header (and so
    its declared size), and the shard index valid."""
    chunk = path / "obs" / column / "c" / "0"
    data = bytearray(chunk.read_bytes())
    sharded = (path / "obs" / column / "zarr.json").read_text().count("sharding_indexed") > 0
    end = len(data) - 20 if sharded else len(data)
    for i in range(12, end - 1):
        data[i] ^= 0x5A
    chunk.write_bytes(bytes(data))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["zarr3", "zarr3-sharded"])
def test_a_corrupt_column_is_a_format_error_naming_it(tmp_path: Path, kind: str, threads: int) -> None:
    df = pd.DataFrame({f"c{i}": np.linspace(0, 1, 2000) ** (i % 3 + 1) for i in range(200)}, index=[f"r{i}" for i in range(2000)])
    path = _write(df, tmp_path, kind)
    _corrupt_frame_body(path, "c117")
    with annio.settings.override(io_threads=threads), pytest.raises(FormatError, match="obs/c117"):
        annio.read_zarr(path)


@pytest.mark.parametrize("column", ["cat_1", "f32_2"])
def test_row_count_mismatch_names_the_column(tmp_path: Path, column: str) -> None:
    path = _write(_frame(["f32", "cat", "f32"]), tmp_path, "zarr3")
    group = zarr.open_group(path, mode="r+")
    del group[f"obs/{column}"]
    short = pd.Categorical(["a"] * (N - 1)) if column.startswith("cat") else np.zeros(N - 1, np.float32)
    annio.io.write_elem(group, f"obs/{column}", short)
    zarr.consolidate_metadata(path)
    with pytest.raises(FormatError, match=f"obs/{column}"):
        annio.read_zarr(path)


def test_categorical_dtypes_are_shared_only_when_identical() -> None:
    strings = np.array(["a", "b"], dtype=object)
    assert categorical_dtype(strings, False) is categorical_dtype(strings.copy(), False)
    assert categorical_dtype(strings, False) is not categorical_dtype(strings, True)
    assert categorical_dtype(strings, True).ordered
    ints, floats = np.array([1, 2]), np.array([1.0, 2.0])
    assert categorical_dtype(ints, False).categories.dtype.kind == "i"
    assert categorical_dtype(floats, False).categories.dtype.kind == "f"
    mixed = np.array(["1", 1], dtype=object)  # not cached: values of two types
    assert list(categorical_dtype(mixed, False).categories) == ["1", 1]
    with pytest.raises(ValueError):
        categorical_dtype(np.array(["a", "a"], dtype=object), False)
