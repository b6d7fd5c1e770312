"""The chunk tables of chunked HDF5 datasets read from their version-1 B-trees in a few
rounds of concurrent range requests.

HDF5 finds a chunk by walking the dataset's chunk index one node at a time; through a remote
file object every node it has not seen yet is a round trip, and a dataset with thousands of
chunks has a tree of many nodes. Here the index is read directly, following the HDF5 file
format: the dataset's object header (already read by HDF5 when it opened the dataset, so in
the file object's block cache) gives the data-layout message and the B-tree root's address;
then each level of the trees of *all* the datasets asked for is fetched together — one batch
of concurrent ranges per tree level (2–3 levels for a million chunks) — and the leaves give
every chunk's logical offset, byte offset, size and filter mask.

Only what files written by HDF5 with the default format bounds use is read: object header
versions 1 and 2, data-layout message version 3 with chunked storage, which index chunks
with a version-1 B-tree (node signature ``TREE``, node type 1). Anything else — layout
version 4 (``libver="latest"``: fixed/extensible arrays, version-2 B-trees), compact or
contiguous storage, external files — gives None, and the caller uses HDF5's own
``chunk_iter``. Structures that claim to be one of those handled but are inconsistent
(bad signature, addresses past the end of the file, entry counts beyond a node, levels that
do not descend, chunk offsets outside the dataset) raise :class:`~annio.errors.FormatError`
naming the dataset.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from annio.errors import FormatError

__all__ = ["ChunkTable", "HEADER_BYTES", "NODE_ENTRIES", "btree_address", "header_address", "header_messages", "read_chunk_tables"]

#: Entries a node is read for at once (2K with HDF5's default chunk B-tree K of 32); a node
#: claiming more (a file made with a larger K) is fetched again at its full size.
NODE_ENTRIES = 64
_UNDEFINED = 2**64 - 1
_MAX_LEVEL = 64
_LAYOUT, _CONTINUATION = 0x0008, 0x0010
_MAX_HEADER_BLOCKS = 1024

#: fetch(list of (start, stop)) -> the bytes of each range (possibly shorter at the file's end)
Fetch = Callable[[list[tuple[int, int]]], Sequence[bytes]]


@dataclass
class ChunkTable:
    """Every stored chunk of a dataset, in B-tree (logical) order."""

    offsets: np.ndarray  # (n, rank) int64: logical offset of each chunk (in elements)
    addresses: np.ndarray  # (n,) int64: byte offset in the file
    sizes: np.ndarray  # (n,) int64: stored bytes
    filter_masks: np.ndarray  # (n,) uint32

    def __len__(self) -> int:
        return int(self.addresses.size)


@dataclass
class _Geometry:
    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    sizeof_addr: int
    eof: int

    @property
    def key_size(self) -> int:
        return 8 + 8 * (len(self.chunks) + 1)

    @property
    def entry_size(self) -> int:
        return self.key_size + self.sizeof_addr

    @property
    def header_size(self) -> int:
        return 8 + 2 * self.sizeof_addr

    def node_bytes(self, entries: int) -> int:
        return self.header_size + entries * self.entry_size + self.key_size

    def max_chunks(self) -> int:
        return int(np.prod([-(-s // c) for s, c in zip(self.shape, self.chunks, strict=True)], dtype=np.int64))


def _bad(name: str, why: str) -> FormatError:
    return FormatError(name, f"damaged HDF5 chunk index: {why}")


def _uint(buf: bytes, pos: int, size: int) -> int:
    return int.from_bytes(buf[pos : pos + size], "little")


# ----------------------------------------------------------------------------- object header
def _continuation(body: bytes, g: _Geometry) -> tuple[int, int]:
    """``(address, length)`` of the block an object-header continuation message points to."""
    return _uint(body, 0, g.sizeof_addr), _uint(body, g.sizeof_addr, 8)


def _header_blocks(read: Callable[[int, int], bytes], blocks: list[tuple[int, int]], g: _Geometry) -> Iterator[bytes]:
    """The bytes of each object-header block ``(address, length)`` in ``blocks``, in order.

    The caller appends the block of each continuation message it parses to ``blocks`` while
    the walk is under way. A block reached twice (continuation messages forming a cycle) or
    one past the end of the file raises :class:`~annio.errors.FormatError` naming the
    dataset; the walk ends after ``_MAX_HEADER_BLOCKS + 1`` blocks.
    """
    visited: set[int] = set()
    while blocks and len(visited) <= _MAX_HEADER_BLOCKS:
        start, length = blocks.pop(0)
        if start in visited:
            raise _bad(g.name, f"object header continuation blocks form a cycle (block at {start} reached twice)")
        visited.add(start)
        if start + length > g.eof or length > 2**24:
            raise _bad(g.name, "object header block past the end of the file")
        yield read(start, length)


def _messages_v1(read: Callable[[int, int], bytes], addr: int, g: _Geometry) -> list[tuple[int, bytes]]:
    head = read(addr, 16)
    if len(head) < 16:
        raise _bad(g.name, "object header past the end of the file")
    nmesgs, size = struct.unpack_from("<H4xI", head, 2)
    blocks = [(addr + 16, size)]
    out: list[tuple[int, bytes]] = []
    for buf in _header_blocks(read, blocks, g):
        pos = 0
        while pos + 8 <= len(buf) and len(out) < nmesgs:
            mtype, msize = struct.unpack_from("<HH", buf, pos)
            body = buf[pos + 8 : pos + 8 + msize]
            if len(body) < msize:
                raise _bad(g.name, "object header message runs past its block")
            out.append((mtype, body))
            if mtype == _CONTINUATION:
                blocks.append(_continuation(body, g))
            pos += 8 + msize
    return out


def _messages_v2(read: Callable[[int, int], bytes], addr: int, g: _Geometry) -> list[tuple[int, bytes]]:
    head = read(addr, 24)
    if len(head) < 7 or head[4] != 2:
        raise _bad(g.name, "object header version 2 without its signature")
    flags = head[5]
    pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    size = _uint(head, pos, width) if pos + width <= len(head) else _uint(read(addr + pos, width), 0, width)
    blocks = [(addr + pos + width, size)]  # chunk 0: messages, then a 4-byte checksum
    order = 2 if flags & 0x04 else 0
    out: list[tuple[int, bytes]] = []
    for index, buf in enumerate(_header_blocks(read, blocks, g)):
        pos, end = 0, len(buf) - 4
        if index > 0:
            if buf[:4] != b"OCHK":
                raise _bad(g.name, "object header continuation block without its signature")
            pos = 4
        while pos + 4 + order <= end:
            mtype, msize = buf[pos], _uint(buf, pos + 1, 2)
            body = buf[pos + 4 + order : pos + 4 + order + msize]
            if len(body) < msize:
                raise _bad(g.name, "object header message runs past its block")
            out.append((mtype, body))
            if mtype == _CONTINUATION:
                blocks.append(_continuation(body, g))
            pos += 4 + order + msize
    return out


#: Bits of a C ``unsigned long``, the type of ``H5G_stat_t.objno``: HDF5 stores an object's
#: address there as its low ``_LONG_BITS`` bits and (where ``long`` is narrower than the
#: 64-bit ``haddr_t``, as on Windows) the bits above them.
_LONG_BITS = 8 * ctypes.sizeof(ctypes.c_ulong)


def _objno_address(objno: tuple[int, int], long_bits: int = _LONG_BITS) -> int:
    """The file address ``H5Gget_objinfo`` reports as the two ``unsigned long`` of ``objno``."""
    low, high = (int(v) for v in objno)
    return (low | (high << long_bits)) & (2**64 - 1)


def header_address(ds: h5py.Dataset) -> int | None:
    """The file address of ``ds``'s object header (None when HDF5 does not say).

    ``H5Gget_objinfo`` rather than ``H5Oget_info``: the latter also sums the sizes of the
    object's index structures, and HDF5 walks the whole chunk B-tree for that — through a
    remote file object one round trip per node, the very walk this module avoids."""
    try:
        objno = h5py.h5g.get_objinfo(ds.id).objno
    except (AttributeError, TypeError, ValueError, RuntimeError, KeyError):  # pragma: no cover - HDF5 without the 1.8 API
        return None
    return _objno_address(objno)


def header_messages(read: Callable[[int, int], bytes], addr: int, sizeof_addr: int, eof: int, name: str = "/") -> list[tuple[int, bytes]] | None:
    """``(message type, body)`` of every message of the object header at ``addr`` (version 1
    or 2, continuation blocks followed), read with ``read(start, n)``; None for a header of
    another kind. Damage raises :class:`~annio.errors.FormatError` naming ``name``."""
    g = _Geometry(name, (), (), sizeof_addr, eof)
    sig = read(addr, 4)
    if sig == b"OHDR":
        return _messages_v2(read, addr, g)
    if sig[:1] == b"\x01":
        return _messages_v1(read, addr, g)
    return None


#: Bytes of an object header fetched ahead (a dataset's header with anndata's attributes
#: takes a few hundred bytes; longer ones are completed by further reads).
HEADER_BYTES = 4096


def chunked_layout(body: bytes, sizeof_addr: int) -> tuple[int, int] | None:
    """``(B-tree address, rank + 1)`` from the body of a data layout message of a chunked
    dataset indexed by a version-1 B-tree (layout version 3, class 2), else None."""
    if len(body) < 3 + sizeof_addr or body[0] != 3 or body[1] != 2:
        return None
    return _uint(body, 3, sizeof_addr), body[2]


def btree_address(ds: h5py.Dataset, read: Callable[[int, int], bytes], sizeof_addr: int, eof: int) -> int | None:
    """The address of the version-1 B-tree indexing ``ds``'s chunks (``_UNDEFINED`` when no
    chunk was ever written), or None when ``ds`` is not stored that way (see module doc)."""
    if ds.chunks is None or not ds.shape:
        return None
    g = _Geometry(ds.name or "/", tuple(ds.shape), tuple(ds.chunks), sizeof_addr, eof)
    addr = header_address(ds)
    if addr is None or addr >= eof:
        return None
    messages = header_messages(read, addr, sizeof_addr, eof, g.name)
    if messages is None:
        return None  # an object header this module does not know
    for mtype, body in messages:
        if mtype != _LAYOUT:
            continue
        layout = chunked_layout(body, sizeof_addr)
        if layout is None:
            return None  # layout v1/v2 (very old), v4 (libver latest) or not chunked
        btree, rank1 = layout
        if rank1 != len(g.chunks) + 1 or len(body) < 3 + sizeof_addr + 4 * rank1:
            raise _bad(g.name, "chunked layout message does not match the dataset's rank")
        if btree == (1 << (8 * sizeof_addr)) - 1:  # HDF5's undefined address at this file's address size
            btree = _UNDEFINED
        dims = struct.unpack_from(f"<{rank1}I", body, 3 + sizeof_addr)
        if tuple(dims[:-1]) != g.chunks:
            raise _bad(g.name, f"layout message chunk shape {dims[:-1]} differs from {g.chunks}")
        if btree != _UNDEFINED and btree >= eof:
            raise _bad(g.name, "chunk B-tree address past the end of the file")
        return btree
    return None


# ----------------------------------------------------------------------------- B-tree walk
def _parse_node(buf: bytes, addr: int, g: _Geometry, level: int | None) -> tuple[int, int, bytes]:
    """(level, entries used, node bytes) of the node at ``addr``, checked."""
    if len(buf) < g.header_size or buf[:4] != b"TREE":
        raise _bad(g.name, f"B-tree node at {addr} has no TREE signature")
    if buf[4] != 1:
        raise _bad(g.name, f"B-tree node at {addr} is not a chunk node (type {buf[4]})")
    node_level, used = buf[5], _uint(buf, 6, 2)
    if level is not None and node_level != level:
        raise _bad(g.name, f"B-tree node at {addr} is at level {node_level}, expected {level}")
    # only a root may have no entries: HDF5 keeps the emptied root leaf when every chunk is pruned
    if node_level > _MAX_LEVEL or (used == 0 and level is not None):
        raise _bad(g.name, f"B-tree node at {addr} has level {node_level} and {used} entries")
    return node_level, used, buf


def _entries(buf: bytes, used: int, g: _Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chunk sizes, filter masks, offsets (used, rank), children) of a node's entries."""
    rank = len(g.chunks)
    body = np.frombuffer(buf, dtype=np.uint8, count=used * g.entry_size, offset=g.header_size).reshape(used, g.entry_size)
    sizes = body[:, 0:4].copy().view("<u4").ravel().astype(np.int64)
    masks = body[:, 4:8].copy().view("<u4").ravel()
    offsets = body[:, 8 : 8 + 8 * rank].copy().view("<u8").reshape(used, rank).astype(np.int64)
    if g.sizeof_addr == 8:
        children = body[:, g.key_size :].copy().view("<u8").ravel()
    else:
        raw = np.zeros((used, 8), dtype=np.uint8)
        raw[:, : g.sizeof_addr] = body[:, g.key_size :]
        children = raw.view("<u8").ravel()
    return sizes, masks, offsets, children


def read_chunk_tables(items: list[tuple[h5py.Dataset, int]], fetch: Fetch, sizeof_addr: int, eof: int) -> tuple[dict[str, ChunkTable], list[tuple[int, bytes]]]:
    """Walk the B-trees at the given root addresses (from :func:`btree_address`) of all the
    datasets together, one :func:`fetch` per tree level; returns the chunk table of each
    dataset (by name) and every node read as ``(address, bytes)`` (so that HDF5's own walk
    can be answered from memory)."""
    tables: dict[str, ChunkTable] = {}
    nodes: list[tuple[int, bytes]] = []
    work: list[tuple[_Geometry, list[int], int | None]] = []  # (dataset, node addresses, level)
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {}
    for ds, root in items:
        g = _Geometry(ds.name or "/", tuple(ds.shape), tuple(ds.chunks), sizeof_addr, eof)
        parts[g.name] = []
        if root != _UNDEFINED:
            work.append((g, [root], None))
    for _round in range(_MAX_LEVEL + 2):
        if not work:
            break
        ranges = [(a, min(eof, a + g.node_bytes(NODE_ENTRIES))) for g, addrs, _ in work for a in addrs]
        bufs = list(fetch(ranges))
        if len(bufs) != len(ranges):
            raise FormatError("/", f"fetched {len(bufs)} B-tree nodes, asked for {len(ranges)}")
        k = 0
        following: list[tuple[_Geometry, list[int], int | None]] = []
        for g, addrs, level in work:
            children_next: list[int] = []
            child_level = None
            for addr in addrs:
                node_level, used, buf = _parse_node(bufs[k], addr, g, level)
                k += 1
                if len(buf) < g.node_bytes(used):
                    if addr + g.node_bytes(used) > eof:
                        raise _bad(g.name, f"B-tree node at {addr} runs past the end of the file")
                    buf = bytes(fetch([(addr, addr + g.node_bytes(used))])[0])  # a node larger than 2K=64 entries
                nodes.append((addr, buf))
                sizes, masks, offsets, children = _entries(buf, used, g)
                if np.any(children >= eof):
                    raise _bad(g.name, f"B-tree node at {addr} points past the end of the file")
                if node_level == 0:
                    parts[g.name].append((offsets, children.astype(np.int64), sizes, masks))
                else:
                    children_next.extend(int(c) for c in children)
                    child_level = node_level - 1
            if children_next:
                total = sum(len(p[0]) for p in parts[g.name]) + len(children_next)
                if total > g.max_chunks():
                    raise _bad(g.name, "B-tree holds more nodes than the dataset has chunks")
                following.append((g, children_next, child_level))
        work = following
    else:
        raise FormatError("/", "HDF5 chunk B-tree deeper than any file could need")
    for ds, _ in items:
        g = _Geometry(ds.name or "/", tuple(ds.shape), tuple(ds.chunks), sizeof_addr, eof)
        got = parts[g.name]
        rank = len(g.chunks)
        offsets = np.concatenate([p[0] for p in got]) if got else np.zeros((0, rank), np.int64)
        addresses = np.concatenate([p[1] for p in got]) if got else np.zeros(0, np.int64)
        sizes = np.concatenate([p[2] for p in got]) if got else np.zeros(0, np.int64)
        masks = np.concatenate([p[3] for p in got]) if got else np.zeros(0, np.uint32)
        _check_table(g, offsets, addresses, sizes)
        tables[g.name] = ChunkTable(offsets, addresses, sizes, masks)
    return tables, nodes


def _check_table(g: _Geometry, offsets: np.ndarray, addresses: np.ndarray, sizes: np.ndarray) -> None:
    if len(addresses) > g.max_chunks():
        raise _bad(g.name, f"{len(addresses)} chunks indexed, the dataset has at most {g.max_chunks()}")
    if len(addresses) == 0:
        return
    chunks, shape = np.asarray(g.chunks, np.int64), np.asarray(g.shape, np.int64)
    if np.any(offsets < 0) or np.any(offsets % chunks) or np.any(offsets >= np.maximum(shape, 1)):
        raise _bad(g.name, "a chunk offset lies outside the dataset or off the chunk grid")
    if np.any(addresses + sizes > g.eof) or np.any(sizes <= 0):
        raise _bad(g.name, "a chunk lies past the end of the file")
