"""Requests per part of a lazy concat of remote stores, counted at a real HTTP server:
building the concat makes no request, ``to_memory()`` fetches every zarr object of a part at
most once, and a row selection that falls inside one part fetches, of the other parts, only
the categories the unified categoricals need."""

from __future__ import annotations

import collections
import shutil
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
from annio.experimental import read_lazy
from annio.testing import assert_equal

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]

N_OBS = [300, 250, 280]


def _part(i: int, n_obs: int) -> annio.AnnData:
    rng = np.random.default_rng(i)
    genes = [f"g{j}" for j in range(40)]
    obs = pd.DataFrame(
        {"cat": pd.Categorical(rng.choice(["a", "b", f"p{i}"], n_obs)), "num": rng.random(n_obs), "name": [f"n{i}_{k}" for k in range(n_obs)]},
        index=[f"c{i}_{k}" for k in range(n_obs)],
    )
    X = sp.random(n_obs, len(genes), density=0.2, format="csr", random_state=i, dtype=np.float32)
    a = annio.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    a.obsm["pca"] = rng.random((n_obs, 4)).astype(np.float32)
    a.layers["counts"] = X.copy()
    return a


@pytest.fixture(scope="module")
def served_parts(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> tuple[list[str], list[annio.AnnData]]:
    d = tmp_path_factory.mktemp("concat-reads")
    prefixes, eager = [], []
    for i, n in enumerate(N_OBS):
        a = _part(i, n)
        local = d / f"part{i}.zarr"
        with annio.settings.override(zarr_write_format=3):
            a.write_zarr(local)
        shutil.copytree(local, http_server.root / "concat-reads" / local.name)
        prefixes.append(f"/concat-reads/{local.name}")
        eager.append(annio.read_zarr(local))
    return prefixes, eager


def _per_part(http_server: Any, prefixes: list[str]) -> list[collections.Counter]:
    return [collections.Counter(e.path for e in http_server.log.under(p + "/")) for p in prefixes]


def test_lazy_concat_requests_per_part(served_parts: Any, http_server: Any) -> None:
    prefixes, eager = served_parts
    lazies = [read_lazy(http_server.url(p)) for p in prefixes]
    http_server.log.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = annio.concat(lazies, label="batch")
    assert len(http_server.log.under("/concat-reads/")) == 0, "building the lazy concat made requests"

    got = result.to_memory()
    assert_equal(got, annio.concat(eager, label="batch"))
    for i, counts in enumerate(_per_part(http_server, prefixes)):
        assert counts, f"part {i} was not read"
        twice = {path: n for path, n in counts.items() if n > 1}
        assert not twice, f"part {i}: objects fetched more than once: {twice}"


def test_selection_inside_one_part_reads_no_data_of_the_others(served_parts: Any, http_server: Any) -> None:
    prefixes, eager = served_parts
    lazies = [read_lazy(http_server.url(p)) for p in prefixes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = annio.concat(lazies, label="batch")
        expected = annio.concat(eager, label="batch")
    lo = N_OBS[0] + 10  # rows 10..59 of part 1
    rows = np.arange(lo, lo + 50)
    http_server.log.clear()
    got = result[rows].to_memory()
    assert_equal(got, expected[rows].copy())
    counts = _per_part(http_server, prefixes)
    for i in (0, 2):
        # only the categories of the other parts' categoricals: the output's category set is
        # their union, so it needs them whatever rows are selected
        others = {p for p in counts[i] if not p.endswith(("zarr.json", ".zmetadata", ".zattrs", ".zgroup"))}
        assert others == {f"{prefixes[i]}/obs/cat/categories/c/0"}, f"part {i} outside the selection: {sorted(others)}"
    assert any("/X/" in p for p in counts[1]) and any("/layers/counts/" in p for p in counts[1]), "the selected part's matrices were not read"
