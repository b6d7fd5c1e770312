"""Backed and lazy objects across the bridge, writers given anndata objects, and a clear error
when anndata is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from bridge_helpers import assert_all_shared, full_adata

import annio
from annio.testing import assert_equal

ad = pytest.importorskip("anndata")
pytestmark = [pytest.mark.interop, pytest.mark.filterwarnings("ignore::anndata.ExperimentalFeatureWarning")]

SRC = str(Path(annio.__file__).resolve().parents[1])


@pytest.fixture
def h5ad_file(tmp_path):
    path = tmp_path / "data.h5ad"
    full_adata(ad.AnnData).write_h5ad(path)
    return path


# -- backed -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_backed_to_anndata_is_backed_on_the_same_file(h5ad_file, mode):
    a = annio.read_h5ad(h5ad_file, backed=mode)
    b = a.to_anndata()
    assert b.isbacked and Path(b.filename) == Path(a.filename)
    assert b.file._filemode == mode
    assert a.obsm["array"] is b.obsm["array"]
    assert_equal(b.to_memory(), ad.read_h5ad(h5ad_file), exact=True)
    assert_equal(b.raw.X, ad.read_h5ad(h5ad_file).raw.X)  # anndata reads it from the file
    view = a[2:9, 3:7].to_anndata()
    assert view.is_view and view.isbacked
    assert_equal(view.X, ad.read_h5ad(h5ad_file)[2:9, 3:7].X)
    b.file.close()
    a.file.close()


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_backed_anndata_becomes_backed_annio(h5ad_file, mode):
    b = ad.read_h5ad(h5ad_file, backed=mode)
    a = annio.AnnData.from_anndata(b)
    assert a.isbacked and Path(a.filename) == Path(b.filename) and a.file.filemode == mode
    assert a.obs is not b.obs and np.shares_memory(a.obs["int64"].to_numpy(), b.obs["int64"].to_numpy())
    assert_equal(a.to_memory(), ad.read_h5ad(h5ad_file), exact=True)
    a.file.close()
    b.file.close()


# -- lazy ---------------------------------------------------------------------------
def test_lazy_keeps_dask_arrays_and_loads_frames(h5ad_file):
    from annio.experimental import read_lazy

    lazy = read_lazy(h5ad_file)
    b = lazy.to_anndata()
    assert type(b.X).__module__.startswith("dask")
    assert b.obsm["array"] is lazy.obsm["array"]  # still the lazy dask array, nothing computed
    assert type(b.obs).__name__ == "DataFrame" and type(b.obs).__module__.startswith("pandas")
    assert type(b.obsm["df"]).__module__.startswith("pandas")
    assert_equal(b, ad.read_h5ad(h5ad_file))
    sub = lazy[3:11].to_anndata()
    assert sub.is_view and sub.n_obs == 8
    assert_equal(sub.to_memory(), ad.read_h5ad(h5ad_file)[3:11])
    lazy.file.close()


# -- writers ------------------------------------------------------------------------
def test_write_h5ad_accepts_anndata(tmp_path):
    b = full_adata(ad.AnnData)
    annio.write_h5ad(tmp_path / "annio.h5ad", b, compression="gzip")
    b.write_h5ad(tmp_path / "anndata.h5ad")
    assert_equal(ad.read_h5ad(tmp_path / "annio.h5ad"), ad.read_h5ad(tmp_path / "anndata.h5ad"), exact=True)
    with h5py.File(tmp_path / "annio.h5ad") as f:
        assert f["X/data"].compression == "gzip"


@pytest.mark.parametrize("fmt", [2, 3])
def test_write_zarr_accepts_anndata(tmp_path, fmt):
    b = full_adata(ad.AnnData)
    annio.write_zarr(tmp_path / "annio.zarr", b, zarr_format=fmt)
    # not exact: anndata reads zarr string arrays in uns as numpy StringDType, annio as object
    # (as both read them from h5ad)
    assert_equal(ad.read_zarr(tmp_path / "annio.zarr"), annio.read_zarr(tmp_path / "annio.zarr"))
    b.write_zarr(tmp_path / "anndata.zarr")
    assert_equal(ad.read_zarr(tmp_path / "annio.zarr"), ad.read_zarr(tmp_path / "anndata.zarr"), exact=True)


def test_write_elem_accepts_anndata_and_its_raw(tmp_path):
    b = full_adata(ad.AnnData)
    with h5py.File(tmp_path / "root.h5", "w") as f:
        annio.io.write_elem(f, "/", b)
    assert_equal(ad.read_h5ad(tmp_path / "root.h5"), b)  # (numpy scalars in uns read as Python ones)
    with h5py.File(tmp_path / "elem.h5", "w") as f:
        annio.io.write_elem(f, "nested", b[:5])  # a view
        annio.io.write_elem(f, "rawonly", b.raw)
        annio.io.write_elem(f, "in_uns", {"adata": b})
    with h5py.File(tmp_path / "elem.h5") as f:
        assert f["nested"].attrs["encoding-type"] == "anndata"
        assert f["rawonly"].attrs["encoding-type"] == "raw"
        assert_equal(ad.io.read_elem(f["nested"]), b[:5])
        assert_equal(ad.io.read_elem(f["in_uns/adata"]), b)
        assert_equal(ad.io.read_elem(f["rawonly/X"]), b.raw.X, exact=True)


def test_anndata_in_uns_written_by_annio(tmp_path):
    inner = full_adata(ad.AnnData, shape=(4, 3))
    a = annio.AnnData(np.ones((2, 2)), uns={"inner": inner})
    a.write_h5ad(tmp_path / "x.h5ad")
    assert_equal(ad.read_h5ad(tmp_path / "x.h5ad").uns["inner"], inner)


@pytest.mark.parametrize("target", ["out.h5ad", "out.zarr"])
def test_convert_accepts_anndata(tmp_path, target):
    b = full_adata(ad.AnnData)
    annio.convert(b, tmp_path / target)
    h5ad = target.endswith("h5ad")
    read = ad.read_h5ad if h5ad else ad.read_zarr
    (b.write_h5ad if h5ad else b.write_zarr)(tmp_path / ("anndata-" + target))
    expected = read(tmp_path / ("anndata-" + target))
    assert_equal(read(tmp_path / target), expected, exact=True)
    annio.convert(annio.AnnData(b), tmp_path / ("again-" + target))
    assert_equal(read(tmp_path / ("again-" + target)), expected, exact=True)


def test_read_then_to_anndata_one_liner(h5ad_file):
    b = annio.read_h5ad(h5ad_file).to_anndata()
    assert type(b) is ad.AnnData
    assert_equal(b, ad.read_h5ad(h5ad_file), exact=True)
    z = h5ad_file.with_suffix(".zarr")
    annio.write_zarr(z, b)
    assert_equal(annio.read_zarr(z).to_anndata(), ad.read_zarr(z))  # uns strings: object vs StringDType


def test_round_trip_through_files_shares_nothing_unexpected(h5ad_file):
    a = annio.read_h5ad(h5ad_file)
    b = a.to_anndata()
    assert_all_shared(a, b)


# -- anndata missing ------------------------------------------------------------------
def _run_without_anndata(code: str) -> subprocess.CompletedProcess:
    script = "import sys\nsys.modules['anndata'] = None\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": SRC, "PATH": ""}, timeout=120
    )


def test_missing_anndata_gives_a_clear_error(tmp_path):
    result = _run_without_anndata(
        f"""
        import numpy as np, annio
        a = annio.AnnData(np.ones((3, 2)))
        a.write_h5ad({str(tmp_path / 'x.h5ad')!r})  # annio works without anndata
        assert annio.read_h5ad({str(tmp_path / 'x.h5ad')!r}).shape == (3, 2)
        try:
            a.to_anndata()
        except ImportError as err:
            print("ERROR:", err)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR: Converting to an anndata object needs the `anndata` package" in result.stdout
    assert "pip install anndata" in result.stdout


def test_annio_never_imports_anndata():
    result = subprocess.run(
        [sys.executable, "-c", "import annio, annio.io, annio.experimental, sys; "
         "annio.AnnData(); print('anndata' in sys.modules)"],
        capture_output=True, text=True, env={"PYTHONPATH": SRC, "PATH": ""}, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
