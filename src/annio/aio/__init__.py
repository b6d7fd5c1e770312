"""annio's async API: the readers and writers as coroutines, for code running in an event
loop (Jupyter, web servers, pipelines reading many stores at once).

>>> import asyncio, annio.aio
>>> async def main(urls):
...     return await asyncio.gather(*(annio.aio.read_zarr(u) for u in urls))   # doctest: +SKIP

Every function takes the arguments of its sync namesake and returns the same object. None
blocks the running loop:

* remote reads await their requests on annio's I/O loop (zarr's event loop thread), where
  the objects a read needs are fetched concurrently (``settings.io_concurrency`` in flight,
  see :mod:`annio.io._storage.prefetch`); decoding then runs in a worker thread;
* whole remote ``.h5ad`` files are fetched as concurrent large ranges
  (:mod:`annio.io._storage.h5_remote`) before HDF5 opens them from memory;
* everything else (local files, writes, lazy opens) runs the sync implementation in a
  worker thread.

The sync API is the same code: ``annio.read_zarr`` runs the same fetch with
:func:`annio.io._storage.engine.run` and then the same decoders, so sync and async reads give
identical objects. Lazily read objects also have ``await lazy.to_memory_async()``
(:class:`annio.AnnData` and :class:`annio.experimental.Dataset2D`).
"""

from annio._exports import lazy_face as _lazy_face

__all__ = [
    "read_zarr",
    "read_h5ad",
    "read_lazy",
    "read_elem",
    "read_elem_lazy",
    "write_elem",
    "write_zarr",
    "write_h5ad",
    "to_memory",
]

# imported on first access (the implementation imports asyncio)
__getattr__, __dir__ = _lazy_face(__name__, {name: f"annio.aio._api:{name}" for name in __all__}, __all__)
