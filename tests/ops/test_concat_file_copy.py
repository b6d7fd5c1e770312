"""``concat_on_disk`` into a local ``.h5ad``: stored CSR/CSC parts go file to file
(:mod:`annio._ops.concat_write`, :mod:`annio.io._storage.h5_raw`) — the result equals the
eager concat and the file the streamed writer makes, compressed or odd inputs fall back to
reads, bad indices are still refused, and progress is exact."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
import annio._ops.concat_write as concat_write
from annio.experimental import concat_on_disk
from annio.io._storage.adapter import wrap
from annio.io._storage.h5_raw import preallocated
from annio.testing import assert_equal

GENES = [f"g{i}" for i in range(40)]


def _part(seed: int, n_obs: int, *, dtype: str = "float32", fmt: str = "csr", prefix: str | None = None) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_obs, len(GENES))) < 0.25) * rng.integers(1, 50, (n_obs, len(GENES)))
    X = sp.csr_matrix(dense.astype(dtype)).asformat(fmt)
    a = annio.AnnData(X=X, obs=pd.DataFrame({"n": np.arange(n_obs)}, index=[f"{prefix or f'c{seed}'}_{i}" for i in range(n_obs)]), var=pd.DataFrame(index=GENES))
    a.layers["counts"] = sp.csr_matrix(dense.astype(np.int64)).asformat(fmt)
    return a


def _write(a: annio.AnnData, path, **kwargs) -> str:
    a.write_h5ad(path, **kwargs)
    return str(path)


@pytest.fixture
def copies(monkeypatch):
    """Counts the bytes that went file to file."""
    moved = []
    original = concat_write.preallocated

    def spy(*args, **kwargs):
        target = original(*args, **kwargs)
        if target is not None:
            copy_from = target.copy_from

            def counted(node, start, stop, at):
                done = copy_from(node, start, stop, at)
                moved.append((node.path, stop - start, done))
                return done

            target.copy_from = counted
        return target

    monkeypatch.setattr(concat_write, "preallocated", spy)
    return moved


def _datasets(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, (str(o.dtype), o.shape, o.chunks, o.maxshape, o.compression, o[()].tobytes())) if isinstance(o, h5py.Dataset) and n.startswith(("X", "layers")) else None)
    return out


def test_plain_parts_are_copied_and_equal_the_streamed_file(tmp_path, copies, monkeypatch):
    paths = [_write(_part(i, n), tmp_path / f"p{i}.h5ad") for i, n in enumerate([120, 0, 77, 301])]
    eager = annio.concat([annio.read_h5ad(p) for p in paths])
    concat_on_disk(paths, tmp_path / "fast.h5ad", max_loaded_elems=500)  # many blocks per part
    assert copies and all(done for _, _, done in copies)
    assert sum(n for path, n, _ in copies if path == "/X/data") == eager.X.nnz
    assert_equal(annio.read_h5ad(tmp_path / "fast.h5ad"), eager)
    monkeypatch.setattr(concat_write, "write_sparse_direct", lambda *a, **k: False)
    concat_on_disk(paths, tmp_path / "streamed.h5ad", max_loaded_elems=500)
    assert _datasets(tmp_path / "fast.h5ad") == _datasets(tmp_path / "streamed.h5ad")
    # anndata can keep appending to what was written (data stays resizable)
    with h5py.File(tmp_path / "fast.h5ad", "r") as f:
        assert f["X/data"].maxshape == (None,) and f["X/indptr"].dtype == np.int32


def test_compressed_and_mixed_dtype_parts_are_read_instead(tmp_path, copies):
    paths = [
        _write(_part(0, 50), tmp_path / "plain.h5ad"),
        _write(_part(1, 60), tmp_path / "gzip.h5ad", compression="gzip"),
        _write(_part(2, 40, dtype="float64"), tmp_path / "f64.h5ad"),
    ]
    eager = annio.concat([annio.read_h5ad(p) for p in paths])
    concat_on_disk(paths, tmp_path / "out.h5ad")
    done = {(path, n): ok for path, n, ok in copies if path == "/X/data"}
    assert done == {("/X/data", eager.X[:50].nnz): False, ("/X/data", eager.X[50:110].nnz): False, ("/X/data", eager.X[110:].nnz): True}
    result = annio.read_h5ad(tmp_path / "out.h5ad")
    assert result.X.dtype == np.float64
    assert_equal(result, eager)


def test_csc_on_axis_1_is_copied(tmp_path, copies):
    paths = [_write(_part(i, 30, fmt="csc", prefix="cell"), tmp_path / f"c{i}.h5ad") for i in range(2)]
    eager = annio.concat([annio.read_h5ad(p) for p in paths], axis=1, index_unique="-", join="inner")
    concat_on_disk(paths, tmp_path / "out.h5ad", axis=1, index_unique="-", join="inner")
    assert copies and all(done for _, _, done in copies)
    assert_equal(annio.read_h5ad(tmp_path / "out.h5ad"), eager)


def test_out_of_range_indices_are_refused_and_nothing_is_left(tmp_path):
    good = _write(_part(0, 30), tmp_path / "good.h5ad")
    bad = _write(_part(1, 30), tmp_path / "bad.h5ad")
    with h5py.File(bad, "r+") as f:
        f["X/indices"][3] = len(GENES) + 5
    out = tmp_path / "out.h5ad"
    concat_on_disk([good, good], out)
    before = out.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(annio.errors.FormatError, match="indices"):
        concat_on_disk([good, bad], out)
    assert sorted(os.listdir(tmp_path)) == listing and out.read_bytes() == before


def test_progress_counts_every_row_once(tmp_path):
    paths = [_write(_part(i, n), tmp_path / f"p{i}.h5ad") for i, n in enumerate([90, 45])]
    for ext, settings in (("h5ad", {}), ("zarr", {"zarr_write_format": 3})):
        calls = []
        with annio.settings.override(**settings):
            concat_on_disk(paths, tmp_path / f"out.{ext}", max_loaded_elems=300, progress=lambda d, t: calls.append((d, t)))  # noqa: B023
        totals = {t for _, t in calls}
        done = [d for d, _ in calls]
        # X and counts, 135 rows each: the total is their rows, reached exactly once, at the end
        assert totals == {2 * 135}, ext
        assert done == sorted(done) and done[-1] == 2 * 135 and done.count(done[-1]) == 1 and len(done) >= 4, ext


def test_preallocated_needs_a_plain_local_file(tmp_path):
    with h5py.File(tmp_path / "mem.h5", "w", driver="core", backing_store=False) as f:
        assert preallocated(wrap(f), "x", 10, np.float32, 4) is None
    with h5py.File(tmp_path / "disk.h5", "w") as f:
        target = preallocated(wrap(f), "x", 10, np.float32, 4)
        with target:
            target.write(0, np.arange(10))
        assert preallocated(wrap(f), "empty", 0, np.float32, 4) is None
    with h5py.File(tmp_path / "disk.h5", "r") as f:
        np.testing.assert_array_equal(f["x"][()], np.arange(10, dtype=np.float32))


def test_default_blocks_are_bounded_not_the_whole_array(tmp_path, monkeypatch):
    """Without ``max_loaded_elems`` a dense obsm was copied in blocks of the 256 MiB default
    budget — whole arrays of any realistic size, so the peak grew with the data."""
    import annio._ops.concat_direct as direct
    import annio._ops.concat_on_disk as module

    monkeypatch.setattr(module, "DEFAULT_BLOCK_BYTES", 2**16)
    sizes = []
    original = direct.ConcatenatedDense.__getitem__

    def spy(self, rows):
        block = original(self, rows)
        sizes.append(block.nbytes)
        return block

    monkeypatch.setattr(direct.ConcatenatedDense, "__getitem__", spy)
    parts = []
    for i in range(2):
        a = _part(i, 900)
        a.obsm["X_pca"] = np.random.default_rng(i).random((900, 50), dtype=np.float32)  # 180 kB
        parts.append(_write(a, tmp_path / f"p{i}.h5ad"))
    default = annio.settings.write_block_bytes
    concat_on_disk(parts, tmp_path / "out.h5ad")
    assert len(sizes) > 4 and max(sizes) <= 2**16
    assert annio.settings.write_block_bytes == default
    assert_equal(annio.read_h5ad(tmp_path / "out.h5ad"), annio.concat([annio.read_h5ad(p) for p in parts]))
    sizes.clear()
    concat_on_disk(parts, tmp_path / "out.h5ad", max_loaded_elems=10**6)  # an explicit bound wins
    assert max(sizes) > 2**16


def test_negative_indices_are_refused_on_the_copy_path(tmp_path, copies):
    # the check reads the indices as unsigned: a negative index must still be caught
    good = _write(_part(0, 30), tmp_path / "good.h5ad")
    bad = _write(_part(1, 30), tmp_path / "bad.h5ad")
    with h5py.File(bad, "r+") as f:
        f["X/indices"][-1] = -1
    with pytest.raises(annio.errors.FormatError, match=r"bad|indices.*-1"):
        concat_on_disk([good, bad], tmp_path / "out.h5ad")
    assert not (tmp_path / "out.h5ad").exists()


def test_out_of_range_indices_are_refused_when_writing_zarr(tmp_path):
    # the zarr writer reads plain parts with h5_raw.RawSource: the range check still applies
    good = _write(_part(0, 30), tmp_path / "good.h5ad")
    bad = _write(_part(1, 30), tmp_path / "bad.h5ad")
    with h5py.File(bad, "r+") as f:
        f["X/indices"][5] = -3
    with annio.settings.override(zarr_write_format=3), pytest.raises(annio.errors.FormatError, match="indices"):
        concat_on_disk([good, bad], tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_raw_source_reads_plain_read_only_datasets(tmp_path):
    from annio.io._storage.h5_raw import RawSource, chunk_addresses, plain_dataset

    values = np.arange(1000, dtype=np.int32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("chunked", data=values, chunks=(64,))
        f.create_dataset("contiguous", data=values)
        f.create_dataset("gzip", data=values, chunks=(64,), compression="gzip")
        assert plain_dataset(f["chunked"]) and not plain_dataset(f["chunked"], read_only=True)  # open for writing
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert not plain_dataset(f["gzip"], read_only=True)
        assert (chunk_addresses(f["chunked"], 16) >= 0).all()
        for name in ("chunked", "contiguous"):
            source = RawSource.open(wrap(f[name]))
            assert source is not None
            np.testing.assert_array_equal(source.read(60, 700), values[60:700])
            with pytest.raises(annio.errors.FormatError, match=name):
                source.read(990, 1010)
            source.close()
        assert RawSource.open(wrap(f["gzip"])) is None
