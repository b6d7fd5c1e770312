"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
import zarr

import annio

ARCHIVES_DIR = Path(__file__).resolve().parent / "data" / "archives"
"""Files written by old anndata releases (``<version>/adata.h5ad``, ``adata.zarr.zip``),
kept in the repository so a fresh clone runs every test."""

STORE_KINDS = ["h5ad", "h5ad-gzip", "zarr2", "zarr3", "zarr3-sharded"]


@pytest.fixture
def archives() -> Path:
    """The folder of anndata archive files (see :data:`ARCHIVES_DIR`)."""
    return ARCHIVES_DIR


class StoreCase:
    """An empty root group of one storage kind, plus the dataset_kwargs that kind implies."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.dataset_kwargs: dict[str, Any] = {}
        self._file: h5py.File | None = None
        if kind.startswith("h5ad"):
            self.path = tmp_path / "store.h5ad"
            self._file = h5py.File(self.path, "w")
            self.group: Any = self._file
            if kind == "h5ad-gzip":
                self.dataset_kwargs = {"compression": "gzip"}
        else:
            self.path = tmp_path / "store.zarr"
            self.group = zarr.open_group(self.path, mode="w", zarr_format=2 if kind == "zarr2" else 3)

    @property
    def sharded(self) -> bool:
        return self.kind == "zarr3-sharded"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    """Every storage kind: h5ad, h5ad with gzip, zarr v2, zarr v3 and zarr v3 sharded."""
    case = StoreCase(request.param, tmp_path)
    with annio.settings.override(auto_shard_zarr_v3=case.sharded):
        yield case
    case.close()


@pytest.fixture(scope="session")
def system_tool() -> Callable[[str, str], str]:
    """``system_tool(binary, debian_package)``: the path of a command-line tool a test needs.

    Installed with apt when missing and we are root. Skips (visibly) only when it cannot be
    had outside CI; under ``CI=true`` a missing tool fails the test instead.
    """

    def find(binary: str, package: str) -> str:
        found = shutil.which(binary)
        if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, timeout=300)
            found = shutil.which(binary)
        if found is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{binary} is required in CI (apt-get install {package})")
            pytest.skip(f"{binary} is not installed and could not be installed (Debian package {package})")
        return found

    return find
