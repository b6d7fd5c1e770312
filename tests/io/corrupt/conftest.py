"""A corpus of damaged files, generated per test: each damage class × each backend.

``corrupt_file(damage, backend, target)`` (the fixture) writes a small, valid AnnData with
annio, damages it and returns a :class:`Damaged` telling the tests where the file is and
which element path the error must name. Damage classes:

* ``truncated`` — the h5ad file cut short; for zarr, the target's chunk files cut short;
* ``overwritten`` — a region of the file (h5ad) or of the target's chunks (zarr) replaced
  by garbage bytes;
* ``json_root`` / ``json_child`` / ``json_consolidated`` — zarr metadata that is not valid
  JSON: the root's, the target's (store without consolidated metadata) or the consolidated
  metadata itself;
* ``huge_shape`` — the target declares a shape far larger than the data stored;
* ``bad_chunks`` — zarr metadata declaring zero or negative chunk sizes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import annio

BACKENDS = ["h5ad", "zarr2", "zarr3"]
#: elements damaged: a sparse X (a group with data/indices/indptr) and a dense obsm array
TARGETS = ["/X", "/obsm/X_pca"]
N_OBS, N_VARS = 40, 12


@dataclass
class Damaged:
    path: Path
    backend: str
    damage: str
    target: str
    #: a path the error message must contain ("/" when only the file can be named)
    expected: str

    @property
    def is_h5(self) -> bool:
        return self.backend == "h5ad"


def make_adata() -> annio.AnnData:
    rng = np.random.default_rng(0)
    X = sparse.random(N_OBS, N_VARS, density=0.3, format="csr", random_state=0, dtype=np.float32)
    obs = pd.DataFrame({"n": np.arange(N_OBS), "cat": pd.Categorical(["a", "b"] * (N_OBS // 2))}, index=[f"c{i}" for i in range(N_OBS)])
    var = pd.DataFrame(index=[f"g{i}" for i in range(N_VARS)])
    return annio.AnnData(
        X,
        obs=obs,
        var=var,
        obsm={"X_pca": rng.standard_normal((N_OBS, 6))},
        uns={"a": {"b": np.arange(5)}},
    )


def write_valid(tmp_path: Path, backend: str, adata: annio.AnnData | None = None) -> Path:
    adata = make_adata() if adata is None else adata
    if backend == "h5ad":
        path = tmp_path / "data.h5ad"
        annio.write_h5ad(path, adata)
    else:
        path = tmp_path / "data.zarr"
        annio.write_zarr(path, adata, zarr_format=2 if backend == "zarr2" else 3)
    return path


# ----------------------------------------------------------------------------- zarr helpers
def _meta_file(node_dir: Path, backend: str, kind: str) -> Path:
    """The metadata document of a zarr node: ``zarr.json`` (v3), ``.zarray``/``.zgroup`` (v2)."""
    if backend == "zarr3":
        return node_dir / "zarr.json"
    return node_dir / (".zgroup" if kind == "group" else ".zarray")


def _arrays_below(store: Path, target: str) -> list[Path]:
    """Directories of the zarr arrays at or below ``target``."""
    base = store / target.strip("/")
    return sorted({p.parent for p in base.rglob("*") if p.name in ("zarr.json", ".zarray") and _is_array_meta(p)})


def _is_array_meta(p: Path) -> bool:
    if p.name == ".zarray":
        return True
    return json.loads(p.read_text()).get("node_type") == "array"


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in array_dir.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json")


def drop_consolidated(store: Path, backend: str) -> None:
    """Remove the consolidated metadata so that each node's own document is read."""
    if backend == "zarr2":
        (store / ".zmetadata").unlink()
        return
    root = store / "zarr.json"
    doc = json.loads(root.read_text())
    doc.pop("consolidated_metadata", None)
    root.write_text(json.dumps(doc))


def _edit_array_meta(store: Path, backend: str, array_path: str, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to an array's metadata document and to its consolidated copy."""
    meta = _meta_file(store / array_path.strip("/"), backend, "array")
    doc = json.loads(meta.read_text())
    edit(doc)
    meta.write_text(json.dumps(doc))
    key = array_path.strip("/")
    if backend == "zarr2":
        cons = store / ".zmetadata"
        if cons.exists():
            whole = json.loads(cons.read_text())
            edit(whole["metadata"][f"{key}/.zarray"])
            cons.write_text(json.dumps(whole))
    else:
        root = store / "zarr.json"
        whole = json.loads(root.read_text())
        cm = whole.get("consolidated_metadata")
        if cm:
            edit(cm["metadata"][key])
            root.write_text(json.dumps(whole))


def _main_array(target: str) -> str:
    """The array of ``target`` whose declared shape/chunks are damaged."""
    return "/X/data" if target == "/X" else target


# ----------------------------------------------------------------------------- damages
GARBAGE = bytes(range(256)) * 64


def _truncate_h5(path: Path, target: str) -> str:
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 3])
    return "/"


def _overwrite_h5(path: Path, target: str) -> str:
    """Garbage over the object header of ``target`` (for a group: of its members), so
    HDF5 can no longer tell what they are."""
    with h5py.File(path, "r") as f:
        node = f[target]
        nodes = [node[k] for k in node] if isinstance(node, h5py.Group) else [node]
        addresses = [h5py.h5o.get_info(n.id).addr for n in nodes]
    data = bytearray(path.read_bytes())
    for addr in addresses:
        data[addr : addr + 48] = GARBAGE[:48]
    path.write_bytes(bytes(data))
    return target


def _huge_shape_h5(path: Path, target: str) -> str:
    """Replace ``target`` by an element declaring a shape far beyond the stored bytes."""
    with h5py.File(path, "r+") as f:
        if target == "/X":
            # indptr/indices/data stay as they are; the declared shape is vast
            f["X"].attrs["shape"] = np.array([10**14, N_VARS], dtype=np.int64)
            return target
        attrs = dict(f[target].attrs)
        del f[target]
        # contiguous, never written: HDF5 stores no bytes for it at all
        d = f.create_dataset(target, shape=(N_OBS, 10**13), dtype="f8")
        d.attrs.update(attrs)
    return target


def _truncate_zarr(path: Path, backend: str, target: str) -> str:
    for array_dir in _arrays_below(path, target):
        for chunk in _chunk_files(array_dir):
            chunk.write_bytes(chunk.read_bytes()[: max(1, chunk.stat().st_size // 2)])
    return target


def _overwrite_zarr(path: Path, backend: str, target: str) -> str:
    for array_dir in _arrays_below(path, target):
        for chunk in _chunk_files(array_dir):
            size = chunk.stat().st_size
            chunk.write_bytes((GARBAGE * (size // len(GARBAGE) + 1))[:size])
    return target


def _json_root(path: Path, backend: str, target: str) -> str:
    meta = path / ("zarr.json" if backend == "zarr3" else ".zattrs")
    meta.write_text('{"encoding-type": "anndata", "encoding-version": ')
    if backend == "zarr2":  # the consolidated copy would hide the broken .zattrs
        drop_consolidated(path, backend)
    return "/"


def _json_child(path: Path, backend: str, target: str) -> str:
    drop_consolidated(path, backend)
    array = _main_array(target)
    _meta_file(path / array.strip("/"), backend, "array").write_text("{not json")
    return array


def _json_consolidated(path: Path, backend: str, target: str) -> str:
    if backend == "zarr2":
        (path / ".zmetadata").write_text('{"metadata": {"X/.zattrs": ')
        return "/"
    # v3: the consolidated metadata lives inside the root zarr.json; damage that document
    root = path / "zarr.json"
    root.write_text(root.read_text()[:-40])
    return "/"


def _huge_shape_zarr(path: Path, backend: str, target: str) -> str:
    if target == "/X":
        if backend == "zarr2":
            attrs = path / "X" / ".zattrs"
            doc = json.loads(attrs.read_text())
            doc["shape"] = [10**14, N_VARS]
            attrs.write_text(json.dumps(doc))
            drop_consolidated(path, backend)
        else:
            drop_consolidated(path, backend)
            meta = path / "X" / "zarr.json"
            doc = json.loads(meta.read_text())
            doc["attributes"]["shape"] = [10**14, N_VARS]
            meta.write_text(json.dumps(doc))
        return target

    def edit_array(doc: dict) -> None:
        doc["shape"] = [N_OBS, 10**13]
        if backend == "zarr2":
            doc["chunks"] = [N_OBS, 10**13]
        else:
            doc["chunk_grid"]["configuration"]["chunk_shape"] = [N_OBS, 10**13]
            for codec in doc.get("codecs", []):
                if codec.get("name") == "sharding_indexed":
                    codec["configuration"]["chunk_shape"] = [N_OBS, 10**13]

    _edit_array_meta(path, backend, target, edit_array)
    return target


def _bad_chunks_zarr(path: Path, backend: str, target: str, value: int) -> str:
    array = _main_array(target)

    def edit(doc: dict) -> None:
        if backend == "zarr2":
            doc["chunks"] = [value] * len(doc["shape"])
        else:
            doc["chunk_grid"]["configuration"]["chunk_shape"] = [value] * len(doc["shape"])

    _edit_array_meta(path, backend, array, edit)
    return array


DAMAGES = ["truncated", "overwritten", "json_root", "json_child", "json_consolidated", "huge_shape", "zero_chunks", "negative_chunks"]
_ZARR_ONLY = {"json_root", "json_child", "json_consolidated", "zero_chunks", "negative_chunks"}


def applicable(damage: str, backend: str) -> bool:
    return not (damage in _ZARR_ONLY and backend == "h5ad")


def make_damaged(tmp_path: Path, damage: str, backend: str, target: str) -> Damaged:
    path = write_valid(tmp_path, backend)
    if backend == "h5ad":
        fn = {"truncated": _truncate_h5, "overwritten": _overwrite_h5, "huge_shape": _huge_shape_h5}[damage]
        expected = fn(path, target)
    elif damage in ("zero_chunks", "negative_chunks"):
        expected = _bad_chunks_zarr(path, backend, target, 0 if damage == "zero_chunks" else -3)
    else:
        fn = {
            "truncated": _truncate_zarr,
            "overwritten": _overwrite_zarr,
            "json_root": _json_root,
            "json_child": _json_child,
            "json_consolidated": _json_consolidated,
            "huge_shape": _huge_shape_zarr,
        }[damage]
        expected = fn(path, backend, target)
    return Damaged(path, backend, damage, target, expected)


@pytest.fixture
def corrupt_file(tmp_path: Path) -> Callable[[str, str, str], Damaged]:
    """``corrupt_file(damage, backend, target)``: a freshly written, then damaged, file."""
    counter = iter(range(10**6))

    def make(damage: str, backend: str, target: str) -> Damaged:
        where = tmp_path / f"case{next(counter)}"
        where.mkdir()
        return make_damaged(where, damage, backend, target)

    return make

