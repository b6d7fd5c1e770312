"""Backed mode: ``read_h5ad(path, backed="r" | "r+")`` keeps X (and raw/X) in the file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import annio
from annio.errors import FormatError
from annio.io._backed import file_backing as backed_mod
from annio.io._backed.file_backing import AnnDataFileManager, CSCDataset, CSRDataset
from annio.io._storage import sparse_read

N_OBS, N_VARS = 40, 12


def _adata(kind: str = "csr", *, raw: bool = True) -> annio.AnnData:
    rng = np.random.default_rng(0)
    dense = rng.random((N_OBS, N_VARS)).astype(np.float32)
    dense[dense < 0.6] = 0
    X = {"csr": sparse.csr_matrix, "csc": sparse.csc_matrix, "dense": np.asarray}[kind](dense)
    obs = pd.DataFrame({"group": pd.Categorical(list("ab") * (N_OBS // 2)), "n": np.arange(N_OBS)}, index=[f"c{i}" for i in range(N_OBS)])
    var = pd.DataFrame({"gene": [f"g{i}" for i in range(N_VARS)]}, index=[f"v{i}" for i in range(N_VARS)])
    a = annio.AnnData(X, obs=obs, var=var, uns={"k": 1}, obsm={"pca": rng.random((N_OBS, 3))}, layers={"counts": dense * 2})
    if raw:
        a.raw = a
    return a


@pytest.fixture(params=["csr", "csc", "dense"])
def h5ad(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, annio.AnnData, str]:
    a = _adata(request.param)
    path = tmp_path / "b.h5ad"
    a.write_h5ad(path)
    return path, a, request.param


def _todense(x: Any) -> np.ndarray:
    if sparse.issparse(x):
        return x.toarray()
    if hasattr(x, "to_memory"):
        return _todense(x.to_memory())
    return np.asarray(x[...] if isinstance(x, h5py.Dataset) else x)


@pytest.mark.parametrize("mode", ["r", "r+", True])
def test_read_backed(h5ad: Any, mode: Any) -> None:
    path, a, kind = h5ad
    b = annio.read_h5ad(path, backed=mode)
    assert b.isbacked and b.file.is_open
    assert b.filename == path
    assert b.file.filemode == ("r+" if mode is True else mode)
    assert repr(b.file) == f"Backing file manager of file {path}."
    assert f"backed at {str(path)!r}" in repr(b)
    X = b.X
    want_type = {"csr": CSRDataset, "csc": CSCDataset, "dense": h5py.Dataset}[kind]
    assert isinstance(X, want_type)
    assert b.X is X  # one dataset per open file (indptr cached once)
    np.testing.assert_array_equal(_todense(X), _todense(a.X))
    # everything else is in memory
    pd.testing.assert_frame_equal(b.obs, a.obs)
    pd.testing.assert_frame_equal(b.var, a.var)
    assert b.uns["k"] == 1
    assert isinstance(b.obsm["pca"], np.ndarray)
    assert isinstance(b.layers["counts"], np.ndarray)
    assert b.raw is not None and b.raw.shape == a.raw.shape
    assert isinstance(b.raw.X, want_type)
    np.testing.assert_array_equal(_todense(b.raw.X), _todense(a.raw.X))
    pd.testing.assert_frame_equal(b.raw.var, a.raw.var)
    b.file.close()


def test_views_read_only_selected_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _adata("csr")
    path = tmp_path / "b.h5ad"
    a.write_h5ad(path)
    b = annio.read_h5ad(path, backed="r")
    requested: list[int] = []
    original = sparse_read.read_ranges

    def spy(arr: Any, starts: Any, stops: Any) -> Any:
        requested.append(int((np.asarray(stops) - np.asarray(starts)).sum()))
        return original(arr, starts, stops)

    monkeypatch.setattr(sparse_read, "read_ranges", spy)
    rows = [31, 2, 17, 3]
    v = b[rows, 2:9]
    assert v.is_view and v.isbacked
    X = v.X
    np.testing.assert_array_equal(_todense(X), a.X[rows][:, 2:9].toarray())
    nnz_rows = int(a.X[rows].nnz)
    # data and indices of exactly the selected rows (indptr comes from the cache)
    assert requested[-2:] == [nnz_rows, nnz_rows]
    # names and masks work too, and nested views compose
    mask = np.zeros(N_OBS, bool)
    mask[[5, 6, 7, 30]] = True
    np.testing.assert_array_equal(_todense(b[mask].X), a.X[mask].toarray())
    np.testing.assert_array_equal(_todense(b[["c9", "c1"], ["v3", "v0"]].X), a[["c9", "c1"], ["v3", "v0"]].X.toarray())
    np.testing.assert_array_equal(_todense(b[10:30][::3].X), a.X[10:30][::3].toarray())
    pd.testing.assert_frame_equal(b[rows].obs, a[rows].obs)
    b.file.close()


def test_dense_view(tmp_path: Path) -> None:
    a = _adata("dense")
    a.write_h5ad(tmp_path / "d.h5ad")
    b = annio.read_h5ad(tmp_path / "d.h5ad", backed="r")
    for idx in ([7, 3, 3, 30], slice(5, 25, 4), np.arange(N_OBS) % 7 == 0):
        np.testing.assert_array_equal(_todense(b[idx].X), a.X[idx])
    np.testing.assert_array_equal(_todense(b[[7, 3], [4, 1]].X), a.X[np.ix_([7, 3], [4, 1])])
    b.file.close()


def test_view_raw_is_subset(h5ad: Any) -> None:
    path, a, _ = h5ad
    b = annio.read_h5ad(path, backed="r")
    v = b[[3, 1]]
    np.testing.assert_array_equal(_todense(v.raw.X), _todense(a.raw.X)[[3, 1]])


def test_to_memory(h5ad: Any) -> None:
    path, a, kind = h5ad
    b = annio.read_h5ad(path, backed="r")
    m = b.to_memory()
    assert not m.isbacked and m.filename is None
    assert b.isbacked  # the backed object is untouched
    assert sparse.issparse(m.X) == (kind != "dense")
    np.testing.assert_array_equal(_todense(m.X), _todense(a.X))
    np.testing.assert_array_equal(_todense(m.raw.X), _todense(a.raw.X))
    assert not isinstance(m.raw.X, h5py.Dataset | CSRDataset | CSCDataset)
    v = b[[4, 0]].to_memory()
    np.testing.assert_array_equal(_todense(v.X), _todense(a.X)[[4, 0]])
    b.file.close()


def test_r_plus_in_place_edit_persists(tmp_path: Path) -> None:
    a = _adata("dense", raw=False)
    a.write_h5ad(tmp_path / "d.h5ad")
    b = annio.read_h5ad(tmp_path / "d.h5ad", backed="r+")
    b.X[0, 0] = 42.0
    b.X[3] = np.arange(N_VARS)
    b.file.close()
    c = annio.read_h5ad(tmp_path / "d.h5ad")
    assert c.X[0, 0] == 42.0
    np.testing.assert_array_equal(c.X[3], np.arange(N_VARS))


def test_read_only_edits_fail(tmp_path: Path) -> None:
    a = _adata("dense", raw=False)
    a.write_h5ad(tmp_path / "d.h5ad")
    b = annio.read_h5ad(tmp_path / "d.h5ad", backed="r")
    with pytest.raises((OSError, ValueError)):
        b.X[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        b.X = np.zeros((N_OBS, N_VARS))
    b.file.close()


@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_set_X_r_plus(tmp_path: Path, kind: str) -> None:
    a = _adata(kind, raw=False)
    a.write_h5ad(tmp_path / "d.h5ad")
    b = annio.read_h5ad(tmp_path / "d.h5ad", backed="r+")
    new = sparse.random(N_OBS, N_VARS, density=0.3, format="csc", random_state=3)
    b.X = new
    assert isinstance(b.X, CSCDataset) and b.isbacked
    np.testing.assert_array_equal(_todense(b.X), new.toarray())
    b.X = b.X[:, :]  # from its own file
    np.testing.assert_array_equal(_todense(b.X), new.toarray())
    b.file.close()
    with h5py.File(tmp_path / "d.h5ad") as f:
        assert set(f.keys()) >= {"X", "obs", "var"} and "__annio_new_X__" not in f
    np.testing.assert_array_equal(annio.read_h5ad(tmp_path / "d.h5ad").X.toarray(), new.toarray())


def test_write_backed_to_new_path(h5ad: Any, tmp_path: Path) -> None:
    path, a, kind = h5ad
    b = annio.read_h5ad(path, backed="r")
    b.obs["extra"] = np.arange(N_OBS)
    out = tmp_path / "out.h5ad"
    b.write_h5ad(out)
    assert b.isbacked and b.filename == path  # still backed by the original
    c = annio.read_h5ad(out)
    np.testing.assert_array_equal(_todense(c.X), _todense(a.X))
    np.testing.assert_array_equal(_todense(c.raw.X), _todense(a.raw.X))
    assert sparse.issparse(c.X) == (kind != "dense")
    assert list(c.obs["extra"]) == list(range(N_OBS))
    b.file.close()


@pytest.mark.parametrize("with_raw", [False, True])
def test_write_backed_view(tmp_path: Path, with_raw: bool) -> None:
    a = _adata("csr", raw=with_raw)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = annio.read_h5ad(tmp_path / "a.h5ad", backed="r")
    b[[5, 2]].write_h5ad(tmp_path / "view.h5ad")  # only its rows are read and written
    c = annio.read_h5ad(tmp_path / "view.h5ad")
    np.testing.assert_array_equal(_todense(c.X), a.X[[5, 2]].toarray())
    if with_raw:
        np.testing.assert_array_equal(_todense(c.raw.X), a.raw.X[[5, 2]].toarray())
    b.file.close()


def test_rewrite_backing_file(tmp_path: Path) -> None:
    """``write_h5ad()`` without a filename replaces the backing file; the object follows."""
    a = _adata("dense", raw=False)
    path = tmp_path / "d.h5ad"
    a.write_h5ad(path)
    b = annio.read_h5ad(path, backed="r+")
    b.obs["new"] = 1
    b.write_h5ad()
    assert "new" in annio.read_h5ad(path).obs
    b.X[0, 0] = 7.0  # goes to the new file, not the replaced one
    b.file.close()
    assert annio.read_h5ad(path).X[0, 0] == 7.0


def test_close_and_reopen(h5ad: Any) -> None:
    path, a, _ = h5ad
    b = annio.read_h5ad(path, backed="r")
    b.file.close()
    assert not b.file.is_open and b.isbacked
    np.testing.assert_array_equal(_todense(b.X), _todense(a.X))  # reopens
    assert b.file.is_open
    b.file.close()
    b.file.open()
    assert b.file.is_open
    b.file.open(path, "r+")
    assert b.file.filemode == "r+"
    b.file.close()


def test_copy(h5ad: Any, tmp_path: Path) -> None:
    path, a, kind = h5ad
    b = annio.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match="pass a filename"):
        b.copy()
    c = b.copy(filename=tmp_path / "copy.h5ad")
    assert c.isbacked and c.filename == tmp_path / "copy.h5ad" and c.file.filemode == "r"
    np.testing.assert_array_equal(_todense(c.X), _todense(a.X))
    np.testing.assert_array_equal(_todense(c.raw.X), _todense(a.raw.X))
    with pytest.raises(ValueError, match="own backing file"):
        b.copy(filename=path)
    c.file.close()
    b.file.close()


def test_view_copy(tmp_path: Path) -> None:
    a = _adata("csr", raw=False)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = annio.read_h5ad(tmp_path / "a.h5ad", backed="r+")
    v = b[[8, 1, 20]].copy(filename=tmp_path / "v.h5ad")
    assert v.isbacked and v.shape == (3, N_VARS) and v.file.filemode == "r+"
    np.testing.assert_array_equal(_todense(v.X), a.X[[8, 1, 20]].toarray())
    assert list(v.obs_names) == ["c8", "c1", "c20"]
    v.file.close()
    b.file.close()


def test_filename_setter(tmp_path: Path) -> None:
    a = _adata("csr")
    first = tmp_path / "first.h5ad"
    a.filename = first  # in memory -> backed, X written dense (anndata)
    assert a.isbacked and a.file.filemode == "r+" and a._X is None
    assert isinstance(a.X, h5py.Dataset)
    assert isinstance(a.raw.X, h5py.Dataset)
    want = _adata("csr").X.toarray()
    np.testing.assert_array_equal(a.X[...], want)
    second = tmp_path / "second.h5ad"
    a.filename = second  # backed -> another file: the file moves
    assert a.filename == second and not first.exists()
    np.testing.assert_array_equal(a.X[...], want)
    a.filename = second  # same file: nothing happens
    a.filename = None  # back to memory
    assert not a.isbacked and not a.file.is_open
    assert isinstance(a.X, np.ndarray) and isinstance(a.raw.X, np.ndarray)
    np.testing.assert_array_equal(a.X, want)
    assert repr(a.file) == "Backing file manager: no file is set."


def test_constructor_hook(tmp_path: Path) -> None:
    a = _adata("csr", raw=False)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = annio.AnnData(obs=a.obs, var=a.var, filename=tmp_path / "a.h5ad", filemode="r")
    assert b.isbacked and isinstance(b.X, CSRDataset) and b.shape == a.shape
    b.file.close()
    with pytest.raises(ValueError, match="filemode"):
        annio.AnnData(obs=a.obs, var=a.var, filename=tmp_path / "a.h5ad", filemode="w")


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backed"):
        annio.read_h5ad(tmp_path / "x.h5ad", backed="w")
    with pytest.raises(FileNotFoundError):
        annio.read_h5ad(tmp_path / "missing.h5ad", backed="r")
    a = _adata("csr", raw=False)
    a.write_h5ad(tmp_path / "a.h5ad")
    with h5py.File(tmp_path / "a.h5ad", "r+") as f:
        f["X"].attrs["shape"] = (N_OBS + 1, N_VARS)
    with pytest.raises(FormatError, match="/X"):
        annio.read_h5ad(tmp_path / "a.h5ad", backed="r")


def test_manager_without_file() -> None:
    m = AnnDataFileManager()
    assert m.filename is None and not m.is_open
    with pytest.raises(ValueError):
        m.open()
    assert repr(m) == "Backing file manager: no file is set."


def test_writer_streams_backed_sparse(tmp_path: Path) -> None:
    """Writing a backed sparse X goes through the streaming sparse writer by class name."""
    a = _adata("csc", raw=False)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = annio.read_h5ad(tmp_path / "a.h5ad", backed="r")
    assert type(b.X).__mro__[1] is backed_mod.BackedSparseDataset
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.write_zarr(tmp_path / "a.zarr")
    np.testing.assert_array_equal(annio.read_zarr(tmp_path / "a.zarr").X.toarray(), a.X.toarray())
    b.file.close()
