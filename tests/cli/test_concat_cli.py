"""``annio concat``."""

from __future__ import annotations

import annio
from annio import datasets
from annio.cli.main import main
from annio.testing import assert_equal


def test_concat_cli_outer_label_index_unique(tmp_path, capsys):
    a = datasets.pbmc_like(120, 40)
    b = datasets.pbmc_like(80, 40)[:, :30].copy()
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_zarr(tmp_path / "b.zarr")
    out = tmp_path / "out.zarr"
    argv = ["concat", str(out), str(tmp_path / "a.h5ad"), str(tmp_path / "b.zarr"), "--join", "outer", "--label", "batch", "--index-unique", "-"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and captured.err == ""  # no progress drawn when stderr is not a terminal
    expected = annio.concat([a, b], join="outer", label="batch", index_unique="-")
    assert_equal(annio.read_zarr(out), expected)


def test_concat_cli_bad_input_is_an_error(tmp_path, capsys):
    assert main(["concat", str(tmp_path / "o.h5ad"), str(tmp_path / "missing.h5ad")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()
