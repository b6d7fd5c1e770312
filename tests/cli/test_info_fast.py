"""``annio info`` on a local file reads its metadata with h5py or json alone
(:mod:`annio.io._storage.peek`): the same answers as the full storage adapter, without
importing zarr, pandas, scipy or dask; anything the fast view is unsure of goes through the
adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

import annio
from annio import datasets
from annio.cli.main import main
from annio.io._storage import peek
from annio.io._storage.adapter import wrap
from annio.io._storage.describe import codec
from annio.io._storage.stores import open_read

SRC = Path(annio.__file__).resolve().parents[1]


def _extras_zarr(path: Path, zarr_format: int) -> None:
    """Arrays with codecs and grids annio does not write by default."""
    g = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    x = np.arange(1000, dtype="f8").reshape(100, 10)
    if zarr_format == 3:
        g.create_array("blosc", data=x, chunks=(10, 10), shards=(50, 10), compressors=[BloscCodec(cname="lz4", clevel=5)])
        g.create_array("gzip", data=x.astype("i2"), chunks=(30, 5), compressors=[GzipCodec(level=3)])
        g.create_array("zstd", data=x.astype("u8"), chunks=(7, 10), compressors=[ZstdCodec(level=5)])
    else:
        import numcodecs

        g.create_array("blosc", data=x, chunks=(10, 10), compressors=numcodecs.Blosc(cname="zstd", clevel=3))
        g.create_array("gzip", data=x.astype("i2"), chunks=(30, 5), compressors=numcodecs.GZip(level=3))
        g.create_array("fixed", data=np.array(["ab", "c"], dtype="U2"))
    g.create_array("plain", data=x.astype("f4"), compressors=None)
    g.create_array("flags", data=np.array([True, False]))
    zarr.consolidate_metadata(g.store)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast")
    adata = datasets.pbmc_like(300, 40)
    adata.raw = adata.copy()
    out = {}
    for name, kwargs in {"plain.h5ad": {}, "gzip.h5ad": {"compression": "gzip"}, "lzf.h5ad": {"compression": "lzf"}}.items():
        adata.write_h5ad(folder / name, **kwargs)
        out[name] = folder / name
    adata.write_zarr(folder / "v3.zarr")
    adata.write_zarr(folder / "v2.zarr", zarr_format=2)
    with annio.settings.override(auto_shard_zarr_v3=False):
        adata.write_zarr(folder / "v3-unsharded.zarr")
    for fmt in (2, 3):
        _extras_zarr(folder / f"extras-v{fmt}.zarr", fmt)
    with h5py.File(folder / "extras.h5", "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.create_dataset("shuffled", data=np.ones((50, 4)), chunks=(10, 4), compression="gzip", compression_opts=6, shuffle=True)
        f.create_dataset("bytes", data=np.array([b"a", b"bc"]))
        f.create_dataset("null", data=h5py.Empty("f"))
        f["soft"] = h5py.SoftLink("/shuffled")
    for p in folder.iterdir():
        out[p.name] = p
    return out


def _pairs(fast, full):
    yield fast, full
    if full.is_group:
        assert fast.keys() == full.keys(), full.path
        for key in full.keys():
            yield from _pairs(fast[key], full[key])


@pytest.mark.parametrize("name", ["plain.h5ad", "gzip.h5ad", "lzf.h5ad", "extras.h5", "v3.zarr", "v2.zarr", "v3-unsharded.zarr", "extras-v2.zarr", "extras-v3.zarr"])
def test_fast_view_reports_what_the_adapter_reports(stores, name):
    with peek.open_metadata(stores[name]) as fast, open_read(stores[name]) as raw:
        n = 0
        for a, b in _pairs(fast, wrap(raw)):
            n += 1
            assert (a.name, a.is_group, dict(a.attrs)) == (b.name, b.is_group, dict(b.attrs)), b.path
            if not b.is_group:
                assert (a.shape, str(a.dtype), a.is_string, a.chunks, a.shards) == (b.shape, str(b.dtype), b.is_string, b.chunks, b.shards), b.path
                assert peek.codec_of(a) == codec(b), b.path
        assert n >= 5


def _info(argv, monkeypatch, capsys, *, fast: bool):
    if not fast:
        def refuse(path):
            raise peek.Unsupported(path)

        monkeypatch.setattr(peek, "open_metadata", refuse)
    code = main(argv)
    monkeypatch.undo()
    return code, capsys.readouterr().out


@pytest.mark.parametrize("flag", [[], ["--json"], ["--tree"]])
@pytest.mark.parametrize("name", ["gzip.h5ad", "lzf.h5ad", "v3.zarr", "v2.zarr", "v3-unsharded.zarr", "extras-v3.zarr", "extras-v2.zarr"])
def test_output_is_the_same_as_through_the_adapter(stores, name, flag, monkeypatch, capsys):
    fast = _info(["info", str(stores[name]), *flag], monkeypatch, capsys, fast=True)
    full = _info(["info", str(stores[name]), *flag], monkeypatch, capsys, fast=False)
    assert fast == full and fast[0] == 0 and fast[1]


def _modules_after_info(path: Path) -> tuple[str, set[str]]:
    probe = (
        "import sys, json, io, contextlib\nfrom annio.cli.main import main\n"
        f"buf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    code = main(['info', {str(path)!r}])\n"
        "print(json.dumps([code, buf.getvalue(), sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    code, text, modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert code == 0, result.stderr
    return text, set(modules)


@pytest.mark.parametrize("name", ["gzip.h5ad", "v3.zarr", "v2.zarr"])
def test_info_imports_only_what_the_format_needs(stores, name):
    text, modules = _modules_after_info(stores[name])
    assert "AnnData object with n_obs × n_vars = 300 × 40" in text
    heavy = {"pandas", "scipy", "dask", "xarray", "zarr", "numcodecs", "anndata", "rich", "asyncio"} & modules
    assert not heavy, f"annio info {name} imported {sorted(heavy)}"
    if name.endswith(".zarr"):
        assert not {"h5py", "numpy"} & modules  # json alone


def test_stores_the_fast_view_refuses_go_through_the_adapter(stores, tmp_path, monkeypatch, capsys):
    # no consolidated metadata, a zip archive: the adapter answers
    import shutil

    bare = tmp_path / "bare.zarr"
    shutil.copytree(stores["v2.zarr"], bare)
    (bare / ".zmetadata").unlink()
    with pytest.raises(peek.Unsupported):
        with peek.open_metadata(bare):
            pass
    code, out = _info(["info", str(bare)], monkeypatch, capsys, fast=True)
    assert code == 0 and "n_obs × n_vars = 300 × 40" in out
    archive = tmp_path / "a.zip"
    annio.read_zarr(stores["v3.zarr"]).write_zarr(archive)
    with pytest.raises(peek.Unsupported):
        with peek.open_metadata(archive):
            pass
    code, out = _info(["info", str(archive)], monkeypatch, capsys, fast=True)
    assert code == 0 and "(zarr v3, " in out


def test_damaged_metadata_gets_the_adapters_error(stores, tmp_path, monkeypatch, capsys):
    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(stores["v3.zarr"], broken)
    meta = json.loads((broken / "zarr.json").read_text())
    meta["consolidated_metadata"]["metadata"]["X/data"]["chunk_grid"]["configuration"]["chunk_shape"] = [0]
    (broken / "zarr.json").write_text(json.dumps(meta))
    fast = _info(["info", str(broken)], monkeypatch, capsys, fast=True)
    capsys.readouterr()
    full = _info(["info", str(broken)], monkeypatch, capsys, fast=False)
    assert fast[0] == full[0]
    truncated = tmp_path / "t.h5ad"
    truncated.write_bytes(stores["gzip.h5ad"].read_bytes()[:3000])
    assert main(["info", str(truncated)]) == 2
    assert "t.h5ad" in capsys.readouterr().err


def test_the_fast_path_is_taken_for_local_files(stores, monkeypatch, capsys):
    # the adapter is not opened at all for a consolidated store
    from annio.io._storage import stores as stores_module

    def forbidden(*args, **kwargs):
        raise AssertionError("the full adapter was opened")

    monkeypatch.setattr(stores_module, "open_read", forbidden)
    for name in ("gzip.h5ad", "v3.zarr", "v2.zarr"):
        assert main(["info", str(stores[name])]) == 0
    assert capsys.readouterr().out.count("AnnData object") == 3


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_a_null_raw_and_X_are_absent(stores, tmp_path, fmt, monkeypatch, capsys):
    # anndata writes ``raw=None`` (and X=None) as a "null" element: a regression of info
    # crashing on it ('StorageArray' object has no attribute 'keys')
    adata = annio.read_h5ad(stores["gzip.h5ad"])
    path = tmp_path / f"null.{fmt}"
    adata.write_h5ad(path) if fmt == "h5ad" else adata.write_zarr(path)
    null = {"encoding-type": "null", "encoding-version": "0.1.0"}
    if fmt == "h5ad":
        with h5py.File(path, "a") as f:
            for name in ("raw", "X"):
                del f[name]
                f.create_dataset(name, data=h5py.Empty("bool")).attrs.update(null)
    else:
        g = zarr.open_group(path, mode="a")
        for name in ("raw", "X"):
            del g[name]
            g.create_array(name, shape=(), dtype="bool", fill_value=False).attrs.update(null)
        zarr.consolidate_metadata(g.store)
    fast = _info(["info", str(path)], monkeypatch, capsys, fast=True)
    full = _info(["info", str(path)], monkeypatch, capsys, fast=False)
    assert fast == full and fast[0] == 0
    assert "raw:" not in fast[1] and "X: none" in fast[1] and "n_obs × n_vars = 300 × 40" in fast[1]
