"""Consolidated zarr v3 trees opened from a remote store, and the objects a read of part of
a tree touches — both from the parsed root document alone, without zarr-python.

:func:`open_remote_tree` is :func:`annio.io._storage.zarr_tree.open_tree` for a store read
from a URL (a :class:`~annio.io._storage.prefetch_store.PrefetchStore`): the root
``zarr.json`` is fetched once and parsed once, and every node's own ``zarr.json`` is then
served from that document, so opening a node through zarr-python (for reads the tree does
not decode itself) costs no request. zarr-python's own consolidated open parses all nodes
into metadata objects up front, ~40 ms for an AnnData with a few hundred elements: most of
a remote lazy open's CPU time.

:func:`tree_object_keys` and :func:`tree_nbytes` answer what
:mod:`annio.io._storage.prefetch` plans (chunk and shard object keys, the uncompressed size
of a subtree) from the same documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import zarr

from annio.io._storage import engine
from annio.io._storage.zarr_tree_layout import doc_key_encoder

__all__ = ["open_remote_tree", "tree_position", "tree_object_keys", "tree_nbytes"]

#: Bytes per element assumed for data types without a fixed size (strings: a pointer, as
#: zarr-python's ``nbytes`` counts them).
_OBJECT_ITEMSIZE = 8


def open_remote_tree(store: Any) -> zarr.Group | None:
    """The root group of a remote consolidated zarr v3 store, answered from its parsed root
    document (see the module docstring); None when ``store`` is not a
    :class:`~annio.io._storage.prefetch_store.PrefetchStore` over such a store (zarr-python
    then opens it as before)."""
    from annio.io._storage.prefetch_store import PrefetchStore
    from annio.io._storage.zarr_tree import tree_root_group

    if not isinstance(store, PrefetchStore) or store.zarr_format == 2:
        return None
    engine.run(store.probe())  # one request: the root zarr.json
    doc = store.root_document()
    if doc is None:
        return None
    group = tree_root_group(store, doc)
    if group is not None:
        store.serve_node_documents(group._annio_tree.docs)  # type: ignore[attr-defined]
    return group


def tree_position(node: Any) -> tuple[Any, str] | None:
    """``(tree, path)`` of an adapter node answered from a parsed tree, or of a root
    ``zarr.Group`` carrying one; None otherwise."""
    tree = getattr(node, "_tree", None)
    if tree is not None and hasattr(tree, "docs"):
        return tree, node._key
    raw = getattr(node, "raw", node) if not isinstance(node, zarr.Group | zarr.Array) else node
    tree = getattr(raw, "_annio_tree", None)
    if tree is not None:
        return tree, ""
    return None


def _below(tree: Any, path: str, skip: Iterable[str] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, document)`` of every array at or below ``path`` (children named in ``skip``,
    relative paths, left out)."""
    doc = tree.docs.get(path)
    if doc is None:
        return
    if doc.get("node_type") == "array":
        yield path, doc
        return
    skipped = tuple(s.strip("/") for s in skip)
    stack = [path]
    while stack:
        group = stack.pop()
        for name in tree.children.get(group, ()):
            child = f"{group}/{name}" if group else name
            rel = child[len(path) + 1 :] if path else child
            if any(rel == s or rel.startswith(s + "/") for s in skipped):
                continue
            cdoc = tree.docs[child]
            if cdoc.get("node_type") == "group":
                stack.append(child)
            else:
                yield child, cdoc


def _chunk_keys(path: str, doc: dict[str, Any]) -> list[str]:
    """Keys of every chunk (or shard) object of the array ``doc`` at ``path``."""
    shape, grid = doc["shape"], doc["chunk_grid"]["configuration"]["chunk_shape"]
    encode, prefix = doc_key_encoder(doc), f"{path}/" if path else ""
    if 0 in shape:
        return []
    counts = [-(-n // c) for n, c in zip(shape, grid, strict=True)]
    return [prefix + encode(tuple(idx)) for idx in np.ndindex(*counts)]


def tree_object_keys(tree: Any, path: str, skip: Iterable[str] = ()) -> list[str]:
    """Storage keys of every chunk/shard object of the arrays at or below ``path``."""
    keys: list[str] = []
    for apath, doc in _below(tree, path, skip):
        keys.extend(_chunk_keys(apath, doc))
    return keys


def _itemsize(data_type: Any) -> int:
    if isinstance(data_type, str):
        try:
            return np.dtype(data_type).itemsize if data_type not in ("string", "bytes") else _OBJECT_ITEMSIZE
        except TypeError:
            return _OBJECT_ITEMSIZE
    return _OBJECT_ITEMSIZE


def tree_nbytes(tree: Any, path: str) -> int:
    """Uncompressed bytes of the arrays at or below ``path`` (strings counted as pointers)."""
    return sum(math.prod(doc["shape"]) * _itemsize(doc.get("data_type")) for _, doc in _below(tree, path))
