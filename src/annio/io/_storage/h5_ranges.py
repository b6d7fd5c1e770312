"""Remote HDF5 files read in row selections: a file object answering reads from byte ranges
fetched ahead concurrently, and the byte ranges of a dataset's rows (row bytes of contiguous
datasets, whole chunks of chunked ones, found from the HDF5 chunk index).

:func:`annio.io._storage.remote.open_h5_file_from_url` opens every remote HDF5 file through
a :class:`RangeCachedFile`; lazy loads (:mod:`annio._lazy.plans`) find it with
:func:`cached_file_of`, fetch the ranges their rows need with :meth:`RangeCachedFile.fetch`
and read as usual.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import h5py

from annio.io._storage.gc_pause import gc_paused
from annio.io._storage.ranges import wanted_units

__all__ = ["RangeCachedFile", "register_open", "cached_file_of", "opened_from_url", "sizeof_addr", "stored_item_size", "dataset_byte_ranges"]


#: HDF5 reads contiguous datasets through a sieve buffer of this many bytes: a prefetched
#: range is extended by it so that a sieve read starting inside the range stays inside.
_SIEVE_BYTES = 64 * 1024
#: A remote HDF5 file up to this size is fetched whole when opened, in one request: the
#: metadata walk's rounds would cost more round trips than the transfer.
_WHOLE_FILE_BYTES = 8 * 1024 * 1024
_OPEN: dict[tuple[int, ...], Any] = {}  # HDF5 file number -> its RangeCachedFile (while open)
#: Threads running the background fetches of open files (each waits on the network only).
_WORKERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="annio-h5-prefetch")


class RangeCachedFile:
    """A file object for h5py over a remote (fsspec) file object: reads inside byte ranges
    fetched ahead by :meth:`fetch` are answered from memory, all others go to the wrapped
    (block-cached) file object."""

    def __init__(self, fobj: Any, fs: Any, path: str) -> None:
        self._f, self._fs, self._path = fobj, fs, path
        self._pos = 0
        self._size = int(getattr(fobj, "size", 0) or 0)
        self._starts: list[int] = []
        self._parts: list[tuple[int, bytes]] = []
        self._refs = 0
        # chunk B-tree nodes read by chunk_tables, kept while the file is open (HDF5's own
        # index walks are answered from them), and the tables by dataset name
        self._pinned_starts: list[int] = []
        self._pinned: list[tuple[int, bytes]] = []
        self._tables: dict[str, Any] = {}
        # the file's metadata structures, fetched ahead by prefetch_metadata
        self._meta_starts: list[int] = []
        self._meta: list[tuple[int, bytes]] = []
        # a fetch running in a worker thread (start_background); its parts join _parts
        # when a read misses or settle() is called
        self._job: concurrent.futures.Future[list[tuple[int, bytes]]] | None = None

    # -- the file-object protocol h5py uses ----------------------------------------------
    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _find(self, start: int, stop: int) -> bytes | None:
        import bisect

        for starts, parts in ((self._starts, self._parts), (self._pinned_starts, self._pinned), (self._meta_starts, self._meta)):
            i = bisect.bisect_right(starts, start) - 1
            if i >= 0:  # the ranges of one list do not overlap: the nearest one is the only candidate
                s, data = parts[i]
                if s <= start and s + len(data) >= stop:
                    return data[start - s : stop - s]
        return None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, self._size - self._pos)
        hit = self._find(self._pos, self._pos + n) if self._parts or self._pinned or self._meta else None
        if hit is None and self._job is not None:  # perhaps in the bytes still arriving
            self.settle()
            hit = self._find(self._pos, self._pos + n)
        if hit is None:
            hit = self._read_cached(self._pos, n)
        self._pos += len(hit)
        return hit

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        for key, value in list(_OPEN.items()):
            if value is self:
                del _OPEN[key]
        self._f.close()

    @property
    def closed(self) -> bool:
        return bool(getattr(self._f, "closed", False))

    # -- prefetching -----------------------------------------------------------------------
    def _cat_ranges(self, starts: list[int], stops: list[int]) -> list[bytes]:
        from annio.settings import settings

        kwargs = {"batch_size": settings.io_concurrency} if getattr(self._fs, "async_impl", False) else {}
        with gc_paused():  # see _read_cached
            parts = self._fs.cat_ranges([self._path] * len(starts), starts, stops, **kwargs)
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        return [bytes(p) for p in parts]

    def _ranges_from_memory_or_remote(self, starts: list[int], stops: list[int]) -> list[bytes]:
        """The byte ranges, those already held from memory, the others fetched concurrently."""
        held = [self._find(s, e) for s, e in zip(starts, stops, strict=True)]
        missing = [i for i, h in enumerate(held) if h is None]
        if missing:
            parts = self._cat_ranges([starts[i] for i in missing], [stops[i] for i in missing])
            for i, part in zip(missing, parts, strict=True):
                held[i] = part
        return [bytes(h) for h in held if h is not None]

    def _read_cached(self, start: int, n: int) -> bytes:
        """``n`` bytes at ``start`` through the block-cached file object.

        The collector is paused while the request is out. h5py holds its global lock for the
        whole call that reads through this file object, and an h5py object freed by a
        collection in another thread waits for that lock: were the thread fetching for us
        (fsspec's event loop) to collect such garbage meanwhile, neither would ever go on."""
        with gc_paused():
            self._f.seek(start)
            return bytes(self._f.read(n))

    def prefetch_metadata(self, head: bytes | None = None) -> int:
        """Fetch the file's metadata structures ahead, a round of concurrent requests per
        level of its group tree (:func:`~annio.io._storage.h5_meta.walk_metadata`), and keep
        them while the file is open, so that HDF5 opening groups and reading attributes
        finds them in memory; returns the rounds of requests made. ``head``: the file's
        first ``h5_meta.HEAD_BYTES`` bytes, when fetched already."""
        from annio.io._storage import h5_meta

        if self._size <= 0:
            return 0
        if self._size <= _WHOLE_FILE_BYTES:  # one request beats rounds of them
            if head and len(head) < self._size:
                pieces, rounds = [(0, bytes(head) + self._cat_ranges([len(head)], [self._size])[0])], 2
            elif head:
                pieces, rounds = [(0, bytes(head[: self._size]))], 1
            else:
                pieces, rounds = [(0, self._cat_ranges([0], [self._size])[0])], 1
        else:
            fetch = lambda ranges: self._cat_ranges([s for s, _ in ranges], [e for _, e in ranges])
            pieces, rounds = h5_meta.walk_metadata(fetch, self._size, head=head)
        self._meta = pieces
        self._meta_starts = [s for s, _ in pieces]
        return rounds

    def chunk_tables(self, datasets: list[h5py.Dataset]) -> dict[str, Any]:
        """The :class:`~annio.io._storage.h5_btree.ChunkTable` of each chunked dataset among
        ``datasets`` whose index this module reads (others are left out), their B-trees
        walked together, one round of concurrent requests per tree level; cached while the
        file is open, the nodes kept so that HDF5 finds its chunks from memory."""
        import bisect

        from annio.io._storage import h5_btree

        wanted = {}
        for ds in datasets:
            if ds.name not in self._tables and ds.chunks is not None and ds.shape:
                wanted.setdefault(ds.name, ds)
        if not wanted:
            return {ds.name: self._tables[ds.name] for ds in datasets if self._tables.get(ds.name) is not None}
        address_bytes = sizeof_addr(next(iter(wanted.values())))
        # the object headers, in one concurrent round (those HDF5 read lie all over the file)
        heads = {n: a for n, ds in wanted.items() if (a := h5_btree.header_address(ds)) is not None and a < self._size}
        # headers the metadata walk fetched are held whole (it follows their continuation
        # blocks): only the others are fetched, in one concurrent round
        starts = sorted({a for a in heads.values() if self._find(a, a + 16) is None})
        windows = dict(zip(starts, self._ranges_from_memory_or_remote(starts, [min(self._size, a + h5_btree.HEADER_BYTES) for a in starts]), strict=True))

        def read(start: int, n: int) -> bytes:
            held = self._find(start, start + n)
            if held is not None:
                return held
            for a, data in windows.items():
                if a <= start and start + n <= a + len(data):
                    return data[start - a : start - a + n]
            return self._read_cached(start, n)

        todo = []
        for name, ds in wanted.items():
            root = h5_btree.btree_address(ds, read, address_bytes, self._size) if name in heads else None
            if root is None:
                self._tables[name] = None
            else:
                todo.append((ds, root))
        if todo:
            fetch = lambda ranges: self._ranges_from_memory_or_remote([s for s, _ in ranges], [e for _, e in ranges])
            tables, nodes = h5_btree.read_chunk_tables(todo, fetch, address_bytes, self._size)
            self._tables.update(tables)
            for addr, data in nodes:
                i = bisect.bisect_right(self._pinned_starts, addr)
                self._pinned_starts.insert(i, addr)
                self._pinned.insert(i, (addr, data))
        return {ds.name: self._tables[ds.name] for ds in datasets if self._tables.get(ds.name) is not None}

    def fetch(self, starts: list[int], stops: list[int]) -> None:
        """Fetch the byte ranges concurrently (``cat_ranges``), keep them until :meth:`drop`."""
        todo = [(s, e) for s, e in zip(starts, stops, strict=True) if self._find(s, e) is None]
        if not todo:
            self._refs += 1
            return
        starts, stops = [s for s, _ in todo], [e for _, e in todo]
        parts = self._cat_ranges(starts, stops)
        self.keep(list(zip(starts, parts, strict=True)))  # only once it succeeded: a failed fetch is never dropped

    @property
    def size(self) -> int:
        """Bytes of the remote file."""
        return self._size

    def held(self, start: int, stop: int) -> bytes | None:
        """Bytes ``start:stop`` when fetched already (metadata, chunk index nodes, prefetched
        ranges), else None; makes no request."""
        return self._find(start, stop)

    def get_ranges(self, starts: list[int], stops: list[int]) -> list[bytes]:
        """The byte ranges, fetched concurrently and not kept (see :meth:`keep`)."""
        return self._cat_ranges(starts, stops)

    def start_background(self, job: Callable[[], list[tuple[int, bytes]]]) -> concurrent.futures.Future[list[tuple[int, bytes]]]:
        """Run ``job`` (fetches only: no h5py call) in a worker thread while the caller goes
        on; the ``(start, bytes)`` parts it returns are kept like :meth:`fetch`'s once a read
        misses or :meth:`settle` is called. A job that succeeded has been kept once settled:
        its caller drops it then."""
        if self._job is not None:
            self.settle()
        self._job = _WORKERS.submit(job)
        return self._job

    def settle(self) -> None:
        """Wait for the background job, if any, and keep its parts (until :meth:`drop`). A
        failed job is forgotten: reads then go to the remote file object, which reports
        the failure if it persists."""
        job, self._job = self._job, None
        if job is None:
            return
        try:
            parts = job.result()
        except Exception:  # see the docstring
            return
        self.keep(parts)

    def keep(self, parts: list[tuple[int, bytes]]) -> None:
        """Keep ``(start, bytes)`` parts fetched elsewhere like :meth:`fetch`'s (until :meth:`drop`)."""
        self._insert(parts)
        self._refs += 1

    def _insert(self, parts: list[tuple[int, bytes]]) -> None:
        import bisect

        for start, part in parts:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._parts.insert(i, (start, bytes(part)))

    def drop(self) -> None:
        self._refs -= 1
        if self._refs <= 0:
            self._refs, self._starts, self._parts = 0, [], []


def register_open(f: h5py.File, fobj: RangeCachedFile) -> None:
    _OPEN[tuple(f.id.fileno) if isinstance(f.id.fileno, tuple) else (f.id.fileno,)] = fobj


def opened_from_url(f: h5py.File) -> bool:
    """Whether the HDF5 file ``f`` was opened from a URL (through a :class:`RangeCachedFile`)."""
    if not _OPEN:
        return False
    try:
        no = f.id.fileno
    except (ValueError, RuntimeError):  # closed
        return False
    return (tuple(no) if isinstance(no, tuple) else (no,)) in _OPEN


def cached_file_of(ds: Any) -> RangeCachedFile | None:
    """The :class:`RangeCachedFile` under an HDF5 dataset opened from a URL, else None."""
    if not isinstance(ds, h5py.Dataset) or not _OPEN:
        return None
    try:
        no = ds.file.id.fileno
    except (ValueError, RuntimeError):  # closed
        return None
    return _OPEN.get(tuple(no) if isinstance(no, tuple) else (no,))


def sizeof_addr(ds: h5py.Dataset) -> int:
    """Bytes of a file address in the file holding ``ds``."""
    return int(ds.file.id.get_create_plist().get_sizes()[0])


def stored_item_size(ds: h5py.Dataset) -> int:
    """Bytes of one element of ``ds`` in the file. A variable-length value (string or
    sequence) is stored as its length and a global heap reference (4 + address + 4 bytes),
    not as the memory type's pointer that ``dtype.itemsize`` and HDF5's type size give."""
    if ds.dtype.kind == "O" or h5py.check_vlen_dtype(ds.dtype) is not None:
        return 8 + sizeof_addr(ds)
    return int(ds.dtype.itemsize)


def dataset_byte_ranges(ds: h5py.Dataset, starts: Any, stops: Any) -> list[tuple[int, int]]:
    """Byte ranges of the file holding rows ``starts[i]:stops[i]`` (first axis; all of the
    others) of ``ds``: whole chunks of chunked datasets, row bytes of contiguous ones
    (extended by the sieve size); [] when unknown (compact storage, external files)."""
    import numpy as np

    starts, stops = np.atleast_1d(np.asarray(starts, np.int64)), np.atleast_1d(np.asarray(stops, np.int64))
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    if not ds.shape or starts.size == 0:
        return []
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is None:
            return []
        row = int(np.prod(ds.shape[1:], dtype=np.int64)) * stored_item_size(ds)
        end = offset + int(ds.shape[0]) * row
        return [(offset + int(s) * row, min(end, offset + int(e) * row + _SIEVE_BYTES)) for s, e in zip(starts, stops, strict=True)]
    c0 = int(ds.chunks[0])
    fobj = cached_file_of(ds)
    table = None if fobj is None else fobj.chunk_tables([ds]).get(ds.name)
    if table is not None:
        if not len(table):
            return []
        first, addresses, sizes = table.offsets[:, 0] // c0, table.addresses, table.sizes
    else:
        infos: list[Any] = []
        ds.id.chunk_iter(infos.append)
        if not infos:
            return []
        first = np.array([i.chunk_offset[0] for i in infos], dtype=np.int64) // c0
        addresses = np.array([i.byte_offset for i in infos], dtype=np.int64)
        sizes = np.array([i.size for i in infos], dtype=np.int64)
    n_units = -(-int(ds.shape[0]) // c0)
    wanted = wanted_units(starts, stops, c0, n_units)
    keep = first < n_units
    keep[keep] = wanted[first[keep]]
    return [(int(a), int(a) + int(n)) for a, n in zip(addresses[keep].tolist(), sizes[keep].tolist(), strict=True)]
