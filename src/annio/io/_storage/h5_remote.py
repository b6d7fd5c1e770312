"""Whole remote HDF5 files read with large concurrent range requests.

HDF5 through a file object reads metadata and data piece by piece, each piece a round trip
waited for in turn. A full ``read_h5ad`` needs (nearly) every byte of the file anyway, so
here the file is fetched as ``ceil(size / part)`` ranges of :data:`PART_BYTES`, all in
flight together (bounded by ``settings.io_concurrency``), into one buffer that HDF5 then
opens as an in-memory file image (core driver, no backing store): one size request, then
one batch of ranges — two round trips deep whatever the file's layout. obstore does the
requests when installed (``storage_options={"backend": "fsspec"}`` forces fsspec).

Files larger than ``settings.remote_prefetch_bytes`` are opened through the block-cached
file object of :func:`annio.io._storage.remote.open_h5_file_from_url` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import h5py

from annio.errors import FormatError

__all__ = ["PART_BYTES", "fetch_url_bytes", "fetch_url_bytes_async", "open_h5_image", "open_h5_url_read"]

#: Size of one range request of a whole-file fetch.
PART_BYTES = 8 * 2**20


def _fs(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    from annio.io._storage.remote import _fsspec_options, _split_backend

    _, options = _split_backend(storage_options)
    return fsspec.core.url_to_fs(url, **_fsspec_options(url, options))


def _size(fs: Any, path: str) -> int:
    size = fs.size(path)
    if size is None:
        raise FormatError("/", f"{path}: the server did not report the file's size")
    return int(size)


def _obstore_target(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str] | None:
    """(obstore store of the parent location, object name), or None to use fsspec."""
    from annio.io._storage.remote import _OBSTORE_SCHEMES, _obstore_store, _split_backend, url_scheme

    backend, options = _split_backend(storage_options)
    if backend != "obstore" or url_scheme(url) not in _OBSTORE_SCHEMES or "?" in url:
        return None
    parent, _, name = url.rstrip("/").rpartition("/")
    if not name or parent.endswith(":/"):
        return None
    return _obstore_store(parent, options), name


async def _fetch_obstore(store: Any, name: str, max_bytes: int | None) -> bytes | None:
    import obstore

    from annio.io._storage import engine

    size = int((await obstore.head_async(store, name))["size"])
    if max_bytes is not None and size > max_bytes:
        return None
    out = bytearray(size)

    async def part(start: int) -> None:
        stop = min(start + PART_BYTES, size)
        data = await obstore.get_range_async(store, name, start=start, end=stop)
        view = memoryview(data)
        if len(view) != stop - start:
            raise FormatError("/", f"{name}: range {start}-{stop} returned {len(view)} bytes")
        out[start:stop] = view

    await engine.gather_limited(part(s) for s in range(0, size, PART_BYTES))
    return bytes(out)


def fetch_url_bytes(url: str, *, storage_options: Mapping[str, Any] | None = None, max_bytes: int | None = None) -> bytes | None:
    """The whole object at ``url``, fetched as concurrent ranges (obstore when installed,
    else fsspec's ``cat_ranges``); None when it is larger than ``max_bytes``."""
    from annio.io._storage import engine
    from annio.settings import settings

    target = _obstore_target(url, storage_options)
    if target is not None:
        return engine.run(_fetch_obstore(*target, max_bytes))
    fs, path = _fs(url, storage_options)
    size = _size(fs, path)
    if max_bytes is not None and size > max_bytes:
        return None
    if size == 0:
        return b""
    starts = list(range(0, size, PART_BYTES))
    ends = [min(s + PART_BYTES, size) for s in starts]
    kwargs = {"batch_size": settings.io_concurrency} if getattr(fs, "async_impl", False) else {}
    parts = fs.cat_ranges([path] * len(starts), starts, ends, **kwargs)
    for part in parts:
        if isinstance(part, BaseException):
            raise part
    data = b"".join(parts)
    if len(data) != size:
        raise FormatError("/", f"{url}: fetched {len(data)} bytes, expected {size}")
    return data


async def fetch_url_bytes_async(url: str, *, storage_options: Mapping[str, Any] | None = None, max_bytes: int | None = None) -> bytes | None:
    """:func:`fetch_url_bytes` without blocking the running event loop."""
    from annio.io._storage import engine

    target = _obstore_target(url, storage_options)
    if target is not None:
        return await engine.run_async(_fetch_obstore(*target, max_bytes))
    return await asyncio.to_thread(fetch_url_bytes, url, storage_options=storage_options, max_bytes=max_bytes)


def open_h5_image(data: bytes, name: str = "remote.h5ad") -> h5py.File:
    """An ``h5py.File`` (read-only) over the file image ``data``."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(data)
    try:
        fid = h5py.h5f.open(name.encode(), h5py.h5f.ACC_RDONLY, fapl=fapl)
    except OSError as err:
        raise FormatError("/", f"{name} is not a readable HDF5 file (truncated or corrupt?): {err}") from err
    return h5py.File(fid)


@contextmanager
def open_h5_url_read(url: str, *, storage_options: Mapping[str, Any] | None = None, data: bytes | None = None) -> Iterator[h5py.Group]:
    """Yield the HDF5 file at ``url`` for a whole read: fetched at once into memory when at
    most ``settings.remote_prefetch_bytes`` (or given as ``data``), else through a
    block-cached remote file object."""
    from annio.settings import settings

    if data is None:
        data = fetch_url_bytes(url, storage_options=storage_options, max_bytes=settings.remote_prefetch_bytes)
    if data is None:
        from annio.io._storage.remote import open_h5_file_from_url

        with open_h5_file_from_url(url, storage_options=storage_options) as f:
            yield f
        return
    f = open_h5_image(data, url.rsplit("/", 1)[-1] or "remote.h5ad")
    try:
        yield f
    finally:
        f.close()


# ----------------------------------------------------------------------------- row reads
#: HDF5 reads contiguous datasets through a sieve buffer of this many bytes: a prefetched
#: range is extended by it so that a sieve read starting inside the range stays inside.
_SIEVE_BYTES = 64 * 1024
_RANGE_GAP = 64 * 1024
_OPEN: dict[tuple[int, ...], Any] = {}  # HDF5 file number -> its RangeCachedFile (while open)


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

    # -- the file-object protocol h5py uses ----------------------------------------------
    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _find(self, start: int, stop: int) -> bytes | None:
        import bisect

        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0:  # the fetched ranges are merged, so the nearest one is the only candidate
            s, data = self._parts[i]
            if s + len(data) >= stop:
                return data[start - s : stop - s]
        return None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, self._size - self._pos)
        hit = self._find(self._pos, self._pos + n) if self._parts else None
        if hit is None:
            self._f.seek(self._pos)
            hit = self._f.read(n)
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
    def fetch(self, starts: list[int], stops: list[int]) -> None:
        """Fetch the byte ranges concurrently (``cat_ranges``), keep them until :meth:`drop`."""
        from annio.settings import settings

        self._refs += 1
        todo = [(s, e) for s, e in zip(starts, stops, strict=True) if self._find(s, e) is None]
        if not todo:
            return
        starts, stops = [s for s, _ in todo], [e for _, e in todo]
        kwargs = {"batch_size": settings.io_concurrency} if getattr(self._fs, "async_impl", False) else {}
        parts = self._fs.cat_ranges([self._path] * len(starts), starts, stops, **kwargs)
        import bisect

        for start, part in zip(starts, parts, strict=True):
            if isinstance(part, BaseException):
                raise part
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._parts.insert(i, (start, bytes(part)))

    def drop(self) -> None:
        self._refs -= 1
        if self._refs <= 0:
            self._refs, self._starts, self._parts = 0, [], []


def register_open(f: h5py.File, fobj: RangeCachedFile) -> None:
    _OPEN[tuple(f.id.fileno) if isinstance(f.id.fileno, tuple) else (f.id.fileno,)] = fobj


def cached_file_of(ds: Any) -> RangeCachedFile | None:
    """The :class:`RangeCachedFile` under an HDF5 dataset opened from a URL, else None."""
    if not isinstance(ds, h5py.Dataset) or not _OPEN:
        return None
    try:
        no = ds.file.id.fileno
    except (ValueError, RuntimeError):  # closed
        return None
    return _OPEN.get(tuple(no) if isinstance(no, tuple) else (no,))


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
        row = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
        end = offset + int(ds.shape[0]) * row
        return [(offset + int(s) * row, min(end, offset + int(e) * row + _SIEVE_BYTES)) for s, e in zip(starts, stops, strict=True)]
    infos: list[Any] = []
    ds.id.chunk_iter(infos.append)
    if not infos:
        return []
    c0 = int(ds.chunks[0])
    first = np.array([i.chunk_offset[0] for i in infos], dtype=np.int64) // c0
    n_units = -(-int(ds.shape[0]) // c0)
    marks = np.zeros(n_units + 1, np.int64)
    np.add.at(marks, np.clip(starts // c0, 0, n_units), 1)
    np.add.at(marks, np.clip((stops - 1) // c0 + 1, 0, n_units), -1)
    wanted = np.cumsum(marks[:-1]) > 0
    return [(int(i.byte_offset), int(i.byte_offset) + int(i.size)) for i, u in zip(infos, first, strict=True) if u < n_units and wanted[u]]


def coalesce_ranges(ranges: list[tuple[int, int]], gap: int = _RANGE_GAP) -> tuple[list[int], list[int]]:
    """Sorted ranges merged where at most ``gap`` apart, as (starts, stops)."""
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [s for s, _ in out], [e for _, e in out]
