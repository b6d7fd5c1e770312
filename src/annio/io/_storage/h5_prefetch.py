"""The values of a remote HDF5 file's small datasets fetched together, before HDF5 reads them.

A lazy open reads a few datasets whole (the obs/var indexes, the ``uns`` tree). Left to HDF5,
each is a cache miss of the block-cached file object waited for in turn, and every
variable-length string dataset two: its heap references, then the global heap collections
holding the strings. Here the storage of all of them is found from the metadata HDF5 has
already read (contiguous offsets, chunk tables) and fetched in one round of concurrent
requests, then the collections the string datasets point to in a second round; the bytes
stay in the :class:`~annio.io._storage.h5_ranges.RangeCachedFile` while the block runs and
HDF5 reads them from memory.

A prefetch only: HDF5 still reads and checks everything itself. A guess that falls short (a
collection shared with other datasets and larger than its strings here) is one more miss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np

from annio.io._storage.h5_ranges import RangeCachedFile, cached_file_of, sizeof_addr, stored_item_size
from annio.io._storage.ranges import MAX_GAP, coalesce

__all__ = ["prefetching_datasets", "collection_ranges", "selection_heap_ranges", "is_vlen_string", "reference_ranges"]

#: HDF5's smallest global heap collection, the size it reads first when loading one.
_MIN_COLLECTION = 4096
#: Size HDF5 grows a collection of small strings to (doubling from 4 KiB).
_ROWS_COLLECTION = 1 << 16
#: Heap bytes guessed for each string of a dataset (a 16-byte object header and up to 32
#: bytes of text), and the most guessed for one dataset.
_GUESS_PER_STRING = 48
_GUESS_CAP = 8 << 20
#: A collection whose strings here claim more than this is left to HDF5.
_MAX_COLLECTION = 1 << 26


def _storage_ranges(fobj: RangeCachedFile, datasets: Sequence[h5py.Dataset]) -> tuple[list[tuple[int, int]], list[tuple[h5py.Dataset, list[tuple[int, int]]]]]:
    """Byte ranges holding the values of ``datasets``, and for each variable-length string
    dataset stored without filters, the ranges of its heap references."""
    ranges: list[tuple[int, int]] = []
    strings: list[tuple[h5py.Dataset, list[tuple[int, int]]]] = []
    chunked = [ds for ds in datasets if ds.chunks is not None]
    tables = fobj.chunk_tables(chunked) if chunked else {}
    for ds in datasets:
        if ds.chunks is None:
            offset = ds.id.get_offset()
            own = [] if offset is None else [(int(offset), int(offset) + int(ds.id.get_storage_size()))]
        else:
            table = tables.get(ds.name)
            if table is None:
                continue
            own = [(int(a), int(a) + int(n)) for a, n in zip(table.addresses.tolist(), table.sizes.tolist(), strict=True)]
        own = [(s, min(e, fobj.size)) for s, e in own if fobj.size > s and e > s]
        ranges += own
        if own and is_vlen_string(ds):
            strings.append((ds, own))
            if ds.chunks is None:
                # HDF5 writes a string dataset's heap collections right after its values:
                # fetched along with them (a guess of 48 bytes a string; what it misses
                # comes in the second round), the second round is often not needed
                end = own[-1][1]
                ranges.append((end, min(fobj.size, end + min(_GUESS_CAP, _GUESS_PER_STRING * int(ds.size)))))
    return ranges, strings


def collection_ranges(refs: Sequence[bytes], sizeof_addr: int, eof: int, *, some_rows: bool = False) -> list[tuple[int, int]]:
    """Byte ranges of the global heap collections that the variable-length references in
    ``refs`` (HDF5's on-disk form: 4-byte length, collection address, 4-byte object index)
    point to.

    A collection's size is not known before its header is read. HDF5 makes one just large
    enough for its first object (at least 4 KiB) and doubles it whenever the next object
    does not fit, so it is smaller than twice what it holds: each range is twice the objects
    referenced in it (with their headers), which covers it unless other datasets' strings
    share it. With ``some_rows`` the references are those of some rows only, and a
    collection holds others' strings too: each range is then at least 64 KiB, the size up
    to which HDF5 grows the collections of a dataset's small strings."""
    stride = 8 + sizeof_addr
    addresses, lengths = [], []
    for buf in refs:
        n = len(buf) // stride
        if n == 0:
            continue
        rows = np.frombuffer(buf, dtype=np.uint8, count=n * stride).reshape(n, stride)
        lengths.append(rows[:, :4].copy().view("<u4").ravel().astype(np.int64))
        addr_bytes = np.zeros((n, 8), dtype=np.uint8)
        addr_bytes[:, :sizeof_addr] = rows[:, 4 : 4 + sizeof_addr]
        addresses.append(addr_bytes.view("<u8").ravel().astype(np.int64))
    if not addresses:
        return []
    address, length = np.concatenate(addresses), np.concatenate(lengths)
    keep = (address > 0) & (address < eof)
    if not keep.any():
        return []
    address, length = address[keep], length[keep]
    # each object: a 16-byte header (index, references, reserved, size), its data padded to 8
    objects = 16 + ((length + 7) // 8) * 8
    starts, inverse = np.unique(address, return_inverse=True)
    # + the collection's header and its free-space object (16 bytes each)
    held = np.bincount(inverse, weights=objects).astype(np.int64) + 32
    out = []
    for start, size in zip(starts.tolist(), held.tolist(), strict=True):
        if size <= _MAX_COLLECTION:
            out.append((start, min(eof, start + max(_ROWS_COLLECTION if some_rows else _MIN_COLLECTION, 2 * size))))
    return out


def is_vlen_string(ds: h5py.Dataset) -> bool:
    """Whether ``ds`` holds variable-length strings stored without filters (its heap
    references can be read from its raw bytes)."""
    info = h5py.check_string_dtype(ds.dtype)
    if info is None or info.length is not None or ds.dtype.kind != "O":
        return False
    return ds.chunks is None or ds.id.get_create_plist().get_nfilters() == 0


def reference_ranges(ds: h5py.Dataset, starts: Any, stops: Any) -> list[tuple[int, int]]:
    """Byte ranges holding the heap references of rows ``starts[i]:stops[i]`` of the string
    dataset ``ds``: exactly those rows when contiguous, whole chunks when chunked."""
    from annio.io._storage.h5_ranges import dataset_byte_ranges

    if ds.chunks is not None:
        return dataset_byte_ranges(ds, starts, stops)
    offset = ds.id.get_offset()
    if offset is None or ds.ndim != 1:
        return []
    size = stored_item_size(ds)
    starts, stops = np.atleast_1d(np.asarray(starts, np.int64)), np.atleast_1d(np.asarray(stops, np.int64))
    return [(offset + int(a) * size, offset + int(b) * size) for a, b in zip(starts.tolist(), stops.tolist(), strict=True) if b > a]


Find = Callable[[int, int], "bytes | None"]


def heap_ranges(find: Find, refs: Sequence[tuple[int, int]], address_bytes: int, eof: int, *, some_rows: bool = False) -> list[tuple[int, int]]:
    """The global heap collections (:func:`collection_ranges`) that the references in the
    byte ranges ``refs`` point to, leaving out those ``find(start, stop)`` already holds;
    references not held themselves are skipped (nothing is fetched here)."""
    held = [b for b in (find(s, e) for s, e in refs) if b is not None]
    if not held:
        return []
    return [r for r in collection_ranges(held, address_bytes, eof, some_rows=some_rows) if find(*r) is None]


def selection_heap_ranges(fobj: RangeCachedFile, dense: Sequence[tuple[Any, Any, Any]]) -> list[tuple[int, int]]:
    """For the row selections ``(dataset, starts, stops)`` of a load, whose rows ``fobj``
    holds already: the heap collections the selected rows of its string datasets point to."""
    strings = [(ds, a, b) for ds, a, b in dense if isinstance(ds, h5py.Dataset) and is_vlen_string(ds)]
    if not strings:
        return []
    refs = [r for ds, a, b in strings for r in reference_ranges(ds, a, b)]
    return heap_ranges(fobj.held, refs, sizeof_addr(strings[0][0]), fobj.size, some_rows=True)


def _two_rounds(fobj: RangeCachedFile, ranges: list[tuple[int, int]], refs: list[tuple[int, int]], address_bytes: int) -> tuple[list[tuple[int, bytes]], int]:
    """Fetch ``ranges`` (those not held), then the heap collections the references in
    ``refs`` point to; returns the fetched ``(start, bytes)`` parts and the rounds made. No
    h5py call: with ``overlap`` this runs in a worker thread while HDF5 is in use."""
    parts: list[tuple[int, bytes]] = []

    def find(start: int, stop: int) -> bytes | None:
        for s, data in parts:
            if s <= start and stop <= s + len(data):
                return data[start - s : stop - s]
        return fobj.held(start, stop)

    def fetch(wanted: list[tuple[int, int]]) -> int:
        todo = [r for r in coalesce([s for s, _ in wanted], [e for _, e in wanted], MAX_GAP) if find(*r) is None]
        if not todo:
            return 0
        got = fobj.get_ranges([s for s, _ in todo], [e for _, e in todo])
        parts.extend(zip([s for s, _ in todo], got, strict=True))
        return 1

    rounds = fetch(ranges)
    heaps = heap_ranges(find, refs, address_bytes, fobj.size)
    if heaps:
        rounds += fetch(heaps)
    return parts, rounds


def _expand(objects: Sequence[Any]) -> list[h5py.Dataset]:
    from annio.settings import settings

    out: list[h5py.Dataset] = []
    for obj in objects:
        if isinstance(obj, h5py.Dataset):
            out.append(obj)
        elif isinstance(obj, h5py.Group):
            tree = _datasets_below(obj)
            if sum(ds.id.get_storage_size() for ds in tree) <= settings.remote_prefetch_bytes:
                out += tree
    return out


def _datasets_below(group: h5py.Group) -> list[h5py.Dataset]:
    tree: list[h5py.Dataset] = []
    group.visititems(lambda _, o: tree.append(o) if isinstance(o, h5py.Dataset) else None)
    return tree


@contextmanager
def prefetching_datasets(objects: Sequence[Any], *, overlap: bool = False) -> Iterator[int]:
    """Inside the block, HDF5 reads the values of ``objects`` (h5py datasets of one remote
    file, and groups: every dataset below one, when they hold at most
    ``settings.remote_prefetch_bytes``) from memory: fetched on entry in at most two rounds of concurrent requests (the
    values, then the heap collections of the string datasets), dropped on exit. Yields the
    rounds made; 0 for local files and when there is nothing to fetch.

    With ``overlap`` the block starts at once, the fetch running in a worker thread (yields
    -1): work that reads none of these datasets goes on during the round trips, a read that
    needs them waits for them."""
    datasets = _expand(objects)
    fobj = cached_file_of(datasets[0]) if datasets else None
    if fobj is None:
        yield 0
        return
    ranges, strings = _storage_ranges(fobj, datasets)
    refs = [r for _, own in strings for r in own]
    address_bytes = sizeof_addr(datasets[0])
    if not ranges:
        yield 0
        return
    if overlap:
        job = fobj.start_background(lambda: _two_rounds(fobj, ranges, refs, address_bytes)[0])
        try:
            yield -1
        finally:
            fobj.settle()
            if job.exception() is None:  # settled, so kept: by a read that needed it, or just now
                fobj.drop()
        return
    parts, rounds = _two_rounds(fobj, ranges, refs, address_bytes)
    fobj.keep(parts)
    try:
        yield rounds
    finally:
        fobj.drop()
