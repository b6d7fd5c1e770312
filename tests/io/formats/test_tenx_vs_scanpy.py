"""10x Genomics readers against scanpy's, on Cell Ranger v2 and v3 files generated here."""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import tenx_files as tenx

import annio.io as aio
from annio.errors import FormatError
from annio.testing import assert_equal

sc = pytest.importorskip("scanpy")
pytestmark = pytest.mark.interop


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def data():
    m = tenx.counts(300, 50)
    return m, tenx.features(45, 5, ("GRCh38", "mm10")), tenx.barcodes(300)


def _same(ours, theirs, *, csr_vs_csc=False):
    assert_equal(ours, theirs)
    assert list(ours.var.columns) == list(theirs.var.columns)
    assert ours.X.dtype == theirs.X.dtype == np.float32
    assert sp.isspmatrix_csr(ours.X)  # scanpy's read_10x_mtx gives CSC; annio reads straight into CSR
    if not csr_vs_csc:
        assert sp.isspmatrix_csr(theirs.X)


@pytest.mark.parametrize("extra_tags", [False, True])
@pytest.mark.parametrize("kw", [{}, {"gex_only": False}, {"genome": "mm10"}, {"genome": "GRCh38", "gex_only": False}])
def test_h5_v3(tmp_path, data, kw, extra_tags):
    m, feats, bcs = data
    tenx.write_h5_v3(tmp_path / "f.h5", m, feats, bcs, extra_tags=extra_tags)
    _same(_quiet(aio.read_10x_h5, tmp_path / "f.h5", **kw), _quiet(sc.read_10x_h5, tmp_path / "f.h5", **kw))


def test_h5_v2(tmp_path, data):
    _, _, bcs = data
    two = {"hg19": (tenx.counts(300, 40, seed=1), tenx.features(40)), "mm10": (tenx.counts(300, 30, seed=2), tenx.features(30))}
    tenx.write_h5_v2(tmp_path / "two.h5", two, bcs)
    tenx.write_h5_v2(tmp_path / "one.h5", {"hg19": two["hg19"]}, bcs)
    for genome in ("hg19", "mm10"):
        _same(_quiet(aio.read_10x_h5, tmp_path / "two.h5", genome=genome),
              _quiet(sc.read_10x_h5, tmp_path / "two.h5", genome=genome))
    _same(_quiet(aio.read_10x_h5, tmp_path / "one.h5"), _quiet(sc.read_10x_h5, tmp_path / "one.h5"))
    with pytest.raises(ValueError, match=r"more than one genome.*\['hg19', 'mm10'\]"):
        aio.read_10x_h5(tmp_path / "two.h5")
    with pytest.raises(ValueError, match="Could not find genome 'x'"):
        aio.read_10x_h5(tmp_path / "two.h5", genome="x")


def test_h5_unknown_genome_v3(tmp_path, data):
    tenx.write_h5_v3(tmp_path / "f.h5", *data)
    with pytest.raises(ValueError, match=r"Available genomes are: \['GRCh38', 'mm10'\]"):
        _quiet(aio.read_10x_h5, tmp_path / "f.h5", genome="hg19")


def test_h5_corrupt(tmp_path, data):
    m, feats, bcs = data
    tenx.write_h5_v3(tmp_path / "f.h5", m, feats, bcs)
    with h5py.File(tmp_path / "f.h5", "a") as f:
        del f["matrix/indptr"]
        f["matrix/indptr"] = m.indptr[:-5]
    with pytest.raises(FormatError, match="/matrix: inconsistent matrix"):
        aio.read_10x_h5(tmp_path / "f.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(FormatError, match="not a readable HDF5 file"):
        aio.read_10x_h5(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError, match="does not download"):
        aio.read_10x_h5(tmp_path / "missing.h5", backup_url="http://example.invalid/x.h5")


@pytest.mark.parametrize("kw", [{}, {"var_names": "gene_ids"}, {"gex_only": False}, {"make_unique": False},
                                {"var_names": "gene_ids", "gex_only": False}])
def test_mtx_v3(tmp_path, data, kw):
    m, feats, bcs = data
    tenx.write_mtx_v3(tmp_path / "v3", m, feats, bcs)
    _same(_quiet(aio.read_10x_mtx, tmp_path / "v3", **kw), _quiet(sc.read_10x_mtx, tmp_path / "v3", **kw), csr_vs_csc=True)


@pytest.mark.parametrize("kw", [{}, {"var_names": "gene_ids"}, {"make_unique": False}])
def test_mtx_v2(tmp_path, data, kw):
    m, feats, bcs = data
    tenx.write_mtx_v2(tmp_path / "v2", m[:45], {k: v[:45] for k, v in feats.items()}, bcs)
    _same(_quiet(aio.read_10x_mtx, tmp_path / "v2", **kw), _quiet(sc.read_10x_mtx, tmp_path / "v2", **kw), csr_vs_csc=True)


def test_mtx_prefix_and_cache(tmp_path, data, monkeypatch):
    m, feats, bcs = data
    tenx.write_mtx_v3(tmp_path / "p", m, feats, bcs, prefix="s1_")
    _same(_quiet(aio.read_10x_mtx, tmp_path / "p", prefix="s1_"), _quiet(sc.read_10x_mtx, tmp_path / "p", prefix="s1_"), csr_vs_csc=True)
    monkeypatch.chdir(tmp_path)
    first = _quiet(aio.read_10x_mtx, tmp_path / "p", prefix="s1_", cache=True)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    shutil.rmtree(tmp_path / "p")  # the second read comes from the cache
    cached = _quiet(aio.read_10x_mtx, tmp_path / "p", prefix="s1_", cache=True)
    cached.var = cached.var.astype(first.var.dtypes)  # h5ad stores string columns as categories (as scanpy's cache does; pandas 3: str in memory)
    assert_equal(cached, first, exact=True)


def test_mtx_mismatched_files(tmp_path, data):
    m, feats, bcs = data
    tenx.write_mtx_v3(tmp_path / "v3", m, feats, bcs[:-1])
    with pytest.raises(FormatError, match="300 barcodes, but features.tsv.gz has 50 rows and barcodes.tsv.gz 299"):
        aio.read_10x_mtx(tmp_path / "v3")
    (tmp_path / "v3" / "matrix.mtx.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"no matrix.mtx\(.gz\)"):
        aio.read_10x_mtx(tmp_path / "v3")
