"""Streamed conversion between formats (h5ad ↔ zarr v2/v3, re-compression; loom, 10x h5,
10x mtx folders and Matrix Market files as sources).

An h5ad/zarr source is opened lazily and written block by block, so peak memory is bounded
by ``settings.write_block_bytes`` (and one zarr shard), not by the size of the data. loom
and 10x ``.h5`` sources are streamed too: their matrices are read one block of cells at a
time (:mod:`annio.io._formats.streamed`). Matrix Market sources (``.mtx``, 10x matrix
folders) are parsed into memory in one pass (their entries may come in any order), straight
into CSR. ``progress(done, total)`` is
called as values are written (``total``: the values stored in X, layers, obsm/varm,
obsp/varp and raw of the source).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

__all__ = ["convert", "source_kind"]

Progress = Callable[[int, int], None]
_COUNTED = ("X", "layers", "obsm", "varm", "obsp", "varp", "raw")


def source_kind(source: Any) -> str:
    """``h5ad``, ``zarr``, ``loom``, ``10x_h5``, ``10x_mtx`` or ``mtx`` for a local path;
    ``h5ad``/``zarr`` for anything else."""
    from annio.io._storage.stores import is_h5ad, is_url

    if not isinstance(source, str | os.PathLike) or is_url(source):
        return "h5ad" if is_h5ad(source) else "zarr"
    path = Path(source)
    name = path.name.lower()
    if name.endswith(".loom"):
        return "loom"
    if name.endswith((".mtx", ".mtx.gz")):
        return "mtx"
    if path.is_dir() and any((path / f).exists() for f in ("matrix.mtx.gz", "matrix.mtx")):
        return "10x_mtx"
    if is_h5ad(path) and path.is_file():
        import h5py

        with h5py.File(path, "r") as f:
            if "matrix" in f and "features" in f["matrix"]:
                return "10x_h5"
            if "obs" not in f and any(isinstance(f[k], h5py.Group) and "barcodes" in f[k] for k in f):
                return "10x_h5"
        return "h5ad"
    return "zarr"


def _count_values(root: Any) -> int:
    """Values stored in the matrices of a stored AnnData, from metadata only."""
    from annio.io._encodings.registry import get_spec
    from annio.io._storage.adapter import StorageArray, StorageGroup, wrap

    def count(node: Any) -> int:
        spec = get_spec(node)
        if isinstance(node, StorageGroup):
            if spec.encoding_type in ("csr_matrix", "csc_matrix") and "data" in node.keys():
                return int(math.prod(node["data"].shape))
            if spec.encoding_type in ("dataframe", "awkward-array"):
                return 0
            return sum(count(node[k]) for k in node.keys())
        if isinstance(node, StorageArray) and node.dtype.kind in "biufc":
            return int(math.prod(node.shape))
        return 0

    root = wrap(root)
    return sum(count(root[k]) for k in _COUNTED if k in root.keys())


def _count_in_memory(adata: Any) -> int:
    import scipy.sparse as sp

    def n(x: Any) -> int:
        if x is None or not hasattr(x, "shape"):
            return 0
        if sp.issparse(getattr(x, "_meta", None)):  # streamed: values unknown until read
            return int(getattr(x, "annio_values", math.prod(x.shape)))
        return int(x.nnz) if sp.issparse(x) else int(math.prod(x.shape))

    total = n(adata.X) + sum(n(v) for v in adata.layers.values())
    return total + sum(n(v) for m in (adata.obsm, adata.varm, adata.obsp, adata.varp) for v in m.values())


def _read_other(source: Any, kind: str) -> Any:
    """loom and 10x h5: opened for streaming (dask X and layers, one block of cells read at
    a time); Matrix Market sources (any entry order) are parsed into memory in one pass."""
    from annio.io import read_10x_mtx, read_mtx
    from annio.io._formats.streamed import stream_10x_h5, stream_loom

    readers = {"loom": stream_loom, "10x_h5": stream_10x_h5, "10x_mtx": read_10x_mtx, "mtx": read_mtx}
    return readers[kind](source)


def convert(
    source: Any,
    target: str | os.PathLike,
    *,
    zarr_format: Literal[2, 3] | None = None,
    compression: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> None:
    """Convert ``source`` to ``target`` (h5ad or zarr; ``.loom`` writes loom).

    Parameters
    ----------
    source
        An .h5ad file or zarr store (local or a URL; opened lazily, streamed), a local
        ``.loom`` file, 10x ``.h5`` file, 10x matrix folder or ``.mtx(.gz)`` file, or an
        AnnData object in memory (annio's or ``anndata``'s, written without copying its data).
    target
        A path ending in ``.h5ad`` writes HDF5, ``.loom`` loom; anything else (or ``.zip``)
        writes zarr.
    zarr_format
        2 or 3 for zarr output (default: ``settings.zarr_write_format``).
    compression
        Compression of h5ad output (e.g. ``"gzip"``).
    storage_options
        For a remote ``source``.
    progress
        Called as ``progress(done, total)`` while values are written, and once at the end
        with ``done == total``.
    """
    from annio._bridge import is_anndata
    from annio._core import AnnData
    from annio.io._encodings.blocks import progress_hook
    from annio.io._files import write_h5ad, write_zarr
    from annio.io._formats.loom import write_loom
    from annio.io._storage.stores import is_h5ad, open_read

    in_memory = isinstance(source, AnnData) or is_anndata(source)
    kind = "memory" if in_memory else source_kind(source)
    lazy = None
    if kind in ("h5ad", "zarr"):
        from annio._lazy import read_lazy

        total = 0
        if progress is not None:
            with open_read(source, storage_options=storage_options) as root:
                total = _count_values(root)
        lazy = data = read_lazy(source, storage_options=storage_options)
    else:
        data = source if in_memory else _read_other(source, kind)
        total = _count_in_memory(data)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done = min(total, done + n)
        progress(done, total)

    try:
        with progress_hook(step) if progress is not None else nullcontext():
            if str(target).lower().endswith(".loom"):
                write_loom(target, data.to_memory() if lazy is not None else data)
            elif is_h5ad(target):
                write_h5ad(target, data, compression=compression)
            else:
                write_zarr(target, data, zarr_format=zarr_format)
    finally:
        close = getattr(getattr(lazy, "file", None), "close", None)
        if close is not None:
            close()
    if progress is not None:
        progress(total, total)
