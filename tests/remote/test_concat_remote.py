"""Lazy concat of remote inputs (zarr v2/v3 on S3, h5ad over HTTP, a local file) →
``to_memory`` (and ``concat_on_disk``) equals the eager concat of local reads."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annio
from annio.experimental import concat_on_disk, read_lazy
from annio.testing import assert_equal

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]


def _part(seed: int, n_obs: int, genes: list[str]) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, len(genes), density=0.3, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(["a", f"b{seed}", "x10"], n_obs)),
            "num": rng.random(n_obs),
            "nint": pd.array([i if i % 3 else None for i in range(n_obs)], dtype="Int64"),
        },
        index=[f"c{seed}_{i}" for i in range(n_obs)],
    )
    a = annio.AnnData(X=X, obs=obs, var=pd.DataFrame({"gid": [f"id{g}" for g in genes]}, index=genes))
    a.layers["dense"] = np.asarray(X.todense()) * 2
    a.obsm["pca"] = rng.random((n_obs, 3))
    return a


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("concat-remote")
    genes = [f"g{i}" for i in range(15)]
    out = []
    for i, (fmt, genes_i) in enumerate([("zarr2", genes), ("zarr3", genes[2:] + ["gx"]), ("h5ad", genes[::-1]), ("h5ad", genes[1:])]):
        a = _part(i, 20 + 7 * i, genes_i)
        if fmt == "h5ad":
            p = d / f"p{i}.h5ad"
            a.write_h5ad(p)
        else:
            p = d / f"p{i}.zarr"
            with annio.settings.override(zarr_write_format=int(fmt[-1])):
                a.write_zarr(p)
        out.append(p)
    return out


@pytest.mark.parametrize("options", [{"join": "outer", "label": "batch", "index_unique": "-"}, {"join": "inner", "merge": "first"}], ids=["outer", "inner"])
def test_lazy_concat_of_remote_inputs(parts: list[Path], s3_server: Any, http_server: Any, tmp_path: Path, options: dict) -> None:
    tag = options["join"]
    urls = []
    for p in parts[:2]:
        s3_server.upload_dir(p, f"concat-{tag}/{p.name}")
        urls.append(s3_server.url(f"concat-{tag}/{p.name}"))
    shutil.copy(parts[2], http_server.root / f"concat-{tag}-{parts[2].name}")
    opts = s3_server.storage_options()
    lazies = [read_lazy(u, storage_options=opts) for u in urls]
    lazies.append(read_lazy(http_server.url(f"concat-{tag}-{parts[2].name}")))
    lazies.append(read_lazy(parts[3]))  # local, mixed with remote
    eager = [annio.read_zarr(p) if p.suffix == ".zarr" else annio.read_h5ad(p) for p in parts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = annio.concat(eager, **options)
        result = annio.concat(lazies, **options)
        assert type(result.obs).__name__ == "Dataset2D"
        got = result.to_memory()
    assert_equal(got, expected)
    assert {c: repr(d) for c, d in got.obs.dtypes.items()} == {c: repr(d) for c, d in expected.obs.dtypes.items()}
    # concat_on_disk from the same remote inputs (given as URLs of the h5ad over HTTP)
    out = tmp_path / "out.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        concat_on_disk([http_server.url(f"concat-{tag}-{parts[2].name}"), parts[3]], out, **options)
        assert_equal(annio.read_h5ad(out), annio.concat(eager[2:], **options))
    for a in lazies:
        a.file.close()
