"""Files that hold AnnData objects without being one (MuData ``.h5mu``), and AnnData
objects stored in a group of a file."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

import annio
from annio.errors import FormatError
from annio.experimental import read_lazy
from annio.io import read_elem, write_elem
from annio.testing import assert_equal


def _modality(n_vars: int) -> annio.AnnData:
    return annio.AnnData(
        np.arange(4 * n_vars, dtype=np.float32).reshape(4, n_vars),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(4)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_vars)]),
    )


def _write_mudata(root) -> dict[str, annio.AnnData]:
    """A MuData-shaped container as mudata writes it: global obs/var, modalities in mod/."""
    mods = {"rna": _modality(3), "prot": _modality(2)}
    write_elem(root, "obs", pd.DataFrame(index=[f"c{i}" for i in range(4)]))
    write_elem(root, "var", pd.DataFrame(index=[f"g{i}" for i in range(5)]))
    for name, adata in mods.items():
        write_elem(root, f"mod/{name}", adata)  # intermediate group created
    root.attrs.update({"encoding-type": "MuData", "encoding-version": "0.1.0"})
    return mods


@pytest.fixture(params=["h5mu", "zarr"])
def mudata_file(request, tmp_path):
    if request.param == "h5mu":
        path = tmp_path / "data.h5mu"
        with h5py.File(path, "w") as f:
            mods = _write_mudata(f)
    else:
        path = tmp_path / "data.zarr"
        mods = _write_mudata(zarr.open_group(path, mode="w"))
    return path, mods


def _open(path, mode="r"):
    return h5py.File(path, mode) if path.suffix == ".h5mu" else zarr.open_group(path, mode=mode)


def test_whole_file_readers_refuse_mudata(mudata_file):
    path, _ = mudata_file
    readers = [lambda: read_lazy(path)]
    if path.suffix == ".h5mu":
        readers += [lambda: annio.read_h5ad(path), lambda: annio.read_h5ad(path, backed="r")]
    else:
        readers += [lambda: annio.read_zarr(path)]
    for read in readers:
        with pytest.raises(FormatError, match="MuData") as info:
            read()
        message = str(info.value)
        assert "rna" in message and "prot" in message and "read_elem(f['/mod/" in message


def test_modalities_read_from_groups(mudata_file):
    path, mods = mudata_file
    root = _open(path)
    try:
        for name, expected in mods.items():
            group = root[f"mod/{name}"]
            assert_equal(read_elem(group), expected)
            assert_equal(annio.read_h5ad(group) if path.suffix == ".h5mu" else annio.read_zarr(group), expected)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lazy = read_lazy(group)
            assert_equal(lazy.to_memory(), expected)
    finally:
        if isinstance(root, h5py.File):
            root.close()


def test_backed_mode_of_a_group_says_what_it_supports(mudata_file):
    path, _ = mudata_file
    root = _open(path)
    try:
        with pytest.raises(TypeError, match="read_lazy\\(group\\)"):
            annio.read_h5ad(root["mod/rna"], backed="r")
    finally:
        if isinstance(root, h5py.File):
            root.close()


def _anndata_version() -> tuple[int, int]:
    from importlib.metadata import version

    major, minor = version("anndata").split(".")[:2]
    return int(major), int(minor)


@pytest.mark.parametrize("kind", ["h5", "zarr2", "zarr3"])
def test_write_elem_nested_key_creates_groups_like_anndata(tmp_path, kind):
    anndata = pytest.importorskip("anndata")
    value = np.arange(6)
    ours_path, theirs_path = tmp_path / f"o.{kind}", tmp_path / f"t.{kind}"
    if kind == "h5":
        ours, theirs = h5py.File(ours_path, "w"), h5py.File(theirs_path, "w")
    else:
        fmt = 2 if kind == "zarr2" else 3
        ours, theirs = (zarr.open_group(p, mode="w", zarr_format=fmt) for p in (ours_path, theirs_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # a path key is not a '/' inside a name
        write_elem(ours, "a/b/c", value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            anndata.io.write_elem(theirs, "a/b/c", value)
            roots = (ours, theirs)
        except ValueError as err:
            # anndata 0.13 refuses path keys ("Forward slashes are not allowed in keys");
            # annio keeps 0.12's behaviour, which mudata's writers rely on (README).
            assert _anndata_version() >= (0, 13), err
            assert "Forward slashes" in str(err)
            roots = (ours,)
    for root in roots:
        assert dict(root["a"].attrs) == {} and dict(root["a/b"].attrs) == {}
        np.testing.assert_array_equal(read_elem(root["a/b/c"]), value)
    with pytest.raises(ValueError, match="'..'"):
        write_elem(ours, "a/../x", value)
    if kind == "h5":
        ours.close()
        theirs.close()


def test_slash_inside_a_written_mapping_key_still_refused(tmp_path):
    """Names inside written mappings keep anndata 0.13's rule (settings)."""
    with h5py.File(tmp_path / "x.h5", "w") as f, annio.settings.override(disallow_forward_slash_in_h5ad=True):
        with pytest.raises(ValueError, match="contains '/'"):
            write_elem(f, "uns", {"a/b": 1})
