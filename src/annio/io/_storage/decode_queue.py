"""Decompression handed to worker threads while the reading thread goes on.

Reading a frame of thousands of small columns is two kinds of work per column: Python (find
the chunk, read its file, check the shard index) and zstd decompression, which releases the
GIL. Done one after the other they add up; with a :class:`DecodeQueue` the reading thread
only collects ``(frame, destination)`` pairs and worker threads decompress them in batches
meanwhile, so the two overlap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from numcodecs import zstd as _zstd

from annio.errors import FormatError
from annio.settings import settings

__all__ = ["DecodeQueue", "decode_queue"]

_BATCH = 64  # frames per task: a task costs ~20 µs to hand over, a 40 KB frame ~50 µs to decode
_MAX_PENDING_BYTES = 64 << 20  # compressed bytes held by submitted tasks before the reader waits
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=settings.resolved_io_threads, thread_name_prefix="annio-decode"))
    return _POOL[0]


def _decode(batch: list[tuple[Any, np.ndarray, str]]) -> None:
    for frame, out, path in batch:
        try:
            _zstd.decompress(frame, out)
        except (RuntimeError, ValueError, TypeError) as err:
            raise FormatError(path, f"could not decode chunk: {err}") from err


class DecodeQueue:
    """zstd frames waiting to be decompressed into their destinations (see the module).

    Each destination must be C-contiguous, native and exactly the size its frame declares;
    it holds its values only once :meth:`finish` has returned.
    """

    def __init__(self, threads: int) -> None:
        self._threaded = threads > 1
        self._batch: list[tuple[Any, np.ndarray, str]] = []
        self._batch_bytes = 0
        self._running: deque[tuple[Future[None], int]] = deque()
        self._running_bytes = 0

    def add(self, frame: Any, out: np.ndarray, path: str) -> None:
        """Decompress the zstd ``frame`` into ``out`` (``path`` names the element in errors)."""
        self._batch.append((frame, out, path))
        self._batch_bytes += len(frame)
        if len(self._batch) >= _BATCH:
            self._submit()

    def _submit(self) -> None:
        batch, nbytes = self._batch, self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        if not batch:
            return
        if not self._threaded:
            _decode(batch)
            return
        self._running.append((_pool().submit(_decode, batch), nbytes))
        self._running_bytes += nbytes
        while self._running_bytes > _MAX_PENDING_BYTES:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, nbytes = self._running.popleft()
        self._running_bytes -= nbytes
        future.result()

    def finish(self) -> None:
        """Decompress what is left and wait for every frame; the first error is raised."""
        try:
            self._submit()
            while self._running:
                self._wait_oldest()
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Wait for submitted work without raising (the destinations must outlive it)."""
        self._batch = []
        while self._running:
            future, _ = self._running.popleft()
            future.exception()
        self._running_bytes = 0


@contextmanager
def decode_queue() -> Iterator[DecodeQueue]:
    """A :class:`DecodeQueue` whose frames are all decoded when the block ends; on an error
    inside the block the queued work is waited for and dropped."""
    queue = DecodeQueue(settings.resolved_io_threads)
    try:
        yield queue
    except BaseException:
        queue.abandon()
        raise
    queue.finish()
