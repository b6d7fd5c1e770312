"""Implementation of :mod:`annio.aio` (see there)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any


async def read_zarr(store: Any, *, storage_options: Mapping[str, Any] | None = None) -> Any:
    """Async :func:`annio.read_zarr`."""
    from annio.io._files import zarr_read_parts
    from annio.io._storage import prefetch
    from annio.io._storage.stores import open_zarr_read, zarrs_context

    with ExitStack() as stack:
        group = await asyncio.to_thread(stack.enter_context, open_zarr_read(store, storage_options=storage_options))
        keys = prefetch.plan_tree(group)

        def decode() -> Any:
            with zarrs_context():
                return zarr_read_parts(group)

        return await prefetch.prefetching_async(group, keys, decode)


async def read_h5ad(
    filename: Any,
    backed: Any = None,
    *,
    as_sparse: str | Sequence[str] = (),
    as_sparse_fmt: Any = None,
    chunk_size: int = 6000,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Async :func:`annio.read_h5ad`; a URL is fetched with concurrent range requests."""
    from annio.io._files import _read_h5ad_parts
    from annio.io._files import read_h5ad as sync_read_h5ad
    from annio.io._root import normalize_as_sparse, sparse_format
    from annio.io._storage import h5_remote
    from annio.io._storage.stores import is_url
    from annio.settings import settings

    if backed not in (None, False) or not is_url(filename):
        return await asyncio.to_thread(sync_read_h5ad, filename, backed, as_sparse=as_sparse, as_sparse_fmt=as_sparse_fmt,
                                       chunk_size=chunk_size, storage_options=storage_options)
    kwargs = dict(as_sparse=normalize_as_sparse(as_sparse), sparse_fmt=sparse_format(as_sparse_fmt), chunk_size=chunk_size)
    data = await h5_remote.fetch_url_bytes_async(filename, storage_options=storage_options, max_bytes=settings.remote_prefetch_bytes)
    return await asyncio.to_thread(_read_h5ad_parts, filename, storage_options, kwargs, data)


async def read_lazy(store: Any, **kwargs: Any) -> Any:
    """Async :func:`annio.experimental.read_lazy` (its prefetch runs off the caller's loop)."""
    from annio._lazy import read_lazy as sync_read_lazy

    return await asyncio.to_thread(sync_read_lazy, store, **kwargs)


async def read_elem_lazy(elem: Any, **kwargs: Any) -> Any:
    """Async :func:`annio.experimental.read_elem_lazy`."""
    from annio._lazy import read_elem_lazy as sync_read_elem_lazy

    return await asyncio.to_thread(sync_read_elem_lazy, elem, **kwargs)


async def read_elem(elem: Any) -> Any:
    """Async :func:`annio.io.read_elem`: the element's objects (from a remote store) are
    fetched concurrently first."""
    from annio.io._encodings.registry import Reader
    from annio.io._storage import prefetch

    return await prefetch.prefetching_async(elem, prefetch.plan_tree(elem), lambda: Reader().read_elem(elem))


async def write_elem(store: Any, k: str, elem: Any, **kwargs: Any) -> None:
    """Async :func:`annio.io.write_elem`."""
    from annio.io import write_elem as sync_write_elem

    await asyncio.to_thread(sync_write_elem, store, k, elem, **kwargs)


async def write_zarr(store: Any, adata: Any, **kwargs: Any) -> None:
    """Async :func:`annio.write_zarr`."""
    from annio.io import write_zarr as sync_write_zarr

    await asyncio.to_thread(sync_write_zarr, store, adata, **kwargs)


async def write_h5ad(filepath: Any, adata: Any, **kwargs: Any) -> None:
    """Async :func:`annio.write_h5ad`."""
    from annio.io import write_h5ad as sync_write_h5ad

    await asyncio.to_thread(sync_write_h5ad, filepath, adata, **kwargs)


async def to_memory(obj: Any, copy: bool = False) -> Any:
    """``await obj.to_memory_async()`` for a lazy AnnData or frame (or ``obj.to_memory()``
    of anything else that has it, in a worker thread)."""
    method = getattr(obj, "to_memory_async", None)
    if method is not None:
        return await method(copy=copy)
    return await asyncio.to_thread(obj.to_memory)
