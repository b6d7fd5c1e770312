"""The streamed sparse writer: whole zarr v3 shards written in the background while the next
block is read, the arrays' lengths exact at the end, and a failure while streaming reported (with no write left running)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import annio
from annio.io import read_elem, write_elem

da = pytest.importorskip("dask.array")


def _matrix(n_rows: int = 3000, n_cols: int = 200, seed: int = 0) -> sp.csr_matrix:
    return sp.random(n_rows, n_cols, density=0.1, format="csr", random_state=seed, dtype=np.float32)


def test_many_shards_round_trip_with_exact_lengths(tmp_path: Path) -> None:
    m = _matrix()
    x = da.from_array(m, chunks=(250, 200), asarray=False)
    group = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    with annio.settings.override(chunk_target_bytes=2**12, write_block_bytes=2**16):
        write_elem(group, "x", x)
    stored = zarr.open_group(tmp_path / "s.zarr", mode="r")["x"]
    assert stored["data"].shape == (m.nnz,) and stored["indices"].shape == (m.nnz,)
    assert stored["data"].shards is not None and m.nnz > 4 * stored["data"].shards[0]  # several shards, a partial last one
    assert m.nnz % stored["data"].shards[0]
    out = read_elem(stored)
    assert (out != m).nnz == 0


class _Boom(RuntimeError):
    pass


def test_failure_while_streaming_is_raised_and_leaves_no_write_running(tmp_path: Path) -> None:
    m = _matrix()

    def block(b: sp.csr_matrix, block_info: dict | None = None) -> sp.csr_matrix:
        if block_info and block_info[None]["chunk-location"][0] == 8:
            raise _Boom("block 8 is damaged")
        return b

    x = da.from_array(m, chunks=(250, 200), asarray=False).map_blocks(block, dtype=m.dtype, meta=sp.csr_matrix((0, 0), dtype=m.dtype))
    group = zarr.open_group(tmp_path / "f.zarr", mode="w", zarr_format=3)
    with annio.settings.override(chunk_target_bytes=2**12, write_block_bytes=2**16), pytest.raises(_Boom, match="block 8"):
        write_elem(group, "x", x)
    # nothing is still being written once the error is out
    before = sorted((p, p.stat().st_size) for p in (tmp_path / "f.zarr").rglob("*") if p.is_file())
    time.sleep(0.3)
    after = sorted((p, p.stat().st_size) for p in (tmp_path / "f.zarr").rglob("*") if p.is_file())
    assert before == after
    assert any("/x/data/c/" in str(p) for p, _ in before)  # shards before block 8 were written
