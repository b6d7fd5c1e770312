"""``annio info`` summaries, exit codes, one-line errors, quiet mode through pipes, storage
options, and convert from the other formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import annio
from annio import datasets
from annio.cli.main import main
from annio.cli.options import storage_options
from annio.cli.progress import interactive, progress_bar
from annio.testing import assert_equal

SRC = Path(annio.__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io" / "formats"))
import tenx_files as tenx  # noqa: E402


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command in a subprocess, its stdout/stderr being pipes (not terminals)."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "annio.cli.main", *argv], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    adata = datasets.pbmc_like(400, 60)
    adata.write_h5ad(folder / "a.h5ad", compression="gzip")
    adata.write_zarr(folder / "a.zarr")
    return folder, adata


def test_info_summary(store, capsys):
    folder, adata = store
    assert main(["info", str(folder / "a.h5ad")]) == 0
    out = capsys.readouterr().out
    assert f"n_obs × n_vars = {adata.n_obs} × {adata.n_vars}" in out
    assert "(h5ad, " in out and "on disk in 1 file)" in out
    for col in adata.obs.columns:
        assert f"'{col}'" in out
    assert "'cell_type' (category, " in out
    X = adata.X
    assert f"X: csr_matrix {X.dtype}, nnz {X.nnz:,}" in out and "codec gzip:4" in out
    assert "obsm: 'X_pca' (400×50 float32)" in out


def test_info_json_zarr(store, capsys):
    folder, adata = store
    assert main(["info", str(folder / "a.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n_obs"], info["n_vars"]) == adata.shape
    assert info["format"] == f"zarr v{annio.settings.zarr_write_format}"
    assert info["X"]["nnz"] == adata.X.nnz and info["X"]["dtype"] == str(adata.X.dtype)
    assert list(info["obs"]) == list(adata.obs.columns)
    assert set(info["layers"]) == {k for k in adata.layers.keys() if k is not None}
    files = [p for p in (folder / "a.zarr").rglob("*") if p.is_file()]
    assert info["files"] == len(files) and info["disk_bytes"] == sum(p.stat().st_size for p in files)


def test_info_reads_no_data(store, capsys, monkeypatch):
    from annio.io._storage import adapter

    def forbidden(*args, **kwargs):
        raise AssertionError("info read array data")

    monkeypatch.setattr(adapter.StorageArray, "read", forbidden)
    monkeypatch.setattr(adapter.StorageArray, "read_ranges", forbidden)
    for name in ("a.h5ad", "a.zarr"):
        assert main(["info", str(store[0] / name)]) == 0
    assert capsys.readouterr().out.count("AnnData object") == 2


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.h5ad"
    datasets.pbmc_like(50, 10).write_h5ad(bad)
    with h5py.File(bad, "a") as f:
        f["X"].attrs["encoding-type"] = "nonsense"
    r = _run("convert", str(bad), str(tmp_path / "out.zarr"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "annio convert: error:" in lines[0] and "bad.h5ad" in lines[0] and "/X" in lines[0]
    r = _run("info", str(tmp_path / "missing.h5ad"))
    assert r.returncode == 2 and "missing.h5ad" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _run("info").returncode == 2  # usage error
    assert main(["convert"]) == 2
    r = _run("validate", str(bad))
    assert r.returncode == 1 and r.stdout.startswith("INVALID")


def test_quiet_through_pipes(store, tmp_path):
    folder, adata = store
    r = _run("convert", str(folder / "a.h5ad"), str(tmp_path / "b.zarr"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # stderr is a pipe: no progress display
    assert r.stdout.startswith("wrote ")
    r = _run("convert", "-q", str(folder / "a.h5ad"), str(tmp_path / "c.h5ad"))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert_equal(annio.read_h5ad(tmp_path / "c.h5ad"), adata)
    r = _run("validate", "--quiet", str(tmp_path / "b.zarr"))
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("OK")


def test_progress_helper_off_without_terminal(capsys):
    assert not interactive()  # pytest captures stderr
    assert not interactive(quiet=True)
    with progress_bar("x") as update:
        update(1, 2)
    assert capsys.readouterr().err == ""


def test_storage_options_from_env_and_flags(monkeypatch):
    import argparse

    monkeypatch.setenv("ANNIO_STORAGE_OPTIONS", '{"anon": true, "region": "eu"}')
    args = argparse.Namespace(storage_option=["region=us", "endpoint_url=http://127.0.0.1:9000", "retries=3"])
    assert storage_options(args) == {"anon": True, "region": "us", "endpoint_url": "http://127.0.0.1:9000", "retries": 3}
    monkeypatch.setenv("ANNIO_STORAGE_OPTIONS", "[1]")
    with pytest.raises(ValueError, match="not a JSON object"):
        storage_options(args)
    monkeypatch.delenv("ANNIO_STORAGE_OPTIONS")
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        storage_options(argparse.Namespace(storage_option=["novalue"]))


def test_convert_other_formats(tmp_path):
    m, feats, bcs = tenx.counts(200, 40), tenx.features(40), tenx.barcodes(200)
    tenx.write_h5_v3(tmp_path / "f.h5", m, feats, bcs)
    tenx.write_mtx_v3(tmp_path / "mtx", m, feats, bcs)
    expected = annio.io.read_10x_h5(tmp_path / "f.h5")
    for source, target in (("f.h5", "a.h5ad"), ("mtx", "b.zarr"), ("a.h5ad", "c.loom"), ("c.loom", "d.h5ad")):
        assert main(["convert", "-q", str(tmp_path / source), str(tmp_path / target), "--zarr-format", "2"]) == 0
    mtx = annio.read_zarr(tmp_path / "b.zarr")
    first = annio.read_h5ad(tmp_path / "a.h5ad")
    first.var = first.var.astype(expected.var.dtypes)  # h5ad stores string columns as categories (pandas 3: str in memory)
    assert_equal(first, expected, exact=True)
    np.testing.assert_array_equal(mtx.X.toarray(), expected.X.toarray())
    back = annio.read_h5ad(tmp_path / "d.h5ad")
    np.testing.assert_array_equal(back.X.toarray(), expected.X.toarray())
    assert list(back.obs["obs_names"]) == list(expected.obs_names)
