"""``convert`` from loom and 10x ``.h5`` streams blocks of cells: peak memory (tracemalloc)
stays well below the matrix, and the output equals converting the in-memory object."""

from __future__ import annotations

import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import annio
from annio import convert
from annio.testing import assert_equal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io" / "formats"))
import tenx_files as tenx

N_CELLS, N_GENES = 3000, 2000
SMALL = {"write_block_bytes": 2**20, "chunk_target_bytes": 2**14}  # 1 MiB blocks, 16 KiB chunks


def _csr_bytes(m: sp.spmatrix) -> int:
    m = sp.csr_matrix(m)
    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("streamed")
    rng = np.random.default_rng(0)
    m = sp.random(N_CELLS, N_GENES, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    m.data = np.ceil(m.data * 20)
    annio.AnnData(m, layers={"spliced": m * 2}).write_loom(d / "a.loom")
    counts = tenx.counts(N_CELLS, N_GENES + 20, density=0.3)  # annotations (in memory) stay small next to X
    tenx.write_h5_v3(d / "f.h5", counts, tenx.features(N_GENES, n_antibody=20), tenx.barcodes(N_CELLS))
    small = d / "small.loom"  # for warming up imports, so they do not count in the peaks
    annio.AnnData(m[:50]).write_loom(small)
    return {"loom": (d / "a.loom", annio.io.read_loom, m), "10x_h5": (d / "f.h5", annio.io.read_10x_h5, counts), "small": small}


def _peak(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _read(path: Path):
    return annio.read_h5ad(path) if path.suffix == ".h5ad" else annio.read_zarr(path)


@pytest.mark.parametrize("kind", ["loom", "10x_h5"])
@pytest.mark.parametrize("target", ["out.h5ad", "out.zarr"])
def test_convert_streams_cell_blocks(sources, tmp_path, kind, target):
    path, reader, matrix = sources[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(sources["small"], tmp_path / f"warm{Path(target).suffix}")
        convert(path, tmp_path / f"warm2{Path(target).suffix}")
        streamed, in_memory = tmp_path / f"s-{target}", tmp_path / f"m-{target}"
        with annio.settings.override(**SMALL):
            peak = _peak(lambda: convert(path, streamed))
            expected = reader(path)
            convert(expected, in_memory)
    # the matrices written (loom: X, layers "matrix" and "spliced", ~4.8 MB each; 10x: X, ~14 MB)
    # in CSR; obs/var (in memory by design) and the block graph are small next to them
    total = _csr_bytes(matrix) * (3 if kind == "loom" else 1)
    print(f"{kind} -> {target}: peak {peak / 1e6:.2f} MB, matrices {total / 1e6:.2f} MB")
    assert peak < total / 3, (peak, total)
    out = _read(streamed)
    assert_equal(out, _read(in_memory))
    assert (out.X != expected.X).nnz == 0 and list(out.obs_names) == list(expected.obs_names)
    if kind == "10x_h5":
        assert out.n_vars == N_GENES  # gex_only: the antibody features were dropped block by block


def test_streamed_blocks_follow_the_budget(sources):
    from annio.io._formats.streamed import stream_10x_h5, stream_loom

    with annio.settings.override(**SMALL):
        loom = stream_loom(sources["loom"][0])
        tenx_h5 = stream_10x_h5(sources["10x_h5"][0])
    assert len(loom.X.chunks[0]) > 10 and len(tenx_h5.X.chunks[0]) > 10
    assert max(loom.X.chunks[0]) <= max(64, SMALL["write_block_bytes"] // (N_GENES * 4))  # whole HDF5 chunks of cells
    np.testing.assert_array_equal(tenx_h5.X.compute().toarray(), annio.io.read_10x_h5(sources["10x_h5"][0]).X.toarray())


def test_damaged_10x_matrix_is_a_format_error(tmp_path):
    import h5py

    from annio.errors import FormatError

    counts = tenx.counts(30, 10)
    tenx.write_h5_v3(tmp_path / "bad.h5", counts, tenx.features(10), tenx.barcodes(30))
    with h5py.File(tmp_path / "bad.h5", "r+") as f:
        f["matrix/indices"][0] = 10_000  # a gene index out of range
    with pytest.raises(FormatError, match="out of range"):
        convert(tmp_path / "bad.h5", tmp_path / "bad.h5ad")
    assert not (tmp_path / "bad.h5ad").exists()
