"""Deep ``uns`` trees read on every entry point; HDF5 links forming a cycle are a FormatError."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
import zarr

import annio
from annio.cli.main import main as cli_main
from annio.errors import FormatError
from annio.experimental import read_dispatched, read_lazy
from annio.io import read_elem
from conftest import BACKENDS, drop_consolidated, write_valid

pytestmark = pytest.mark.timeout(120)
DEPTH = 300
DICT = {"encoding-type": "dict", "encoding-version": "0.1.0"}
ARRAY = {"encoding-type": "array", "encoding-version": "0.2.0"}


def _deep_tree(path, backend: str, depth: int) -> None:
    """``uns/deep/l0/l1/.../l{depth-1}`` holding an array at the bottom, written level by
    level with h5py, or as zarr metadata documents (independent of annio's writer)."""
    if backend == "h5ad":
        with h5py.File(path, "r+") as f:
            group = f["uns"].create_group("deep")
            group.attrs.update(DICT)
            for i in range(depth):
                group = group.create_group(f"l{i}")
                group.attrs.update(DICT)
            group.create_dataset("leaf", data=np.arange(3)).attrs.update(ARRAY)
        return
    drop_consolidated(path, backend)
    node = path / "uns" / "deep"
    for i in range(depth + 1):
        node.mkdir()
        if backend == "zarr3":
            (node / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": DICT}))
        else:
            (node / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
            (node / ".zattrs").write_text(json.dumps(DICT))
        if i < depth:
            node = node / f"l{i}"
    bottom = zarr.open_group(zarr.storage.LocalStore(node), mode="r+")
    bottom.create_array("leaf", data=np.arange(3), attributes=ARRAY)


def _open(path, mode):
    if str(path).endswith(".h5ad"):
        return h5py.File(path, mode)
    return zarr.open_group(path, mode=mode, use_consolidated=False)


def _bottom(uns, depth):
    node = uns["deep"]
    for i in range(depth):
        node = node[f"l{i}"]
    return node


@pytest.fixture(params=BACKENDS)
def deep_file(request, tmp_path):
    path = write_valid(tmp_path, request.param)
    _deep_tree(path, request.param, DEPTH)
    return path


def _read_all_ways(path):
    h5 = str(path).endswith(".h5ad")
    out = [annio.read_h5ad(path) if h5 else annio.read_zarr(path)]
    lazy = read_lazy(path)
    out.append(lazy.to_memory())
    lazy.file.close()
    if h5:
        backed = annio.read_h5ad(path, backed="r")
        out.append(backed)
    root = _open(path, "r")
    out.append(read_elem(root))
    if isinstance(root, h5py.File):
        root.close()
    return out


def test_deep_uns_reads_everywhere(deep_file, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for adata in _read_all_ways(deep_file):
            np.testing.assert_array_equal(_bottom(adata.uns, DEPTH)["leaf"], np.arange(3))
            if adata.isbacked:
                adata.file.close()
    assert cli_main(["validate", str(deep_file)]) == 0
    assert "OK" in capsys.readouterr().out


def test_deep_uns_reads_through_a_dispatch_callback(deep_file):
    """A user callback recurses at every level: a 300-deep uns still reads (anndata: RecursionError)."""
    import sys

    seen = []

    def callback(read_func, elem_name, elem, iospec):
        seen.append(elem_name)
        return read_func(elem)

    limit = sys.getrecursionlimit()
    root = _open(deep_file, "r")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            uns = read_dispatched(root["uns"], callback)
    finally:
        if isinstance(root, h5py.File):
            root.close()
    np.testing.assert_array_equal(_bottom(uns, DEPTH)["leaf"], np.arange(3))
    assert any(name.endswith(f"/l{DEPTH - 1}/leaf") for name in seen)  # every level went through it
    assert sys.getrecursionlimit() == limit  # restored after the walk


def test_absurdly_deep_tree_through_a_callback_is_a_format_error(tmp_path, monkeypatch):
    """Beyond the stack's hard cap the reader says so (with the path) instead of crashing.
    The cap is lowered so a small tree exceeds it (h5py builds deep trees in quadratic time)."""
    from annio.io._encodings import depth

    monkeypatch.setattr(depth, "MAX_RECURSION_LIMIT", 3_000)
    path = tmp_path / "very-deep.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("uns")
        group.attrs.update(DICT)
        for _ in range(1_000):
            group = group.create_group("a")
            group.attrs.update(DICT)
    with h5py.File(path, "r") as f:
        with pytest.raises(FormatError, match="nested too deeply|recursion depth") as info:
            read_dispatched(f["uns"], lambda read_func, name, elem, iospec: read_func(elem))
    assert str(info.value).startswith("/uns/a/a/a")


def test_deep_uns_round_trips(tmp_path):
    """annio's own writer and reader agree on a deep tree."""
    tree: dict = {"leaf": np.arange(2)}
    for i in range(DEPTH):
        tree = {f"l{i}": tree}
    adata = annio.AnnData(np.zeros((2, 2)), uns={"deep": tree})
    for name in ("a.h5ad",):  # zarr-python creates deep groups slowly (parent checks per level)
        path = tmp_path / name
        (adata.write_h5ad if name.endswith("h5ad") else adata.write_zarr)(path)
        back = annio.read_h5ad(path) if name.endswith("h5ad") else annio.read_zarr(path)
        node = back.uns["deep"]
        for i in reversed(range(DEPTH)):
            node = node[f"l{i}"]
        np.testing.assert_array_equal(node["leaf"], np.arange(2))


@pytest.fixture
def cyclic_file(tmp_path):
    path = write_valid(tmp_path, "h5ad")
    with h5py.File(path, "r+") as f:
        f["uns/a/loop"] = f["uns"]  # a hard link back to an ancestor
    return path


def _entry_points(path):
    yield "read", lambda: annio.read_h5ad(path)
    yield "backed", lambda: annio.read_h5ad(path, backed="r")

    def lazy():
        annio.experimental.read_lazy(path).to_memory()

    yield "read_lazy", lazy

    def elem():
        with h5py.File(path, "r") as f:
            read_elem(f)

    yield "read_elem", elem


def test_link_cycle_is_format_error(cyclic_file, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, call in _entry_points(cyclic_file):
            with pytest.raises(FormatError, match="cycle") as info:
                call()
            assert "/uns/a/loop" in str(info.value), (name, info.value)
    assert cli_main(["validate", str(cyclic_file)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "/uns/a/loop" in out


def test_shared_group_is_not_a_cycle(tmp_path):
    """Two hard links to one group (a DAG, not a cycle) read as two equal values."""
    path = write_valid(tmp_path, "h5ad")
    with h5py.File(path, "r+") as f:
        f["uns/again"] = f["uns/a"]
    uns = annio.read_h5ad(path).uns
    np.testing.assert_array_equal(uns["again"]["b"], uns["a"]["b"])
