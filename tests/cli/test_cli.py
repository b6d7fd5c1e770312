"""The ``annio`` command: info, convert, validate, demo."""

from __future__ import annotations

import annio
from annio import datasets
from annio.cli.main import main
from annio.testing import assert_equal


def test_convert_info_validate(tmp_path, capsys):
    adata = datasets.pbmc_like(300, 60)
    src = tmp_path / "a.h5ad"
    adata.write_h5ad(src)
    assert main(["convert", str(src), str(tmp_path / "b.zarr"), "--zarr-format", "2"]) == 0
    assert main(["convert", str(tmp_path / "b.zarr"), str(tmp_path / "c.h5ad"), "--compression", "gzip"]) == 0
    assert_equal(annio.read_h5ad(tmp_path / "c.h5ad"), adata)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "b.zarr"), "--tree", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "obs: dataframe 0.2.0" in out and "X: csr_matrix 0.1.0 shape=(300, 60)" in out
    assert main(["validate", str(tmp_path / "c.h5ad")]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_reports_corrupt_file(tmp_path, capsys):
    bad = tmp_path / "bad.h5ad"
    datasets.pbmc_like(50, 10).write_h5ad(bad)
    bad.write_bytes(bad.read_bytes()[:2000])  # truncated
    assert main(["validate", str(bad)]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n-obs", "400", "--n-vars", "50"]) == 0
    assert "round trips: identical to the original" in capsys.readouterr().out
