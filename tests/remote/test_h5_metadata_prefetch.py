"""Opening a remote HDF5 file fetches its metadata ahead, counted at a real HTTP server: a
small file in one request, a large one in a few rounds of concurrent requests, after which
walking every group and reading every attribute makes no request at all."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

import annio
from annio.io._storage import h5_ranges
from annio.io._storage.remote import open_h5_file_from_url
from annio.testing import assert_equal

pytestmark = pytest.mark.remote


def _everything(f: h5py.File) -> list[tuple[str, dict[str, Any]]]:
    """Every object's name and attributes, the way an h5ad reader walks a file."""
    out: list[tuple[str, dict[str, Any]]] = [("/", dict(f.attrs))]
    f.visititems(lambda name, obj: out.append((name, {k: obj.attrs[k] for k in obj.attrs})))
    return out


def _large_h5ad(path: Path) -> annio.AnnData:
    """An h5ad of ~12 MiB whose metadata lies between its data (obs columns written after X)."""
    rng = np.random.default_rng(0)
    n_obs, n_var = 3000, 500
    obs = pd.DataFrame(
        {f"col{i}": pd.Categorical(rng.choice([f"a{i}", f"b{i}", "c"], n_obs)) if i % 3 == 0 else rng.random(n_obs) for i in range(12)},
        index=[f"cell{k}" for k in range(n_obs)],
    )
    a = annio.AnnData(X=rng.random((n_obs, n_var)).astype(np.float64), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_var)]))
    a.obsm["pca"] = rng.random((n_obs, 20))
    a.uns["params"] = {"method": "test", "n": 3, "nested": {"names": np.array(["x", "y"], dtype=object)}}
    a.write_h5ad(path)
    return a


def _nbytes(entry: Any, size: int) -> int:
    """Bytes a logged request asked for (a GET without a Range: the whole file)."""
    if entry.method != "GET":
        return 0
    if not entry.range:
        return size
    first, _, last = entry.range.removeprefix("bytes=").partition("-")
    return min(int(last) + 1, size) - int(first) if last else size - int(first)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("h5meta")
    large = _large_h5ad(d / "large.h5ad")
    small = annio.AnnData(X=np.arange(12.0).reshape(4, 3))
    small.write_h5ad(d / "small.h5ad")
    dest = http_server.root / "h5meta"
    dest.mkdir(exist_ok=True)
    for name in ("large.h5ad", "small.h5ad"):
        shutil.copy(d / name, dest / name)
    assert (d / "large.h5ad").stat().st_size > h5_ranges._WHOLE_FILE_BYTES
    return {"dir": d, "large": large, "small": small}


@pytest.mark.parametrize("name", ["large.h5ad", "small.h5ad"])
def test_walking_the_opened_file_makes_no_request(served: dict[str, Any], http_server: Any, name: str) -> None:
    http_server.log.clear()
    with open_h5_file_from_url(http_server.url(f"h5meta/{name}")) as remote, h5py.File(served["dir"] / name, "r") as local:
        opened = len(http_server.log.under(f"/h5meta/{name}"))
        remote_objects = _everything(remote)
        during_walk = len(http_server.log.under(f"/h5meta/{name}")) - opened
        local_objects = _everything(local)
    assert [n for n, _ in remote_objects] == [n for n, _ in local_objects]
    for (name_r, attrs_r), (_, attrs_l) in zip(remote_objects, local_objects, strict=True):
        assert attrs_r.keys() == attrs_l.keys(), name_r
        for k in attrs_r:
            np.testing.assert_array_equal(attrs_r[k], attrs_l[k], err_msg=f"{name_r}:{k}")
    assert during_walk == 0
    if name == "small.h5ad":
        # the size (HEAD) with the superblock's 4 KiB, then the rest of the file: every byte once
        assert opened <= 3
        fetched = sum(_nbytes(e, size=(served["dir"] / name).stat().st_size) for e in http_server.log.under(f"/h5meta/{name}"))
        assert fetched == (served["dir"] / name).stat().st_size
    else:
        # rounds of concurrent requests for the metadata, never the whole 12 MiB file
        fetched = sum(_nbytes(e, size=(served["dir"] / name).stat().st_size) for e in http_server.log.under(f"/h5meta/{name}"))
        assert fetched < 2 * 1024 * 1024, fetched


def test_read_through_prefetched_metadata_is_exact(served: dict[str, Any], http_server: Any) -> None:
    got = annio.read_h5ad(http_server.url("h5meta/large.h5ad"))
    assert_equal(got, served["large"])
    lazy = annio.experimental.read_lazy(http_server.url("h5meta/large.h5ad"))
    assert_equal(lazy[100:250].to_memory(), served["large"][100:250])
