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

__all__ = ["write_file"]

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
