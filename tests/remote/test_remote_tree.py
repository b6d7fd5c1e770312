"""A remote consolidated zarr v3 store is answered from its consolidated metadata (the
adapter's tree nodes, as for local stores): small arrays fetched ahead are decoded from the
prefetched bytes, anything not fetched ahead goes through zarr-python — same results as a
local read, no extra requests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import annio
from annio.experimental import read_lazy
from annio.io._storage import adapter, zarr_tree
from annio.io._storage.remote import zarr_store_from_url
from annio.io._storage.stores import open_zarr_group
from annio.testing import assert_equal, gen_adata

pytestmark = [pytest.mark.remote, pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part:UserWarning")]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, http_server: Any) -> dict[str, Path]:
    adata = gen_adata((60, 25), X_type="csr", seed=21)
    adata.uns["empty_vector"] = np.zeros(0, dtype=np.float32)
    adata.uns["text"] = np.array(["a", "bb", "ccc"], dtype=object)
    local = tmp_path_factory.mktemp("remote-tree")
    out = {}
    for name, fmt in {"v3.zarr": 3, "v2.zarr": 2}.items():
        annio.write_zarr(local / name, adata, zarr_format=fmt)
        shutil.copytree(local / name, http_server.root / "remote-tree" / name)
        out[name] = local / name
    return out


def test_remote_v3_root_is_a_tree_and_reads_equal_local(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    proxy = latency_proxy(http_server.base_url, rtt=0.0)
    url = f"{proxy.url}/remote-tree/v3.zarr"
    group, _ = open_zarr_group(zarr_store_from_url(url))
    assert isinstance(adapter.wrap(group), zarr_tree.TreeGroup)
    proxy.reset()
    got = annio.read_zarr(url)
    paths = [r.path for r in proxy.requests]
    assert_equal(got, annio.read_zarr(published["v3.zarr"]))
    # the root document, then every chunk object once: no per-element metadata request
    metadata = [p for p in paths if p.endswith("zarr.json")]
    assert metadata == ["/remote-tree/v3.zarr/zarr.json"], metadata
    assert len(paths) == len(set(paths)), sorted(paths)


def test_remote_tree_reads_what_was_not_fetched_ahead_through_zarr(published: dict[str, Path], http_server: Any) -> None:
    url = http_server.url("remote-tree/v3.zarr")
    root = adapter.wrap(open_zarr_group(zarr_store_from_url(url))[0])
    assert isinstance(root, zarr_tree.TreeGroup)
    local = adapter.wrap(open_zarr_group(zarr.storage.LocalStore(published["v3.zarr"], read_only=True))[0])
    for name in ("text", "empty_vector"):
        node = root["uns"][name]
        assert isinstance(node, zarr_tree.TreeArray)
        np.testing.assert_array_equal(node.read(), local["uns"][name].read())  # nothing prefetched: a request
    lazy = read_lazy(url)
    assert_equal(lazy.to_memory(), annio.read_zarr(published["v3.zarr"]))


def test_remote_v2_root_keeps_zarr_python(published: dict[str, Path], http_server: Any) -> None:
    group, _ = open_zarr_group(zarr_store_from_url(http_server.url("remote-tree/v2.zarr")))
    assert not isinstance(adapter.wrap(group), zarr_tree.TreeGroup)
    assert_equal(annio.read_zarr(http_server.url("remote-tree/v2.zarr")), annio.read_zarr(published["v2.zarr"]))


def test_remote_tree_arrays_of_several_chunks_equal_zarr_pythons(http_server: Any) -> None:
    # several chunks (one never written: missing from the store), several shards: the
    # remote tree must not look for the chunk objects on the local disk
    root = http_server.root / "remote-tree-chunks.zarr"
    g = zarr.open_group(root, mode="w", zarr_format=3)
    g.create_array("chunked", shape=(10,), chunks=(3,), dtype="i2", fill_value=-1)[4:6] = 3
    g.create_array("sharded", shape=(8, 4), chunks=(2, 2), shards=(4, 4), dtype="f8", fill_value=0.5)[1:3] = 2.0
    zarr.consolidate_metadata(root)
    group, _ = open_zarr_group(zarr_store_from_url(http_server.url("remote-tree-chunks.zarr")))
    tree = adapter.wrap(group)
    assert isinstance(tree, zarr_tree.TreeGroup)
    expected = zarr.open_group(root, mode="r")
    for name in ("chunked", "sharded"):
        np.testing.assert_array_equal(tree[name].read(), expected[name][...])
