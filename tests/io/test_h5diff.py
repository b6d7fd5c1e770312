"""Rewriting anndata 0.11.4's h5ad with annio gives a file `h5diff -c` finds identical."""

from __future__ import annotations

import subprocess

import annio
from annio.io import read_h5ad, write_h5ad


def test_rewrite_is_h5diff_identical(archives, tmp_path, system_tool):
    h5diff = system_tool("h5diff", "hdf5-tools")
    old = archives / "v0.11.4" / "adata.h5ad"
    new = tmp_path / "rewritten.h5ad"
    with annio.settings.override(allow_write_nullable_strings=False):
        write_h5ad(new, read_h5ad(old))
    result = subprocess.run([h5diff, "-c", str(old), str(new)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"h5diff reports differences:\n{result.stdout}\n{result.stderr}"
    assert "Not comparable" not in result.stdout
