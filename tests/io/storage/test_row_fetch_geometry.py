"""The row-fetch planner reads a tree array's geometry from its metadata document
(:class:`~annio.io._storage.row_fetch._DocGeometry`) exactly as from zarr-python's array
object: same chunk/shard keys, same outer and inner grids, same shard index request; and the
tree planner lists the same chunk objects as zarr-python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from annio.io._storage.prefetch import array_keys
from annio.io._storage.row_fetch import _DocGeometry, _Geometry
from annio.io._storage.zarr_tree_layout import doc_key_encoder
from annio.io._storage.zarr_tree_plan import _chunk_keys

LAYOUTS = {
    "chunked": dict(shape=(23,), chunks=(5,)),
    "sharded": dict(shape=(23,), chunks=(5,), shards=(10,)),
    "sharded-2d": dict(shape=(9, 7), chunks=(2, 3), shards=(4, 6)),
    "one-chunk": dict(shape=(4, 3), chunks=(4, 3)),
    "scalar": dict(shape=(), chunks=()),
    "v2-keys": dict(shape=(12,), chunks=(5,), chunk_key_encoding={"name": "v2", "separator": "."}),
    "dot-separator": dict(shape=(6, 6), chunks=(3, 3), chunk_key_encoding={"name": "default", "separator": "."}),
}


class _Node:
    """What the planner reads of a tree array: its document and path."""

    def __init__(self, doc: dict, path: str) -> None:
        self._doc, self.path = doc, path


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_doc_geometry_equals_zarr_geometry(tmp_path: Path, name: str) -> None:
    g = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    arr = g.create_array(name, dtype="f4", **LAYOUTS[name])
    doc = json.loads((tmp_path / "s.zarr" / name / "zarr.json").read_text())
    node = _Node(doc, f"/{name}")
    assert _chunk_keys(name, doc) == array_keys(arr)
    if not arr.shape:
        assert doc_key_encoder(doc)(()) == next(iter(arr._async_array._iter_shard_keys()))
        return
    mine, theirs = _DocGeometry(node), _Geometry(arr)
    for attr in ("shape", "prefix", "outer", "inner", "grid", "per_shard"):
        assert getattr(mine, attr) == getattr(theirs, attr), attr
    assert (mine.sharding is None) == (theirs.sharding is None)
    for coords in np.ndindex(*mine.grid):
        assert mine.key(coords) == theirs.key(coords)
    if mine.sharding is not None:
        assert mine.index_request() == theirs.index_request()
