"""Writes never destroy old data; corrupt or hostile files give FormatError, never code execution."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from annio.errors import FormatError, UnknownEncodingError
from annio.io import read_h5ad, read_zarr, write_h5ad, write_zarr


def _fingerprint(path: Path) -> dict[str, str]:
    """Hash of every file below ``path`` (or of ``path`` itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _poisoned(adata):
    """A copy of ``adata`` with an unwritable layer (an object array of dicts), which the
    writer reaches after X."""
    bad = adata.copy()
    values = np.full(adata.shape, None, dtype=object)
    for idx in np.ndindex(values.shape):
        values[idx] = {"not": "writable"}
    bad.layers["zz_unwritable"] = values
    return bad


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3", "zip"])
def test_failed_write_keeps_old_data(fmt, tmp_path, annio_adata):
    name = {"h5ad": "a.h5ad", "zip": "a.zarr.zip"}.get(fmt, "a.zarr")
    path = tmp_path / name

    def write(adata):
        if fmt == "h5ad":
            write_h5ad(path, adata)
        else:
            write_zarr(path, adata, zarr_format=2 if fmt == "zarr2" else 3)

    write(annio_adata)
    before = _fingerprint(path)
    with pytest.raises(Exception) as info:
        write(_poisoned(annio_adata))
    assert "zz_unwritable" in str(info.value) + "".join(getattr(info.value, "__notes__", []))
    assert _fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary siblings left


def test_failed_first_write_leaves_nothing(tmp_path, annio_adata):
    with pytest.raises(Exception):
        write_h5ad(tmp_path / "new.h5ad", _poisoned(annio_adata))
    with pytest.raises(Exception):
        write_zarr(tmp_path / "new.zarr", _poisoned(annio_adata))
    assert list(tmp_path.iterdir()) == []


def test_truncated_h5ad(tmp_path, annio_adata):
    path = tmp_path / "t.h5ad"
    write_h5ad(path, annio_adata)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        read_h5ad(path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "garbage.h5ad"
    path.write_bytes(b"this is not an hdf5 file" * 10)
    with pytest.raises(FormatError):
        read_h5ad(path)


def _h5(tmp_path, annio_adata, edit) -> Path:
    path = tmp_path / "e.h5ad"
    write_h5ad(path, annio_adata)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _expect_format_error(path: Path, where: str, cls=FormatError):
    with pytest.raises(cls) as info:
        read_h5ad(path)
    text = str(info.value) + " ".join(getattr(info.value, "__notes__", []))
    assert where in text, text
    return info.value


def test_missing_sparse_child(tmp_path, annio_adata):
    path = _h5(tmp_path, annio_adata, lambda f: f.__delitem__("layers/counts/indptr"))
    _expect_format_error(path, "/layers/counts/indptr")


def test_missing_shape_attribute(tmp_path, annio_adata):
    path = _h5(tmp_path, annio_adata, lambda f: f["layers/counts"].attrs.__delitem__("shape"))
    _expect_format_error(path, "/layers/counts")


def test_missing_index_attribute(tmp_path, annio_adata):
    path = _h5(tmp_path, annio_adata, lambda f: f["obs"].attrs.__delitem__("_index"))
    _expect_format_error(path, "/obs")


def _set_indptr(values):
    def edit(f):
        del f["layers/counts/indptr"]
        f["layers/counts/indptr"] = np.asarray(values, dtype=np.int64)

    return edit


def test_indptr_not_monotone(tmp_path, annio_adata):
    n_obs = annio_adata.n_obs
    nnz = annio_adata.layers["counts"].nnz
    bad = np.linspace(0, nnz, n_obs + 1).astype(np.int64)
    bad[n_obs // 2] = bad[n_obs // 2 + 1] + 1
    path = _h5(tmp_path, annio_adata, _set_indptr(bad))
    _expect_format_error(path, "/layers/counts")


def test_indptr_out_of_range(tmp_path, annio_adata):
    n_obs = annio_adata.n_obs
    nnz = annio_adata.layers["counts"].nnz
    bad = np.linspace(0, nnz + 1000, n_obs + 1).astype(np.int64)
    path = _h5(tmp_path, annio_adata, _set_indptr(bad))
    _expect_format_error(path, "/layers/counts")


@pytest.mark.parametrize("delta", [(0, -10), (5, 0)], ids=["indices-beyond-columns", "indptr-too-short"])
def test_sparse_shape_disagrees_with_data(tmp_path, annio_adata, delta):
    def edit(f):
        f["layers/counts"].attrs["shape"] = np.array([annio_adata.n_obs + delta[0], annio_adata.n_vars + delta[1]])

    _expect_format_error(_h5(tmp_path, annio_adata, edit), "/layers/counts")


def test_element_shape_disagrees_with_object(tmp_path, annio_adata):
    def edit(f):
        f["layers/counts"].attrs["shape"] = np.array([annio_adata.n_obs, annio_adata.n_vars + 100])

    err = _expect_format_error(_h5(tmp_path, annio_adata, edit), "counts")
    assert "layers" in str(err)


def test_x_rows_disagree_with_obs(tmp_path, annio_adata):
    def edit(f):
        del f["X"]
        f["X"] = np.zeros((annio_adata.n_obs - 1, annio_adata.n_vars), dtype=np.float32)
        f["X"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})

    with pytest.raises(FormatError):
        read_h5ad(_h5(tmp_path, annio_adata, edit))


def test_unknown_encoding(tmp_path, annio_adata):
    def edit(f):
        f["uns/nested"].attrs["encoding-type"] = "future-thing"
        f["uns/nested"].attrs["encoding-version"] = "9.9.9"

    err = _expect_format_error(_h5(tmp_path, annio_adata, edit), "/uns/nested", UnknownEncodingError)
    assert "future-thing" in str(err) and "9.9.9" in str(err)


class _Bomb:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_nothing_in_a_file_is_executed(tmp_path, annio_adata):
    marker = tmp_path / "executed"
    bomb = _Bomb()
    bomb.marker = marker
    payload = pickle.dumps(bomb)
    assert not marker.exists()
    # h5ad: pickled bytes as an opaque dataset and as an attribute
    path = tmp_path / "p.h5ad"
    write_h5ad(path, annio_adata)
    with h5py.File(path, "r+") as f:
        f["uns"].create_dataset("evil", data=np.void(payload))
        f["uns"].attrs["evil"] = np.void(payload)
    try:
        read_h5ad(path)
    except Exception:  # refusing is fine; executing is not
        pass
    # zarr v2: an object array whose codec is pickle
    store = tmp_path / "p.zarr"
    write_zarr(store, annio_adata, zarr_format=2, consolidate_metadata=False)
    evil = store / "uns" / "evil"
    evil.mkdir()
    (evil / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "|O", "compressor": None,
        "fill_value": 0, "filters": [{"id": "pickle", "protocol": 5}], "order": "C",
    }))
    from numcodecs import Pickle

    (evil / "0").write_bytes(Pickle().encode(np.array([bomb], dtype=object)))
    try:
        read_zarr(store)
    except Exception:
        pass
    assert not marker.exists(), "a pickled object in a file was executed"
