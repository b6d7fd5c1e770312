"""Fixtures for the lazy tests (helpers live in ``lazy_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lazy_helpers import FORMATS, make_adata, write

import annio


@pytest.fixture(scope="module")
def adata() -> annio.AnnData:
    return make_adata()


@pytest.fixture(scope="module", params=FORMATS)
def stored(request: pytest.FixtureRequest, adata: annio.AnnData, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = write(adata, tmp_path_factory.mktemp(request.param) / "data", request.param)
    return request.param, path




@pytest.fixture(scope="module")
def stored_h5ad(adata: annio.AnnData, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The same data as ``stored``, as h5ad only (for HDF5-specific behaviour)."""
    return "h5ad", write(adata, tmp_path_factory.mktemp("h5ad-only") / "data", "h5ad")
