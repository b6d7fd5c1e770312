"""Streamed conversion between formats (h5ad ↔ zarr v2/v3, re-compression).

The source is opened lazily and written block by block, so peak memory is bounded by
``settings.write_block_bytes`` (and one zarr shard), not by the size of the data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["convert"]


def convert(
    source: Any,
    target: str | os.PathLike,
    *,
    zarr_format: Literal[2, 3] | None = None,
    compression: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Convert ``source`` (an .h5ad file or zarr store, local or a URL, or an AnnData object) to ``target``.

    Parameters
    ----------
    source
        What :func:`annio.experimental.read_lazy` opens (streamed), or an AnnData object in
        memory (annio's or ``anndata``'s, written without copying its data).
    target
        A path ending in ``.h5ad`` writes HDF5; anything else (or ``.zip``) writes zarr.
    zarr_format
        2 or 3 for zarr output (default: ``settings.zarr_write_format``).
    compression
        Compression of h5ad output (e.g. ``"gzip"``).
    storage_options
        For a remote ``source``.
    """
    from annio.io._files import write_h5ad, write_zarr
    from annio.io._storage.stores import is_h5ad
    from annio._bridge import is_anndata
    from annio._core import AnnData
    from annio._lazy import read_lazy

    if isinstance(source, AnnData) or is_anndata(source):  # an object in memory: written as it is
        if is_h5ad(target):
            write_h5ad(target, source, compression=compression)
        else:
            write_zarr(target, source, zarr_format=zarr_format)
        return
    lazy = read_lazy(source, storage_options=storage_options)
    try:
        if is_h5ad(target):
            write_h5ad(target, lazy, compression=compression)
        else:
            write_zarr(target, lazy, zarr_format=zarr_format)
    finally:
        close = getattr(getattr(lazy, "file", None), "close", None)
        if close is not None:
            close()
