"""Remote HDF5 files read in row selections: a file object answering reads from byte ranges
fetched ahead concurrently, and the byte ranges of a dataset's rows (row bytes of contiguous
datasets, whole chunks of chunked ones, found from the HDF5 chunk index).

:func:`annio.io._storage.remote.open_h5_file_from_url` opens every remote HDF5 file through
a :class:`RangeCachedFile`; lazy loads (:mod:`annio._lazy.plans`) find it with
:func:`cached_file_of`, fetch the ranges their rows need with :meth:`RangeCachedFile.fetch`
and read as usual.
"""

from __future__ import annotations

from typing import Any

import h5py

__all__ = ["RangeCachedFile", "register_open", "cached_file_of", "dataset_byte_ranges", "coalesce_ranges"]


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

        todo = [(s, e) for s, e in zip(starts, stops, strict=True) if self._find(s, e) is None]
        if not todo:
            self._refs += 1
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
        self._refs += 1  # only once the fetch succeeded: a failed one is never dropped

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
