"""Every damage class × backend × entry point ends in a FormatError naming the element."""

from __future__ import annotations

import warnings

import h5py
import pytest
import zarr

import annio
from annio.cli.main import main as cli_main
from annio.errors import FormatError
from annio.experimental import read_lazy
from annio.io import read_elem, sparse_dataset
from conftest import BACKENDS, DAMAGES, TARGETS, Damaged, applicable

pytestmark = pytest.mark.timeout(60)


def _open_root(case: Damaged):
    if case.is_h5:
        return h5py.File(case.path, "r")
    # each element's own metadata (damaged consolidated metadata is zarr's to refuse)
    return zarr.open_group(case.path, mode="r", use_consolidated=False)


def _close(root) -> None:
    if isinstance(root, h5py.File):
        root.close()


def ep_read(case: Damaged) -> None:
    if case.is_h5:
        annio.read_h5ad(case.path)
    else:
        annio.read_zarr(case.path)


def ep_read_elem(case: Damaged) -> None:
    root = _open_root(case)
    try:
        read_elem(root)
    finally:
        _close(root)


def ep_read_lazy(case: Damaged) -> None:
    adata = read_lazy(case.path)
    try:
        adata.to_memory()
    finally:
        adata.file.close()


def ep_backed(case: Damaged) -> None:
    adata = annio.read_h5ad(case.path, backed="r")
    try:
        X = adata.X
        X[...] if not hasattr(X, "to_memory") else X.to_memory()
        adata.to_memory()
    finally:
        adata.file.close()


def ep_sparse_dataset(case: Damaged) -> None:
    root = _open_root(case)
    try:
        sparse_dataset(root["X"]).to_memory()
    finally:
        _close(root)


ENTRY_POINTS = {"read": ep_read, "read_elem": ep_read_elem, "read_lazy": ep_read_lazy, "backed": ep_backed, "sparse_dataset": ep_sparse_dataset}

CASES = [
    (damage, backend, target)
    for damage in DAMAGES
    for backend in BACKENDS
    for target in TARGETS
    if applicable(damage, backend)
]


def _applies(entry: str, damage: str, backend: str, target: str) -> bool:
    if entry == "backed" and backend != "h5ad":
        return False  # backed mode is h5ad only
    if entry in ("read_elem", "sparse_dataset") and (damage, backend) in {("truncated", "h5ad")} | {
        (d, b) for d in ("json_root", "json_consolidated") for b in ("zarr2", "zarr3")
    }:
        return False  # the caller's own h5py.File() / zarr.open_group() refuses the file
    if entry == "sparse_dataset" and target != "/X":
        return False  # it never looks at obsm
    return True


ENTRY_CASES = [(entry, *case) for entry in ENTRY_POINTS for case in CASES if _applies(entry, *case)]


@pytest.mark.parametrize(("entry", "damage", "backend", "target"), ENTRY_CASES, ids=["-".join(c) for c in ENTRY_CASES])
def test_damaged_file_raises_format_error(corrupt_file, entry, damage, backend, target):
    case = corrupt_file(damage, backend, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FormatError) as info:
            ENTRY_POINTS[entry](case)
    assert case.expected in str(info.value), f"the error does not name {case.expected}: {info.value}"


@pytest.mark.parametrize(("damage", "backend", "target"), CASES, ids=["-".join(c) for c in CASES])
def test_cli_validate_reports_damage(corrupt_file, capsys, damage, backend, target):
    case = corrupt_file(damage, backend, target)
    assert cli_main(["validate", str(case.path)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and case.expected in out, out
