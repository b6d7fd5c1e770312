"""The metadata prefetch of remote HDF5 files (``h5_meta.walk_metadata``): after it, HDF5
walking the whole group tree and every attribute makes no read outside the prefetched bytes
(files as h5py writes them, both format bounds); every piece is the file's own bytes; and
no file — truncated, damaged, with a user block — makes it raise, loop or fetch without
bound."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annio.io._storage import h5_meta
from annio.io._storage.h5_ranges import RangeCachedFile


class _CountingFile:
    """A local file object recording every read that reaches it (a miss of the prefetch)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        self.size = os.path.getsize(path)
        self.misses: list[tuple[int, int]] = []

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def read(self, n: int = -1) -> bytes:
        self.misses.append((self._f.tell(), n))
        return self._f.read(n)

    def close(self) -> None:
        self._f.close()


def _fetcher(data: bytes, log: list | None = None) -> Any:
    def fetch(ranges: list[tuple[int, int]]) -> list[bytes]:
        if log is not None:
            log.append(list(ranges))
        return [data[s:e] for s, e in ranges]

    return fetch


def _walk_everything(f: h5py.Group) -> list[Any]:
    """What a lazy open touches: every member, attribute, shape, dtype and chunk shape."""
    seen: list[Any] = [{k: np.asarray(v).tolist() for k, v in f.attrs.items()}]
    for key in f.keys():
        obj = f[key]
        seen.append((obj.name, {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}))
        if isinstance(obj, h5py.Group):
            seen += _walk_everything(obj)
        else:
            seen.append((obj.shape, obj.dtype.str, obj.chunks))
    return seen


def _misses_after_prefetch(path: Path) -> tuple[list, list, int]:
    raw = _CountingFile(path)
    fobj = RangeCachedFile(raw, fsspec.filesystem("file"), str(path))
    rounds = fobj.prefetch_metadata()
    raw.misses.clear()
    with h5py.File(fobj, "r") as f:
        seen = _walk_everything(f)
    misses = list(raw.misses)
    raw.close()
    return misses, seen, rounds


def _write_tree(path: Path, tree: dict, libver: str) -> None:
    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["encoding-type"] = "anndata"
        _fill(f, tree)


def _fill(group: h5py.Group, tree: dict) -> None:
    for i, (name, node) in enumerate(tree.items()):
        if isinstance(node, dict):
            sub = group.create_group(name)
            sub.attrs["encoding-type"] = "dict"
            sub.attrs.create("column-order", np.array(list(node)[:3], dtype=object), dtype=h5py.string_dtype())
            _fill(sub, node)
        else:
            kind, n = node
            if kind == "chunked":
                ds = group.create_dataset(name, data=np.arange(n, dtype=np.int32), chunks=(max(1, n // 3),))
            elif kind == "strings":
                ds = group.create_dataset(name, data=np.array([f"s{j}" for j in range(n)], dtype=object), dtype=h5py.string_dtype())
            else:
                ds = group.create_dataset(name, data=np.arange(n, dtype=np.float64))
            ds.attrs["encoding-type"] = "array"
            ds.attrs["index"] = i
            ds.attrs["label"] = f"ü{name}"


_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_leaf = st.tuples(st.sampled_from(["chunked", "strings", "plain"]), st.integers(1, 50))
_trees = st.recursive(st.dictionaries(_names, _leaf, min_size=0, max_size=4), lambda sub: st.dictionaries(_names, st.one_of(_leaf, sub), min_size=1, max_size=5), max_leaves=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_trees)
def test_hdf5_finds_all_its_metadata_in_the_prefetch(tmp_path_factory: pytest.TempPathFactory, tree: dict) -> None:
    path = tmp_path_factory.mktemp("meta") / "t.h5"
    _write_tree(path, {"top": tree}, "earliest")
    misses, seen, rounds = _misses_after_prefetch(path)
    assert misses == [], f"HDF5 read outside the prefetched metadata: {misses[:5]}"
    with h5py.File(path, "r") as f:
        assert seen == _walk_everything(f)
    assert rounds <= h5_meta.MAX_ROUNDS


def test_big_groups_with_several_symbol_nodes_and_btree_levels(tmp_path: Path) -> None:
    # 700 members: many symbol nodes (8 entries each) under a group B-tree of two levels
    path = tmp_path / "wide.h5"
    _write_tree(path, {"wide": {f"m{i:04d}": ("plain", 2) for i in range(700)}, "obs": {"a": ("strings", 5)}}, "earliest")
    misses, _, rounds = _misses_after_prefetch(path)
    assert misses == []
    assert rounds <= 10


@pytest.mark.parametrize("n_members", [3, 40], ids=["compact-links", "dense-links"])
def test_latest_format_bounds(tmp_path: Path, n_members: int) -> None:
    """libver latest: superblock v3, version-2 object headers, link messages (followed);
    more than 8 links go to a fractal heap, which is left to HDF5 (still read right)."""
    path = tmp_path / "latest.h5"
    _write_tree(path, {"g": {f"m{i}": ("chunked", 6) for i in range(n_members)}}, "latest")
    misses, seen, _ = _misses_after_prefetch(path)
    with h5py.File(path, "r") as f:
        assert seen == _walk_everything(f)
    if n_members <= 8:
        assert misses == []


def test_pieces_are_the_files_own_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    _write_tree(path, {"a": {"b": {"c": ("strings", 9)}, "d": ("chunked", 30)}}, "earliest")
    data = path.read_bytes()
    log: list = []
    pieces, rounds = h5_meta.walk_metadata(_fetcher(data, log), len(data))
    assert pieces and rounds == len(log)
    for start, piece in pieces:
        assert piece == data[start : start + len(piece)]
    starts = [s for s, _ in pieces]
    assert starts == sorted(starts)
    assert all(s0 + len(p0) < s1 for (s0, p0), (s1, _) in zip(pieces, pieces[1:], strict=False))


def test_user_block_is_left_to_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["x"] = np.arange(3)
    data = path.read_bytes()
    pieces, rounds = h5_meta.walk_metadata(_fetcher(data), len(data))
    assert rounds == 1 and pieces[0][0] == 0
    misses, seen, _ = _misses_after_prefetch(path)
    assert seen  # HDF5 still opens it, through the file object


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=40), seed=st.integers(0, 3))
def test_damaged_or_truncated_files_never_raise_or_run_away(cut: float, flips: list, seed: int) -> None:
    data = bytearray(_sample_file(seed))
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    data = bytes(data[: max(1, int(cut * len(data)))]) if cut < 1 else bytes(data)
    log: list = []
    pieces, rounds = h5_meta.walk_metadata(_fetcher(data, log), len(data))
    assert rounds <= h5_meta.MAX_ROUNDS and len(log) == rounds
    assert sum(len(r) for r in log) < 5000  # requests stay bounded
    for start, piece in pieces:
        assert piece == data[start : start + len(piece)]


_SAMPLES: dict[int, bytes] = {}


def _sample_file(seed: int) -> bytes:
    if seed not in _SAMPLES:
        import tempfile

        rng = np.random.default_rng(seed)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.h5"
            tree = {f"g{i}": {f"d{j}": (["chunked", "strings", "plain"][int(rng.integers(3))], int(rng.integers(1, 20))) for j in range(int(rng.integers(1, 12)))} for i in range(3)}
            _write_tree(path, tree, "earliest" if seed % 2 == 0 else "latest")
            _SAMPLES[seed] = path.read_bytes()
    return _SAMPLES[seed]
