"""Byte copies between uncompressed 1-D HDF5 datasets of local files, done by the kernel.

An uncompressed dataset (contiguous, or chunked with every chunk allocated) stores element
``i`` at a file offset known from its layout, so copying a range of one such dataset into
another of the same dtype needs no decoding: the bytes move file to file with
``os.copy_file_range`` (page cache to page cache, never through Python), or ``pread``/``pwrite``
where the kernel cannot. Targets are created with their chunks allocated up front
(:func:`preallocated`) and are then only ever written here, never through HDF5, so HDF5's
caches never hold stale chunks of them; HDF5 still writes their metadata.

Only plain cases qualify (the ``sec2`` driver, no user block, no filters or external
storage, native little-endian numbers); anything else returns None/False and the caller
reads and writes through h5py as usual. Part of the storage adapter: encodings never see
the backend.
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from annio.io._storage.adapter import StorageArray, StorageGroup
from annio.io._storage.direct_write import DirectSink
from annio.io._storage.h5_pread import chunk_addresses, plain_dataset, plain_file

__all__ = ["preallocated", "RawTarget", "RawSource", "plain_dataset", "chunk_addresses"]

_PIECE = 8 << 20  # bytes per pread/pwrite step when copy_file_range is unavailable


class _Extents:
    """Where the elements of a plain dataset lie in its file: ``offsets[k]`` is the byte
    offset of element ``k * step`` (chunk ``k``; one entry for a contiguous dataset)."""

    def __init__(self, ds: h5py.Dataset) -> None:
        self.itemsize = ds.dtype.itemsize
        self.length = int(ds.shape[0])
        self.step = int(ds.chunks[0]) if ds.chunks is not None else max(1, self.length)
        offsets = chunk_addresses(ds, -(-self.length // self.step) if ds.chunks is not None else 1, whole_only=True)
        self.offsets = None if (offsets < 0).any() else offsets  # unallocated chunks read as fill

    def runs(self, start: int, stop: int) -> list[tuple[int, int]]:
        """``(file offset, nbytes)`` covering elements ``start:stop``, adjacent runs merged."""
        assert self.offsets is not None
        out: list[tuple[int, int]] = []
        pos = start
        while pos < stop:
            k = pos // self.step
            end = min(stop, (k + 1) * self.step)
            offset = int(self.offsets[k]) + (pos - k * self.step) * self.itemsize
            nbytes = (end - pos) * self.itemsize
            if out and out[-1][0] + out[-1][1] == offset:
                out[-1] = (out[-1][0], out[-1][1] + nbytes)
            else:
                out.append((offset, nbytes))
            pos = end
        return out


class RawSource:
    """Ranges of a plain 1-D dataset of a file opened read-only, read with ``preadv`` from
    chunk offsets listed once (``H5Dchunk_iter`` per dataset, not per range)."""

    def __init__(self, ds: h5py.Dataset, extents: _Extents) -> None:
        self.name, self.dtype, self.extents = ds.name, ds.dtype, extents
        fd = os.open(ds.file.filename, os.O_RDONLY)
        self.fd = fd
        self._closer = weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls, node: StorageArray) -> RawSource | None:
        """A reader of ``node``, or None when it is not a read-only :func:`plain_dataset`
        with every chunk written."""
        ds = node.raw if node.backend == "hdf5" else None
        if ds is None or not plain_dataset(ds, read_only=True):
            return None
        extents = _Extents(ds)
        return None if extents.offsets is None else cls(ds, extents)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Elements ``start:stop`` (a new array)."""
        out = np.empty(max(0, stop - start), dtype=self.dtype)
        view = memoryview(out).cast("B")
        done = 0
        for offset, nbytes in self.extents.runs(start, min(stop, self.extents.length)):
            while nbytes:
                n = os.preadv(self.fd, [view[done : done + nbytes]], offset)
                if n <= 0:
                    from annio.errors import FormatError

                    raise FormatError(self.name, f"the file ends before byte {offset + nbytes}")
                done, offset, nbytes = done + n, offset + n, nbytes - n
        if done != out.nbytes:
            from annio.errors import FormatError

            raise FormatError(self.name, f"elements {start}:{stop} lie beyond its length {self.extents.length}")
        return out

    def close(self) -> None:
        """Close the file descriptor."""
        self._closer()


def preallocated(group: StorageGroup, key: str, length: int, dtype: Any, chunk: int) -> RawTarget | None:
    """A new uncompressed chunked dataset ``key`` of ``length`` elements (resizable, as the
    streamed writers make them) with all chunks allocated and nothing written, to be filled
    through the returned :class:`RawTarget`; None when ``group`` is not in a plain local HDF5
    file (then nothing is created)."""
    raw = group.raw
    dtype = np.dtype(dtype)
    if group.backend != "hdf5" or length <= 0 or dtype.kind not in "biuf" or not plain_file(raw.file) or raw.file.userblock_size:
        return None
    if key in raw:
        del raw[key]
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    ds = raw.create_dataset(
        key, shape=(length,), dtype=dtype, chunks=(max(1, chunk),), maxshape=(None,), dcpl=plist, fill_time="never", rdcc_nbytes=0
    )
    target = RawTarget(ds)
    if target.extents.offsets is None:  # pragma: no cover - early allocation always allocates
        del raw[key]
        return None
    return target


class RawTarget:
    """A preallocated plain dataset (see :func:`preallocated`) filled by byte copies."""

    def __init__(self, ds: h5py.Dataset) -> None:
        self.array = StorageArray(ds)
        self.dtype = ds.dtype
        self.extents = _Extents(ds)
        self._fd = os.open(ds.file.filename, os.O_WRONLY)
        # the copies arrive in increasing file order: staged and written past the page cache
        self._sink = DirectSink.open(ds.file.filename, self._fd)
        self._sources: dict[tuple[str, str], tuple[int, _Extents | None]] = {}
        self._buffer = np.empty(0, dtype=self.dtype)

    def close(self) -> None:
        """Write what is staged and close the file descriptors this target opened."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()
        for fd, _ in self._sources.values():
            if fd >= 0:
                os.close(fd)
        self._sources.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._buffer = np.empty(0, dtype=self.dtype)

    def __enter__(self) -> RawTarget:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _source(self, node: StorageArray) -> tuple[int, _Extents | None]:
        ds = node.raw
        key = (ds.file.filename, ds.name)
        found = self._sources.get(key)
        if found is None:
            extents = _Extents(ds) if plain_dataset(ds) and ds.dtype == self.dtype else None
            if extents is not None and extents.offsets is None:
                extents = None
            found = self._sources[key] = (os.open(ds.file.filename, os.O_RDONLY) if extents is not None else -1, extents)
        return found

    def copy_from(self, node: StorageArray, start: int, stop: int, at: int) -> bool:
        """Copy elements ``start:stop`` of ``node`` to positions ``at:`` of the target
        without reading them into memory; False (nothing copied) when ``node`` is not a plain
        HDF5 dataset of the target's dtype."""
        if node.backend != "hdf5" or stop <= start:
            return stop <= start
        fd, extents = self._source(node)
        if extents is None or stop > extents.length:
            return False
        sources = extents.runs(start, stop)
        i, (src_offset, src_left) = 0, sources[0]
        for dst_offset, dst_left in self.extents.runs(at, at + stop - start):
            while dst_left:
                if not src_left:
                    i += 1
                    src_offset, src_left = sources[i]
                n = min(src_left, dst_left)
                if self._sink is not None:
                    self._sink.copy_from(fd, src_offset, dst_offset, n)
                else:
                    _copy(fd, self._fd, src_offset, dst_offset, n)
                src_offset, src_left, dst_offset, dst_left = src_offset + n, src_left - n, dst_offset + n, dst_left - n
        return True

    def copy_checked(self, node: StorageArray, start: int, stop: int, at: int, check: Callable[[np.ndarray], None]) -> bool:
        """:meth:`copy_from`, with ``check`` called on the copied values as they lie in the
        source file (mapped read-only, never copied into Python), in a second thread while
        the kernel copies; False (nothing copied or checked) where :meth:`copy_from` would
        refuse. An exception of ``check`` is raised after the copy."""
        if node.backend != "hdf5" or stop <= start:
            return stop <= start
        fd, extents = self._source(node)
        if extents is None or stop > extents.length:
            return False
        checked = _checker().submit(_check_mapped, fd, extents.runs(start, stop), self.dtype, check)
        try:
            copied = self.copy_from(node, start, stop, at)
        finally:
            checked.result()
        return copied

    def read(self, node: StorageArray, start: int, stop: int) -> np.ndarray:
        """Elements ``start:stop`` of ``node``: straight from the file (one ``preadv`` per
        run) when it is a plain HDF5 dataset of the target's dtype, else through h5py/zarr.
        The array returned by a direct read is overwritten by the next one."""
        fd, extents = self._source(node) if node.backend == "hdf5" else (-1, None)
        if extents is None or stop > extents.length:
            return np.asarray(node.read(slice(start, stop)))
        if self._buffer.size < stop - start:  # reused: fresh pages for every block cost page faults
            self._buffer = np.empty(stop - start, dtype=self.dtype)
        out = self._buffer[: stop - start]
        view = memoryview(out).cast("B")
        done = 0
        for offset, nbytes in extents.runs(start, stop):
            while nbytes:
                n = os.preadv(fd, [view[done : done + nbytes]], offset)
                if n <= 0:
                    raise OSError(f"{node.path}: the file ends before byte {offset + nbytes}")
                done, offset, nbytes = done + n, offset + n, nbytes - n
        return out

    def write(self, at: int, values: np.ndarray) -> None:
        """Write ``values`` (converted to the target's dtype) to positions ``at:``."""
        data = np.ascontiguousarray(values, dtype=self.dtype).reshape(-1)
        view = memoryview(data).cast("B")
        done = 0
        for offset, nbytes in self.extents.runs(at, at + len(data)):
            if self._sink is not None:
                self._sink.write(offset, view[done : done + nbytes])
            else:
                _write_all(self._fd, view[done : done + nbytes], offset)
            done += nbytes


_CHECKER: list[ThreadPoolExecutor] = []


def _checker() -> ThreadPoolExecutor:
    """The one worker thread the checks of :meth:`RawTarget.copy_checked` run in."""
    if not _CHECKER:
        _CHECKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="annio-h5raw-check"))
    return _CHECKER[0]


def _check_mapped(fd: int, runs: list[tuple[int, int]], dtype: np.dtype, check: Callable[[np.ndarray], None]) -> None:
    """``check`` on each run of ``fd`` (``(file offset, nbytes)``), mapped read-only."""
    page = mmap.ALLOCATIONGRANULARITY
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    for offset, nbytes in runs:
        base = offset - offset % page
        mapped = mmap.mmap(fd, nbytes + offset - base, flags=flags, prot=mmap.PROT_READ, offset=base)
        failure = None
        try:
            check(np.frombuffer(mapped, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset - base))
        except Exception as exc:  # its traceback holds views of the map: raised without it
            failure = exc.with_traceback(None)
        mapped.close()
        if failure is not None:
            raise failure


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    while len(view):
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _copy(src: int, dst: int, src_offset: int, dst_offset: int, nbytes: int) -> None:
    while nbytes > 0:
        try:
            n = os.copy_file_range(src, dst, nbytes, src_offset, dst_offset)
        except (OSError, AttributeError):  # another filesystem, an old kernel, no such call
            n = _copy_through_memory(src, dst, src_offset, dst_offset, nbytes)
        if n <= 0:
            raise OSError(f"the source file ends before byte {src_offset + nbytes}")
        src_offset, dst_offset, nbytes = src_offset + n, dst_offset + n, nbytes - n


def _copy_through_memory(src: int, dst: int, src_offset: int, dst_offset: int, nbytes: int) -> int:
    buffer = os.pread(src, min(nbytes, _PIECE), src_offset)
    if buffer:
        _write_all(dst, memoryview(buffer), dst_offset)
    return len(buffer)
