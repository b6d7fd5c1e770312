"""Writing large output files past the page cache (``O_DIRECT``).

A buffered write copies every byte into page-cache pages, and on a virtual machine whose
free memory goes back to its host (free page reporting, memory ballooning) each such page is
fresh host memory, faulted in on first touch: on the benchmark machine buffered writes of
new files ran at 0.4 GB/s, ``O_DIRECT`` writes of the same bytes at 1.8 GB/s, device write
included. The bytes are gathered into an aligned buffer that each thread reuses (so it stays
mapped), written in aligned blocks; the tail shorter than one block is written after
``O_DIRECT`` is cleared on the descriptor.

Where the file system refuses ``O_DIRECT`` (tmpfs, some FUSE mounts) the file is written the
ordinary way; ``settings.direct_write_min_bytes = 0`` turns direct writes off.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from annio.settings import settings

__all__ = ["DirectSink", "write_file"]

#: Alignment of offsets, lengths and memory that every Linux block device accepts.
_ALIGN = 4096
#: Size of the per-thread staging buffer.
_BUFFER_BYTES = 8 << 20
_DIRECT = getattr(os, "O_DIRECT", 0)
#: Errors meaning "this file system does not do O_DIRECT" (at open or at the first write).
_UNSUPPORTED = {errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}

_local = threading.local()
_refused: set[int] = set()  # st_dev of file systems that refused O_DIRECT


def write_file(path: str | os.PathLike, parts: Sequence[bytes | bytearray | memoryview]) -> bool:
    """Write the concatenation of ``parts`` to ``path`` (created or truncated).

    Returns True when the file was written with ``O_DIRECT``, False when written buffered
    (small file, direct writes off, or the file system refused them).
    """
    total = sum(memoryview(p).nbytes for p in parts)
    threshold = settings.direct_write_min_bytes
    if _DIRECT and threshold and total >= max(threshold, _ALIGN):
        try:
            dev = os.stat(Path(path).parent).st_dev
        except OSError:
            dev = None
        if dev not in _refused:
            try:
                _write_direct(path, parts)
                return True
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                if dev is not None:
                    _refused.add(dev)
    with open(path, "wb") as f:
        for part in parts:
            f.write(part)
    return False


def _staging() -> tuple[mmap.mmap, memoryview]:
    """This thread's page-aligned staging buffer (an anonymous mapping is page-aligned)."""
    found = getattr(_local, "buffer", None)
    if found is None:
        buf = mmap.mmap(-1, _BUFFER_BYTES)
        found = _local.buffer = (buf, memoryview(buf))
    return found


def _write_all(fd: int, view: memoryview) -> None:
    while view.nbytes:
        n = os.write(fd, view)
        view = view[n:]


def _write_direct(path: str | os.PathLike, parts: Sequence[bytes | bytearray | memoryview]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | _DIRECT, 0o666)
    try:
        _, view = _staging()
        filled = 0
        for part in parts:
            source = memoryview(part).cast("B")
            while source.nbytes:
                take = min(_BUFFER_BYTES - filled, source.nbytes)
                view[filled : filled + take] = source[:take]
                filled += take
                source = source[take:]
                if filled == _BUFFER_BYTES:
                    _write_all(fd, view)
                    filled = 0
        aligned = filled - filled % _ALIGN
        if aligned:
            _write_all(fd, view[:aligned])
        if filled > aligned:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_DIRECT)
            _write_all(fd, view[aligned:filled])
    finally:
        os.close(fd)


class DirectSink:
    """Positioned writes into an existing file, passed to the disk with ``O_DIRECT`` in
    aligned blocks when they arrive in increasing, mostly contiguous order (a dataset's
    chunks filled one after another).

    Bytes are staged in an aligned buffer that starts at an aligned file offset. A write
    that does not continue the staged bytes flushes them; the staged block's unaligned
    pieces at either end (at most one block each) go through ``fallback_fd``, an ordinary
    descriptor of the same file, so bytes outside the writes are never touched. Use
    :meth:`open` (None where direct writes are off or refused) and close it to flush.
    """

    def __init__(self, fd: int, fallback_fd: int) -> None:
        self._fd = fd
        self._fallback = fallback_fd
        self._buffer = mmap.mmap(-1, _BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._base = 0  # file offset of the buffer's first byte (aligned)
        self._start = 0  # first staged byte in the buffer (> 0 only for an unaligned start)
        self._filled = 0  # staged bytes end here in the buffer

    @classmethod
    def open(cls, path: str | os.PathLike, fallback_fd: int) -> DirectSink | None:
        """A sink on ``path`` (which must exist), or None where ``O_DIRECT`` is off or
        refused by the file system."""
        if not _DIRECT or not settings.direct_write_min_bytes:
            return None
        try:
            dev = os.stat(path).st_dev
            if dev in _refused:
                return None
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | _DIRECT)
        except OSError:
            return None
        return cls(fd, fallback_fd)

    def _position(self, offset: int) -> None:
        """Make ``offset`` the end of the staged bytes, flushing what does not lead there."""
        if self._filled > self._start and self._base + self._filled == offset:
            return
        self.flush()
        self._base = offset - offset % _ALIGN
        self._start = self._filled = offset - self._base

    def _room(self) -> memoryview:
        if self._filled == _BUFFER_BYTES:
            self._flush_full()
        return self._view[self._filled :]

    def _flush_full(self) -> None:
        """Write a full buffer: its unaligned head (if any) ordinarily, the rest direct."""
        self._write_span(self._start, _BUFFER_BYTES)
        self._base += _BUFFER_BYTES
        self._start = self._filled = 0

    def _write_span(self, lo: int, hi: int) -> None:
        """Write buffer bytes ``lo:hi`` to their file offsets: whole aligned blocks direct,
        partial blocks at the ends through the fallback descriptor."""
        first = -(-lo // _ALIGN) * _ALIGN
        last = hi - hi % _ALIGN
        if first >= last:
            _pwrite_all(self._fallback, self._view[lo:hi], self._base + lo)
            return
        if first > lo:
            _pwrite_all(self._fallback, self._view[lo:first], self._base + lo)
        try:
            _pwrite_all(self._fd, self._view[first:last], self._base + first)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            _pwrite_all(self._fallback, self._view[first:last], self._base + first)
        if hi > last:
            _pwrite_all(self._fallback, self._view[last:hi], self._base + last)

    def write(self, offset: int, data: memoryview) -> None:
        """Write ``data`` at file ``offset``."""
        data = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        self._position(offset)
        while data.nbytes:
            room = self._room()
            take = min(room.nbytes, data.nbytes)
            room[:take] = data[:take]
            self._filled += take
            data = data[take:]

    def copy_from(self, src_fd: int, src_offset: int, offset: int, nbytes: int) -> None:
        """Copy ``nbytes`` of ``src_fd`` from ``src_offset`` to file ``offset`` (read
        straight into the staging buffer)."""
        self._position(offset)
        while nbytes:
            room = self._room()
            take = min(room.nbytes, nbytes)
            n = os.preadv(src_fd, [room[:take]], src_offset)
            if n <= 0:
                raise OSError(f"the source file ends before byte {src_offset + nbytes}")
            self._filled += n
            src_offset, nbytes = src_offset + n, nbytes - n

    def flush(self) -> None:
        """Write the staged bytes."""
        if self._filled > self._start:
            self._write_span(self._start, self._filled)
        self._start = self._filled = 0

    def close(self) -> None:
        """Flush and close the direct descriptor (not the fallback one)."""
        try:
            self.flush()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view.nbytes:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
