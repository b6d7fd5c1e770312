"""A remote consolidated zarr v3 store is answered from its consolidated metadata (the
adapter's tree nodes, as for local stores): small arrays fetched ahead are decoded from the
prefetched bytes, anything not fetched ahead goes through zarr-python — same results as a
local read, no extra requests."""

from __future__ import annotations

import json
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


def test_remote_lazy_selection_makes_no_metadata_request_but_the_root(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    # the tree serves every node's own zarr.json (zarr-python objects opened for selections
    # are built from it): the root document is the only metadata fetched, however many
    # elements the selection loads through zarr-python
    proxy = latency_proxy(http_server.base_url, rtt=0.0)
    url = f"{proxy.url}/remote-tree/v3.zarr"
    lazy = read_lazy(url)
    rows = np.array([1, 7, 30, 59])
    got = lazy[rows].to_memory()
    metadata = [r.path for r in proxy.requests if r.path.rsplit("/", 1)[-1] in ("zarr.json", ".zarray", ".zattrs", ".zgroup")]
    assert metadata == ["/remote-tree/v3.zarr/zarr.json"], metadata
    assert_equal(got, annio.read_zarr(published["v3.zarr"])[rows].copy())


def test_remote_tree_zarr_nodes_equal_zarr_pythons(published: dict[str, Path], http_server: Any) -> None:
    group, _ = open_zarr_group(zarr_store_from_url(http_server.url("remote-tree/v3.zarr")))
    tree = group._annio_tree
    expected = zarr.open_group(published["v3.zarr"], mode="r")
    for path, doc in tree.docs.items():
        if not path:
            continue
        node = tree.zarr_node(path)
        assert type(node) is type(expected[path]), path
        if doc["node_type"] == "array":
            assert node.metadata == expected[path].metadata, path
            np.testing.assert_array_equal(node[...], expected[path][...])
        else:  # its members are not listed empty (HTTP cannot list: the tree's children)
            assert node.metadata.consolidated_metadata is None, path
            assert dict(node.attrs) == dict(expected[path].attrs), path
            assert sorted(tree.children[path]) == sorted(expected[path].keys()), path
    assert tree.zarr_node("obs") is tree.zarr_node("obs")  # built once


def test_remote_tree_node_zarr_python_rejects_is_opened_by_zarr_python(http_server: Any) -> None:
    # a consolidated document annio recognises but zarr-python's metadata class rejects
    # (an unknown codec): the node is opened from its own document, and zarr-python's error
    # is what the user sees
    root = http_server.root / "remote-tree-bad-codec.zarr"
    g = zarr.open_group(root, mode="w", zarr_format=3)
    g.create_array("a", shape=(4,), dtype="i4")[:] = 1
    zarr.consolidate_metadata(root)
    doc = json.loads((root / "zarr.json").read_text())
    doc["consolidated_metadata"]["metadata"]["a"]["codecs"].append({"name": "no-such-codec"})
    (root / "zarr.json").write_text(json.dumps(doc))
    group, _ = open_zarr_group(zarr_store_from_url(http_server.url("remote-tree-bad-codec.zarr")))
    node = group._annio_tree.zarr_node("a")  # from a/zarr.json, which is intact
    np.testing.assert_array_equal(node[...], np.ones(4, dtype="i4"))


def test_remote_rows_are_decoded_from_the_prefetched_bytes(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    # while a selection's bytes are held, the tree decodes 1-D row reads itself (no request,
    # no zarr-python read); once they are dropped, the same read goes to zarr-python again
    from annio._lazy.plans import prefetching_selection

    proxy = latency_proxy(http_server.base_url, rtt=0.0)
    lazy = read_lazy(f"{proxy.url}/remote-tree/v3.zarr")
    view = lazy[10:40]
    root = adapter.wrap(lazy.file._handle)
    indptr = root["X"]["indptr"]
    assert isinstance(indptr, zarr_tree.TreeArray)
    expected = zarr.open_array(published["v3.zarr"] / "X" / "indptr", mode="r")[10:41]
    with prefetching_selection([view.X]):
        proxy.reset()
        got = indptr._read_cached(slice(10, 41))
        assert proxy.requests == []
    assert got is not None
    np.testing.assert_array_equal(got, expected)
    assert indptr._read_cached(slice(10, 41)) is None  # dropped: not held any more
    np.testing.assert_array_equal(indptr.read(slice(10, 41)), expected)


def test_lazy_open_overlapping_its_prefetch_requests_each_object_once(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    # the open builds what needs no prefetched object while the prefetch is in flight; a
    # read of an object still arriving waits for it instead of requesting it again
    proxy = latency_proxy(http_server.base_url, rtt=0.05)
    lazy = read_lazy(f"{proxy.url}/remote-tree/v3.zarr")
    paths = [r.path for r in proxy.requests]
    assert len(paths) == len(set(paths)), sorted(paths)
    assert proxy.stats()["chain_depth"] == 2  # the root document, then one concurrent batch
    assert_equal(lazy.to_memory(), annio.read_zarr(published["v3.zarr"]))


def test_start_fetch_makes_sync_and_async_reads_wait_for_the_bytes(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    from zarr.core.buffer import default_buffer_prototype

    from annio.io._storage import engine

    proxy = latency_proxy(http_server.base_url, rtt=0.1)
    store = zarr_store_from_url(f"{proxy.url}/remote-tree/v3.zarr")
    keys = ["obs/_index/c/0", "var/_index/c/0"]
    fut = store.start_fetch(keys)
    assert not fut.done()
    first = store.cached_object(keys[0], default="not held")  # waits for the batch
    assert fut.done() and isinstance(first, bytes)
    fut2 = store.start_fetch(["uns/text/c/0"])
    got = engine.run(store.get("uns/text/c/0", default_buffer_prototype()))
    assert fut2.done() and got is not None
    paths = [r.path for r in proxy.requests]
    assert sorted(paths) == sorted(f"/remote-tree/v3.zarr/{k}" for k in [*keys, "uns/text/c/0"])
    store.drop([*keys, "uns/text/c/0"])


def test_start_fetch_returns_once_its_requests_are_sent(published: dict[str, Path], http_server: Any, latency_proxy: Any) -> None:
    import time

    from annio.io._storage import prefetch_store

    proxy = latency_proxy(http_server.base_url, rtt=0.5)
    store = zarr_store_from_url(f"{proxy.url}/remote-tree/v3.zarr")
    keys = ["obs/_index/c/0", "var/_index/c/0", "uns/text/c/0"]
    fut = store.start_fetch(keys)
    deadline = time.monotonic() + 0.4
    while len(proxy.requests) < len(keys) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(proxy.requests) == len(keys) and not fut.done()  # all sent together, none answered yet
    fut.result(timeout=30)
    start = time.perf_counter()
    again = store.start_fetch(keys)  # everything held: nothing to send, nothing to wait for
    assert time.perf_counter() - start < prefetch_store._ISSUE_WAIT and again.result(timeout=5) == 0
    assert len(proxy.requests) == len(keys)
    store.drop(keys)
