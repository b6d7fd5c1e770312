"""The metadata of a remote HDF5 file fetched in a few rounds of concurrent range requests,
before HDF5 opens it.

HDF5 finds its way through a file one structure at a time — superblock, object header,
group B-tree node, symbol node, local heap, the global heap collection of a string
attribute — and through a remote file object every structure not yet seen is a round trip
(a 2 MiB block of fsspec's cache, since the structures of an h5ad lie all over the file).
Here the same structures are followed from the HDF5 file format specification, all the
objects of one level of the group tree together: each round fetches, concurrently, every
structure the previous round pointed to, so a file is walked in about two rounds per group
level, reading only the few kilobytes each structure takes. The bytes are handed to the
file object (:class:`~annio.io._storage.h5_ranges.RangeCachedFile`), which answers HDF5's
reads from them.

This is a prefetch, never a second reader: nothing parsed here decides what the file holds,
HDF5 still reads and checks every structure itself. Whatever this module does not follow
(dense link or attribute storage in fractal heaps, user blocks, external links, anything
inconsistent) is simply left to HDF5 and its block-cached reads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from annio.errors import FormatError
from annio.io._storage import h5_btree
from annio.io._storage.ranges import coalesce

__all__ = ["walk_metadata", "MAX_ROUNDS", "HEAD_BYTES"]

#: fetch(list of (start, stop)) -> the bytes of each range (shorter at the end of the file)
Fetch = Callable[[list[tuple[int, int]]], Sequence[bytes]]

#: Rounds of requests at most (a round per structure kind per group level: deep enough for
#: any h5ad, bounded for a crafted file whose structures point at each other).
MAX_ROUNDS = 24
#: Bytes fetched for a structure whose size is known only once read (object headers, local
#: heaps with their data, global heap collections: HDF5's smallest collection is 4 KiB).
_HEADER_WINDOW = 2048
_HEAP_WINDOW = 1024
_GCOL_WINDOW = 4096
_GAP = 64 * 1024  # ranges closer than this are fetched as one (fewer requests, same rounds)
_MAX_STRUCT = 1 << 22  # a structure claiming more is left to HDF5
_SYMBOL_TABLE, _LINK, _ATTRIBUTE, _LAYOUT = 0x0011, 0x0006, 0x000C, 0x0008
#: Entries of a chunk B-tree node HDF5 writes by default (2K, K = 32)
_CHUNK_NODE_ENTRIES = 64


@dataclass
class _Geometry:
    sizeof_addr: int
    sizeof_len: int
    leaf_k: int
    internal_k: int
    eof: int
    undefined: int = field(init=False)

    def __post_init__(self) -> None:
        self.undefined = (1 << (8 * self.sizeof_addr)) - 1

    def valid(self, addr: int) -> bool:
        return 0 < addr < self.eof and addr != self.undefined


class _Missing(Exception):
    """A structure needs bytes not fetched yet: ``(start, stop)``."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__(start, stop)
        self.range = (start, stop)


class _Bytes:
    """The bytes fetched so far, by start (pieces may overlap)."""

    def __init__(self, eof: int) -> None:
        self.pieces: dict[int, bytes] = {}
        self.eof = eof

    def add(self, start: int, data: bytes) -> None:
        if len(data) > len(self.pieces.get(start, b"")):
            self.pieces[start] = data

    def read(self, start: int, n: int) -> bytes:
        if start < 0 or n < 0 or start + n > self.eof:
            raise ValueError("structure past the end of the file")
        for s, data in self.pieces.items():
            if s <= start and start + n <= s + len(data):
                return data[start - s : start - s + n]
        raise _Missing(start, start + n)

    def merged(self) -> list[tuple[int, bytes]]:
        """The pieces as non-overlapping ``(start, bytes)``, sorted, overlaps joined."""
        out: list[tuple[int, bytearray]] = []
        for start in sorted(self.pieces):
            data = self.pieces[start]
            if out and start <= out[-1][0] + len(out[-1][1]):
                s0, buf = out[-1]
                end = start + len(data)
                if end > s0 + len(buf):
                    buf.extend(data[s0 + len(buf) - start :])
            else:
                out.append((start, bytearray(data)))
        return [(s, bytes(b)) for s, b in out]


def _uint(buf: bytes, pos: int, size: int) -> int:
    if pos + size > len(buf):
        raise ValueError("structure runs past its bytes")
    return int.from_bytes(buf[pos : pos + size], "little")


def _superblock(buf: bytes, eof: int) -> tuple[_Geometry, list[tuple[str, int]]] | None:
    """The file's geometry and the first structures to read (None: not a plain HDF5 file
    with its superblock at 0, e.g. one with a user block)."""
    if len(buf) < 48 or buf[:8] != b"\x89HDF\r\n\x1a\n":
        return None
    version = buf[8]
    if version in (0, 1):
        sa, sl = buf[13], buf[14]
        leaf_k, internal_k = _uint(buf, 16, 2), _uint(buf, 18, 2)
        g = _Geometry(sa, sl, leaf_k, internal_k, eof)
        entry = 24 + (4 if version == 1 else 0) + 4 * sa  # base, free space, EOF, driver addresses
        return g, _entry_targets(buf, entry, g)
    if version in (2, 3):
        sa, sl = buf[9], buf[10]
        g = _Geometry(sa, sl, 4, 16, eof)
        root = _uint(buf, 12 + 3 * sa, sa)
        return g, [("header", root)] if g.valid(root) else []
    return None


def _entry_targets(buf: bytes, pos: int, g: _Geometry) -> list[tuple[str, int]]:
    """What a symbol table entry points to: the object header, and for a group whose entry
    caches its symbol table (cache type 1), the group's B-tree and local heap as well."""
    sa = g.sizeof_addr
    header = _uint(buf, pos + sa, sa)
    out = [("header", header)] if g.valid(header) else []
    if _uint(buf, pos + 2 * sa, 4) == 1:
        btree, heap = _uint(buf, pos + 2 * sa + 8, sa), _uint(buf, pos + 3 * sa + 8, sa)
        out += [("btree", a) for a in (btree,) if g.valid(a)] + [("heap", a) for a in (heap,) if g.valid(a)]
    return out


def _header(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    """The structures an object header points to: group B-tree and heap (symbol table
    message), linked objects (link messages), global heap collections of variable-length
    attribute values."""
    messages = h5_btree.header_messages(data.read, addr, g.sizeof_addr, g.eof)
    if messages is None:
        return []
    out: list[tuple[str, int]] = []
    sa = g.sizeof_addr
    for mtype, body in messages:
        if mtype == _SYMBOL_TABLE:
            out += [("btree", _uint(body, 0, sa)), ("heap", _uint(body, sa, sa))]
        elif mtype == _LINK:
            out += _link_target(body, g)
        elif mtype == _ATTRIBUTE:
            out += [("gcol", a) for a in _vlen_collections(body, g)]
        elif mtype == _LAYOUT and (layout := h5_btree.chunked_layout(body, sa)) is not None:
            # a chunked dataset: HDF5 reads the root node of its chunk B-tree on opening it
            out.append((f"chunk:{layout[1]}", layout[0]))
    return [(kind, a) for kind, a in out if g.valid(a)]


def _link_target(body: bytes, g: _Geometry) -> list[tuple[str, int]]:
    if not body or body[0] != 1:
        return []
    flags, pos = body[1], 2
    link_type = 0
    if flags & 0x08:
        link_type, pos = body[pos], pos + 1
    pos += (8 if flags & 0x04 else 0) + (1 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    pos += width + _uint(body, pos, width)
    return [("header", _uint(body, pos, g.sizeof_addr))] if link_type == 0 else []


def _vlen_collections(body: bytes, g: _Geometry) -> set[int]:
    """Collections holding a variable-length attribute's values (empty for others)."""
    version = body[0]
    if version not in (1, 2, 3):
        return set()
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    pad = (lambda n: (n + 7) & ~7) if version == 1 else (lambda n: n)
    pos = 8 + (1 if version == 3 else 0)
    dtype = pos + pad(name_size)
    if dtype + 8 > len(body) or body[dtype] & 0x0F != 9:  # class 9: variable length
        return set()
    data = dtype + pad(type_size) + pad(space_size)
    stride = 4 + g.sizeof_addr + 4  # length, collection address, object index
    out = set()
    for pos in range(data, len(body) - stride + 1, stride):
        out.add(_uint(body, pos + 4, g.sizeof_addr))
    return out


def _btree(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    sa, sl = g.sizeof_addr, g.sizeof_len
    head = data.read(addr, 8 + 2 * sa)
    if head[:4] != b"TREE" or head[4] != 0:
        return []
    level, used = head[5], _uint(head, 6, 2)
    if used > 2 * g.internal_k + 1:
        return []
    body = data.read(addr, 8 + 2 * sa + used * (sl + sa) + sl)
    kind = "btree" if level > 0 else "snod"
    return [(kind, _uint(body, 8 + 2 * sa + sl + i * (sl + sa), sa)) for i in range(used)]


def _snod(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    head = data.read(addr, 8)
    if head[:4] != b"SNOD":
        return []
    n = _uint(head, 6, 2)
    entry = 2 * g.sizeof_addr + 24
    if n > 2 * g.leaf_k:
        return []
    body = data.read(addr, 8 + n * entry)
    out = []
    for i in range(n):
        out += _entry_targets(body, 8 + i * entry, g)
    return out


def _heap(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    sa, sl = g.sizeof_addr, g.sizeof_len
    head = data.read(addr, 8 + 2 * sl + sa)
    if head[:4] != b"HEAP":
        return []
    size, seg = _uint(head, 8, sl), _uint(head, 8 + 2 * sl, sa)
    if g.valid(seg) and size <= _MAX_STRUCT:
        data.read(seg, min(size, g.eof - seg))  # the names: fetched next round when missing
    return []


def _gcol(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    head = data.read(addr, 8 + g.sizeof_len)
    if head[:4] != b"GCOL":
        return []
    size = _uint(head, 8, g.sizeof_len)
    if size <= _MAX_STRUCT:
        data.read(addr, min(size, g.eof - addr))
    return []


def _nothing(data: _Bytes, addr: int, g: _Geometry) -> list[tuple[str, int]]:
    return []  # fetched for HDF5; nothing to follow (chunk B-tree roots)


_PARSERS = {"header": _header, "btree": _btree, "snod": _snod, "heap": _heap, "gcol": _gcol}
_WINDOWS = {"header": _HEADER_WINDOW, "heap": _HEAP_WINDOW, "gcol": _GCOL_WINDOW}


def _parser(kind: str) -> Callable[[_Bytes, int, _Geometry], list[tuple[str, int]]]:
    return _nothing if kind.startswith("chunk:") else _PARSERS[kind]


def _window(kind: str, addr: int, g: _Geometry) -> int:
    if kind.startswith("chunk:"):  # "chunk:<rank + 1>": a chunk B-tree node of that rank
        key = 8 + 8 * int(kind[6:])
        return 8 + 2 * g.sizeof_addr + _CHUNK_NODE_ENTRIES * (key + g.sizeof_addr) + key
    if kind == "btree":
        return 8 + 2 * g.sizeof_addr + (2 * g.internal_k + 1) * (g.sizeof_len + g.sizeof_addr) + g.sizeof_len
    if kind == "snod":
        return 8 + 2 * g.leaf_k * (2 * g.sizeof_addr + 24)
    return _WINDOWS[kind]


#: Bytes at the start of the file the walk begins from (:func:`walk_metadata`'s ``head``).
HEAD_BYTES = _GCOL_WINDOW


def walk_metadata(fetch: Fetch, eof: int, *, head: bytes | None = None, max_rounds: int = MAX_ROUNDS) -> tuple[list[tuple[int, bytes]], int]:
    """Fetch the metadata structures of the HDF5 file behind ``fetch`` (``eof``: its size),
    level by level of its group tree; returns the bytes read as sorted non-overlapping
    ``(start, bytes)`` pieces and the number of rounds of requests made. ``head``: the
    file's first :data:`HEAD_BYTES` bytes when already fetched (their round is counted)."""
    data = _Bytes(eof)
    if head is None or len(head) < min(eof, HEAD_BYTES):
        head = fetch([(0, min(eof, HEAD_BYTES))])[0]
    head = head[: min(eof, HEAD_BYTES)]
    data.add(0, bytes(head))
    found = _superblock(bytes(head), eof)
    if found is None:
        return data.merged(), 1
    g, pending = found
    seen: set[tuple[str, int]] = set(pending)
    wanted = [(a, a + _window(kind, a, g)) for kind, a in pending]
    rounds = 1
    attempts: dict[tuple[str, int], int] = {}
    while pending and rounds < max_rounds:
        ranges = [(s, min(e, eof)) for s, e in coalesce([s for s, _ in wanted], [e for _, e in wanted], _GAP) if s < eof]
        ranges = [r for r in ranges if r[1] - r[0] <= _MAX_STRUCT and not _covered(data, *r)]
        if ranges:
            for (start, _), buf in zip(ranges, fetch(ranges), strict=True):
                data.add(start, bytes(buf))
            rounds += 1
        retry: list[tuple[str, int]] = []
        wanted = []
        for kind, addr in pending:
            try:
                found_next = _parser(kind)(data, addr, g)
            except _Missing as missing:
                attempts[kind, addr] = attempts.get((kind, addr), 0) + 1
                # a structure longer than the windows takes a second fetch, a header with
                # continuation blocks one per block; beyond that it is left to HDF5
                if attempts[kind, addr] <= 4:
                    retry.append((kind, addr))
                    wanted.append(missing.range)
                continue
            except (FormatError, ValueError, IndexError, struct.error):
                continue  # not what it should be: HDF5 will say so when it gets there
            for item in found_next:
                if item not in seen:
                    seen.add(item)
                    retry.append(item)
                    wanted.append((item[1], item[1] + _window(item[0], item[1], g)))
        pending = retry
    return data.merged(), rounds


def _covered(data: _Bytes, start: int, stop: int) -> bool:
    try:
        data.read(start, stop - start)
        return True
    except _Missing:
        return False
