"""Backed mode and ``sparse_dataset``: annio against the real anndata on the same files."""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from packaging.version import Version
from scipy import sparse

import annio
from annio.io._backed.file_backing import sparse_dataset

ad = pytest.importorskip("anndata")

pytestmark = pytest.mark.interop

ANNDATA_0_12 = Version(version("anndata")) < Version("0.13")

N_OBS, N_VARS = 30, 11

_INDEXERS: list[Any] = [
    4, -2, slice(3, 17), slice(20, 2, -3), [9, 1, 4], np.array([7, 7, 2, 29]), np.arange(N_OBS) % 4 == 0,
    (slice(None), [3, 1]), ([5, 2], [8, 0]), (slice(2, 9), 4), (3, 5), Ellipsis, np.array([], dtype=int),
]


def _anndata_object(fmt: str) -> Any:
    rng = np.random.default_rng(1)
    dense = rng.random((N_OBS, N_VARS)).astype(np.float32)
    dense[dense < 0.5] = 0
    X = sparse.csr_matrix(dense) if fmt == "csr" else sparse.csc_matrix(dense) if fmt == "csc" else dense
    a = ad.AnnData(X, obs=pd.DataFrame({"g": list("ab") * (N_OBS // 2)}, index=[f"c{i}" for i in range(N_OBS)]))
    a.raw = a.copy()
    return a


@pytest.fixture(params=["csr", "csc"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path, Path]:
    a = _anndata_object(request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_h5ad(tmp_path / "a.h5ad")
        a.write_zarr(tmp_path / "a.zarr")
    return request.param, tmp_path / "a.h5ad", tmp_path / "a.zarr"


def _positive(index: Any, shape: tuple[int, int]) -> Any:
    """``index`` with negative integer positions replaced by the equivalent positive ones."""
    parts = index if isinstance(index, tuple) else (index,)
    fixed = tuple(p % n if isinstance(p, (int, np.integer)) and p < 0 else p for p, n in zip(parts, shape, strict=False))
    return fixed if isinstance(index, tuple) else fixed[0]


def _anndata_getitem(ds: Any, index: Any) -> Any:
    try:
        return ds[index]
    except TypeError:
        # anndata 0.13 crashes on a negative integer along the compressed axis combined with a
        # slice (`slice(*indptr[-2:0])`); 0.12 handled it. Ask for the same position counted from 0.
        if ANNDATA_0_12 or _positive(index, ds.shape) == index:
            raise
        return ds[_positive(index, ds.shape)]


def test_sparse_dataset_indexing_matches(files: Any) -> None:
    fmt, h5_path, zarr_path = files
    with h5py.File(h5_path, "r") as f:
        g = zarr.open_group(zarr_path, mode="r")
        for group in (f["X"], g["X"]):
            ours, theirs = sparse_dataset(group), ad.io.sparse_dataset(group)
            assert ours.format == theirs.format and ours.shape == theirs.shape and ours.dtype == theirs.dtype
            assert ours.backend == theirs.backend
            assert repr(ours) == repr(theirs)
            for index in _INDEXERS:
                a, b = ours[index], _anndata_getitem(theirs, index)
                if np.ndim(b) == 0:
                    assert a == b and type(a) is type(b), index
                    continue
                assert type(a) is type(b), (index, type(a), type(b))
                assert a.shape == b.shape, index
                np.testing.assert_array_equal(a.toarray(), b.toarray(), err_msg=repr(index))
            np.testing.assert_array_equal(ours.to_memory().toarray(), theirs.to_memory().toarray())


def test_append_results_read_by_the_other(tmp_path: Path) -> None:
    m = sparse.random(N_OBS, N_VARS, density=0.3, format="csr", random_state=0, dtype=np.float32)
    extra = sparse.random(6, N_VARS, density=0.3, format="csr", random_state=1, dtype=np.float32)
    want = sparse.vstack([m, extra]).toarray()
    for appender, reader in ((sparse_dataset, ad.io.sparse_dataset), (ad.io.sparse_dataset, sparse_dataset)):
        path = tmp_path / f"{appender.__module__}.h5"
        with h5py.File(path, "w") as f:
            ad.io.write_elem(f, "X", m)
            appender(f["X"]).append(extra)
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(reader(f["X"]).to_memory().toarray(), want)
            assert tuple(f["X"].attrs["shape"]) == want.shape


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_backed_objects_agree(tmp_path: Path, fmt: str) -> None:
    a = _anndata_object(fmt)
    path = tmp_path / "a.h5ad"
    a.write_h5ad(path)
    ours, theirs = annio.read_h5ad(path, backed="r"), ad.read_h5ad(path, backed="r")
    assert ours.isbacked == theirs.isbacked is True
    assert ours.filename == theirs.filename
    assert ours.file.is_open == theirs.file.is_open is True
    assert repr(ours.file) == repr(theirs.file)
    assert type(ours.X).__name__.lstrip("_") == type(theirs.X).__name__.lstrip("_")
    rows = [12, 3, 3, 25]
    for idx in (rows, slice(4, 20, 3), np.arange(N_OBS) % 3 == 0):
        v_ours, v_theirs = ours[idx], theirs[idx]
        x_ours, x_theirs = v_ours.X, v_theirs.X
        assert sparse.issparse(x_ours) == sparse.issparse(x_theirs)
        np.testing.assert_array_equal(np.asarray(x_ours.toarray() if sparse.issparse(x_ours) else x_ours),
                                      np.asarray(x_theirs.toarray() if sparse.issparse(x_theirs) else x_theirs))
    with pytest.raises(ValueError) as e_ours:
        ours.copy()
    with pytest.raises(ValueError) as e_theirs:
        theirs.copy()
    assert str(e_ours.value) == str(e_theirs.value)
    m_ours, m_theirs = ours.to_memory(), theirs.to_memory()
    assert type(m_ours.X) is type(m_theirs.X)
    ours.file.close()
    theirs.file.close()
    assert ours.file.is_open == theirs.file.is_open is False


def test_anndata_reads_what_backed_annio_wrote(tmp_path: Path) -> None:
    a = _anndata_object("csr")
    a.write_h5ad(tmp_path / "a.h5ad")
    b = annio.read_h5ad(tmp_path / "a.h5ad", backed="r")
    c = b.copy(filename=tmp_path / "copy.h5ad")
    c.file.close()
    theirs = ad.read_h5ad(tmp_path / "copy.h5ad", backed="r")
    np.testing.assert_array_equal(theirs.X.to_memory().toarray(), a.X.toarray())
    np.testing.assert_array_equal(theirs.raw.X.to_memory().toarray(), a.raw.X.toarray())
    theirs.file.close()
    b.file.close()


def test_r_plus_dense_edit_seen_by_anndata(tmp_path: Path) -> None:
    a = _anndata_object("dense")
    a.write_h5ad(tmp_path / "d.h5ad")
    ours = annio.read_h5ad(tmp_path / "d.h5ad", backed="r+")
    ours.X[2, 3] = 99.0
    ours.file.close()
    assert ad.read_h5ad(tmp_path / "d.h5ad").X[2, 3] == 99.0
