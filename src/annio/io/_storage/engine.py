"""The async I/O engine: one event loop thread, bounded gathers, sync and async entry points.

All concurrent storage work in annio is a coroutine run on **zarr's I/O event loop** (a
private daemon thread zarr-python starts on first use). Using that loop, and no second one,
means the zarr stores (obstore, fsspec, local) that zarr drives are only ever awaited on the
loop they were made for. Two ways in, over the same coroutines:

* :func:`run` — from synchronous code (annio's sync API); blocks the calling thread, works
  inside a running event loop (Jupyter) because the work runs on the other thread;
* :func:`run_async` — from a coroutine on any loop (``annio.aio``): awaits the result without
  blocking the caller's loop.

:func:`gather_limited` runs many coroutines at once, at most ``settings.io_concurrency`` in
flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["run", "run_async", "gather_limited", "loop", "concurrency", "on_loop"]

T = TypeVar("T")


def loop() -> asyncio.AbstractEventLoop:
    """zarr-python's I/O loop (started if needed)."""
    from zarr.core.sync import _get_loop

    return _get_loop()


def on_loop() -> bool:
    """Whether the caller runs on the I/O loop itself (where blocking on it would hang)."""
    return _on_loop()


def _on_loop() -> bool:
    try:
        return asyncio.get_running_loop() is loop()
    except RuntimeError:
        return False


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the I/O loop and return its result (blocks the calling thread)."""
    if _on_loop():
        coro.close()
        raise RuntimeError("annio.io._storage.engine.run called from the I/O loop itself; await instead")
    return asyncio.run_coroutine_threadsafe(coro, loop()).result()


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the I/O loop from a coroutine running on any loop."""
    if _on_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop()))


def concurrency() -> int:
    """Requests kept in flight at most (``settings.io_concurrency``)."""
    from annio.settings import settings

    return settings.io_concurrency


async def gather_limited(aws: Iterable[Awaitable[T]], limit: int | None = None) -> list[T]:
    """``asyncio.gather`` with at most ``limit`` (default :func:`concurrency`) awaiting at once."""
    sem = asyncio.Semaphore(limit or concurrency())

    async def one(aw: Awaitable[T]) -> T:
        async with sem:
            return await aw

    return list(await asyncio.gather(*(one(a) for a in aws)))
