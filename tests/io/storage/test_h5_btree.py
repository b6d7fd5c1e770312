"""The HDF5 chunk index read directly (h5_btree) gives the same chunk table as HDF5's own
``chunk_iter`` for every chunk, in few rounds; layouts it does not handle give None; damaged
indexes give FormatError naming the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from annio.errors import FormatError
from annio.io._storage import h5_btree


def _open_tables(path: Path, names: list[str]) -> tuple[dict[str, Any], list[int], dict[str, int | None]]:
    data = path.read_bytes()
    rounds: list[int] = []

    def fetch(ranges: list[tuple[int, int]]) -> list[bytes]:
        rounds.append(len(ranges))
        return [data[s:e] for s, e in ranges]

    with h5py.File(path, "r") as f:
        sizeof_addr = f.id.get_create_plist().get_sizes()[0]
        roots = {n: h5_btree.btree_address(f[n], lambda a, k: data[a : a + k], sizeof_addr, len(data)) for n in names}
        items = [(f[n], r) for n, r in roots.items() if r is not None]
        tables, _ = h5_btree.read_chunk_tables(items, fetch, sizeof_addr, len(data))
        for ds, _ in items:
            infos: list[Any] = []
            ds.id.chunk_iter(infos.append)
            table = tables[ds.name]
            assert len(table) == len(infos) == ds.id.get_num_chunks()
            for i, info in enumerate(infos):
                assert tuple(table.offsets[i]) == tuple(info.chunk_offset)
                assert (table.addresses[i], table.sizes[i], table.filter_masks[i]) == (info.byte_offset, info.size, info.filter_mask)
    return tables, rounds, roots


def test_chunk_tables_equal_hdf5s_for_every_chunk(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("one", data=np.arange(10), chunks=(10,))
        f.create_dataset("few", data=np.arange(1000), chunks=(100,), compression="gzip")
        f.create_dataset("many", data=rng.integers(0, 9, 200_000), chunks=(20,), compression="gzip")  # 10,000 chunks: 3 levels
        f.create_dataset("two_d", data=rng.random((300, 70)), chunks=(7, 9), shuffle=True, compression="lzf")
        f.create_dataset("never_written", shape=(100,), chunks=(10,), dtype="f4")
        f.create_dataset("partly_written", shape=(1000,), chunks=(10,), dtype="f4")[5:57] = 1
        f.create_dataset("ordered_attrs", data=np.arange(5000), chunks=(7,), track_order=True)  # object header v2
        f["ordered_attrs"].attrs["encoding-type"] = "array"
    names = ["one", "few", "many", "two_d", "never_written", "partly_written", "ordered_attrs"]
    tables, rounds, roots = _open_tables(path, names)
    assert all(r is not None for r in roots.values()), roots
    assert len(tables["/never_written"]) == 0
    # one round per tree level, all datasets together: the 10,000-chunk tree is the deepest
    assert len(rounds) == 3, rounds


def test_layouts_not_handled_give_none(tmp_path: Path) -> None:
    path = tmp_path / "b.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("latest_chunked", data=np.arange(1000), chunks=(10,), maxshape=(None,))  # extensible array index
        f.create_dataset("latest_fixed", data=np.arange(1000), chunks=(10,))  # fixed array index
        f.create_dataset("contiguous", data=np.arange(10))
        f.create_dataset("scalar", data=1.0)
    data = path.read_bytes()
    with h5py.File(path, "r") as f:
        for name in ("latest_chunked", "latest_fixed", "contiguous", "scalar"):
            assert h5_btree.btree_address(f[name], lambda a, k: data[a : a + k], 8, len(data)) is None, name


def test_datasets_shrunk_to_nothing_have_empty_tables(tmp_path: Path) -> None:
    # HDF5 keeps the emptied root node (a leaf with no entries) when every chunk is pruned
    path = tmp_path / "shrunk.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("empty", data=np.arange(100), chunks=(10,), maxshape=(None,)).resize((0,))
        f.create_dataset("empty_2d", data=np.ones((30, 30)), chunks=(10, 10), maxshape=(None, None)).resize((0, 30))
        f.create_dataset("shrunk", data=np.arange(100), chunks=(10,), maxshape=(None,)).resize((35,))
    tables, _, roots = _open_tables(path, ["empty", "empty_2d", "shrunk"])
    assert all(r is not None for r in roots.values()), roots
    assert len(tables["/empty"]) == len(tables["/empty_2d"]) == 0
    assert len(tables["/shrunk"]) == 4


def _set_istore_k(fcpl: Any, k: int) -> None:
    """``H5Pset_istore_k`` (the chunk B-tree's K), which h5py does not wrap, called in the
    HDF5 library h5py loaded."""
    import ctypes

    with open("/proc/self/maps") as maps:
        lib = next(line.split()[-1] for line in maps if "libhdf5" in line and "hdf5_hl" not in line)
    assert ctypes.CDLL(lib).H5Pset_istore_k(ctypes.c_int64(fcpl.id), ctypes.c_uint(k)) >= 0


@pytest.mark.parametrize(("sizes", "k"), [((4, 4), 32), ((4, 8), 8), ((8, 4), 32), ((8, 8), 2), ((8, 8), 64)])
def test_other_address_sizes_and_node_sizes(tmp_path: Path, sizes: tuple[int, int], k: int) -> None:
    # files of other writers may use 4-byte addresses / lengths and another chunk B-tree K
    path = tmp_path / "sizes.h5"
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_sizes(*sizes)
    _set_istore_k(fcpl, k)
    with h5py.File(h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)) as f:
        f.create_dataset("x", data=np.arange(20_000), chunks=(10,), compression="gzip")
        f.create_dataset("y", data=np.ones((60, 70)), chunks=(7, 9))
        f.create_dataset("never_written", shape=(100,), chunks=(10,), dtype="f4")
        f.create_dataset("empty", data=np.arange(100), chunks=(10,), maxshape=(None,)).resize((0,))
        z = f.create_dataset("continued", data=np.arange(100), chunks=(10,), maxshape=(None,))
        for i in range(60):  # a version-1 object header with continuation blocks
            z.attrs[f"a{i}"] = np.arange(30)
    tables, _, roots = _open_tables(path, ["x", "y", "never_written", "empty", "continued"])
    assert all(r is not None for r in roots.values()), roots
    assert [len(tables[f"/{n}"]) for n in ("x", "y", "never_written", "empty", "continued")] == [2000, 72, 0, 0, 10]


def _damaged(tmp_path: Path, damage: Any) -> tuple[Path, bytes]:
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(20_000), chunks=(10,))
    data = bytearray(path.read_bytes())
    with h5py.File(path, "r") as f:
        root = h5_btree.btree_address(f["x"], lambda a, k: bytes(data[a : a + k]), 8, len(data))
    assert root is not None
    damage(data, root)
    return path, bytes(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d, root: d.__setitem__(slice(root, root + 4), b"XXXX"),  # signature
        lambda d, root: d.__setitem__(slice(root + 6, root + 8), (0xFFFF).to_bytes(2, "little")),  # entries used
        lambda d, root: d.__setitem__(slice(root + 5, root + 6), b"\x07"),  # a level its children do not follow
        lambda d, root: d.__setitem__(slice(root + 48, root + 56), (2**62).to_bytes(8, "little")),  # child past EOF
    ],
    ids=["signature", "entries", "level", "child-address"],
)
def test_damaged_index_is_a_format_error_naming_the_dataset(tmp_path: Path, damage: Any) -> None:
    path, data = _damaged(tmp_path, damage)
    with h5py.File(tmp_path / "c.h5", "r") as f:  # HDF5 opens it: the damage is in the index only
        root = h5_btree.btree_address(f["x"], lambda a, k: data[a : a + k], 8, len(data))
        with pytest.raises(FormatError, match="/x"):
            h5_btree.read_chunk_tables([(f["x"], root)], lambda rs: [data[s:e] for s, e in rs], 8, len(data))


def test_header_address_from_objno_of_either_long_width() -> None:
    # H5Gget_objinfo splits the address over two C longs: 32 bits each on Windows
    address = 5 * 2**32 + 7
    assert h5_btree._objno_address((7, 5), long_bits=32) == address
    assert h5_btree._objno_address((address, 0), long_bits=64) == address


def test_header_blocks_revisited_is_a_format_error() -> None:
    g = h5_btree._Geometry("/x", (10,), (10,), 8, 100)
    blocks = [(0, 8)]
    walk = h5_btree._header_blocks(lambda a, k: bytes(k), blocks, g)
    assert next(walk) == bytes(8)
    blocks.append((40, 8))
    assert next(walk) == bytes(8)
    blocks.append((0, 8))  # back to the first block
    with pytest.raises(FormatError, match="/x.*cycle"):
        next(walk)


def test_cycle_of_continuation_blocks_in_a_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "cycle.h5"
    with h5py.File(path, "w") as f:
        z = f.create_dataset("x", data=np.arange(100), chunks=(10,), maxshape=(None,))
        for i in range(60):  # a version-1 object header with continuation blocks
            z.attrs[f"a{i}"] = np.arange(30)
    data = bytearray(path.read_bytes())
    with h5py.File(path, "r") as f:
        addr = h5_btree.header_address(f["x"])
        assert addr is not None and data[addr] == 1
        size = int.from_bytes(data[addr + 8 : addr + 12], "little")
        pos = addr + 16
        while int.from_bytes(data[pos : pos + 2], "little") != 0x0010:  # the first continuation message
            pos += 8 + int.from_bytes(data[pos + 2 : pos + 4], "little")
            assert pos < addr + 16 + size
        data[pos + 8 : pos + 24] = (addr + 16).to_bytes(8, "little") + size.to_bytes(8, "little")  # back to block 0
        damaged = bytes(data)
        with pytest.raises(FormatError, match="/x.*cycle"):
            h5_btree.btree_address(f["x"], lambda a, k: damaged[a : a + k], 8, len(damaged))
