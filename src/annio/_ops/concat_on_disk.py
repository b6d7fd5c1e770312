"""``concat_on_disk``: concatenate stored AnnData objects into a new store without loading
them.

Each input is opened lazily (:func:`annio.experimental.read_lazy`), the lazy objects are
concatenated with :func:`annio.concat` (the same semantics as in memory, every option), and
the lazy result is written by the streamed writers: dense arrays in blocks aligned with the
output's chunks/shards, sparse matrices block by block along the major axis (``indptr`` int64
only when the total nnz needs it), frame columns in row blocks. Memory is bounded by
``settings.write_block_bytes`` (set from ``max_loaded_elems``) and the inputs' chunk sizes, not
by the data size. Paths are written to a hidden sibling and moved into place at the end, so a
failure leaves neither a partial output nor a damaged existing file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping
from contextlib import ExitStack
from typing import Any, Literal

# Imported with this module (when ``concat_on_disk`` is first looked up), not in the call:
# the readers and writers the call needs, and dask, which the lazy concatenation builds on.
import dask
import dask.array
import h5py
import zarr

from annio._core.scheduler import dask_scheduler
from annio._lazy import read_lazy
from annio._ops import concat_direct
from annio._ops.concat import DEFAULT_JOIN, _check_axis, concat
from annio._ops.concat_direct import ConcatenatedDense, ConcatenatedSparse
from annio._ops.concat_elements import is_dask
from annio.io._files import write_h5ad, write_zarr
from annio.io._storage.stores import is_h5ad
from annio.settings import settings

__all__ = ["concat_on_disk"]

_STREAMED = ("layers", "obsm", "varm", "obsp", "varp")
#: Block bound of a call without ``max_loaded_elems`` (when ``settings.write_block_bytes`` is
#: larger). Blocks smaller than a medium dataset's arrays keep the peak memory the same for
#: any larger input; 16 MiB blocks (4 MiB zarr shards of ``data``/``indices``) move data as
#: fast as larger ones.
DEFAULT_BLOCK_BYTES = 16 << 20


def _with_progress(adata: Any, progress: Callable[[int, int], None]) -> tuple[Any, int]:
    """Make every large array of ``adata`` report its blocks to ``progress(done, total)``.

    Progress counts rows (major positions for sparse matrices): each block tells how many it
    covered, whatever block boundaries the writer picks, so ``done`` ends exactly at ``total``.
    A dask block computed twice counts once.
    """
    total = 0
    done = [0]
    elements = [(adata, "X", adata.X)] + [
        (getattr(adata, attr), k, getattr(adata, attr)[k]) for attr in _STREAMED for k in list(getattr(adata, attr).keys()) if k is not None
    ]

    def tick(n: int) -> None:
        done[0] += int(n)
        progress(done[0], total)

    for owner, key, value in elements:
        if isinstance(value, ConcatenatedSparse):
            total += value.shape[0 if value.format == "csr" else 1]
            value.on_block = tick
        elif isinstance(value, ConcatenatedDense):
            total += value.shape[0]
            value.on_block = tick
        elif is_dask(value):
            total += value.shape[0] * math.prod(len(c) for c in value.chunks[1:]) if value.ndim else 1
            wrapped = value.map_blocks(_block_counter(tick), dtype=value.dtype, meta=value._meta)
            if owner is adata:
                adata.X = wrapped
            else:
                owner[key] = wrapped
    return adata, total


def _block_counter(tick: Callable[[int], None]) -> Callable[..., Any]:
    seen: set[Any] = set()

    def count(block: Any, block_info: Any = None) -> Any:
        where = None if not block_info else tuple(block_info[None]["chunk-location"])
        if where is None or where not in seen:
            if where is not None:
                seen.add(where)
            tick(block.shape[0] if getattr(block, "ndim", 0) else 1)
        return block

    return count


def concat_on_disk(
    in_files: Collection[Any] | Mapping[str, Any],
    out_file: str | os.PathLike | Any,
    *,
    max_loaded_elems: int | None = None,
    axis: Literal["obs", 0, "var", 1] = 0,
    join: Literal["inner", "outer"] = DEFAULT_JOIN,
    merge: Any = None,
    uns_merge: Any = None,
    label: str | None = None,
    keys: Collection[str] | None = None,
    index_unique: str | None = None,
    fill_value: Any = None,
    pairwise: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Concatenate stored AnnData objects (``.h5ad`` files, zarr v2/v3 stores, or open
    h5py/zarr groups, mixed freely) into ``out_file`` without loading them into memory.

    What is written, read back, equals :func:`annio.concat` of the inputs read into memory,
    for every option.

    Parameters
    ----------
    in_files
        Paths or groups, or a mapping ``{key: path}`` (its keys become ``keys``).
    out_file
        A path (``*.h5ad`` writes HDF5, anything else zarr in
        ``settings.zarr_write_format``, sharded for v3) or an open h5py/zarr group.
    max_loaded_elems
        Bound on the elements held in memory per written block (sets
        ``settings.write_block_bytes`` to 8 bytes per element for the call). Default:
        blocks of ``min(settings.write_block_bytes, 16 MiB)``, so the peak memory does not
        grow with the data. zarr v3 shards of the output stay within the same bound
        (``settings.shard_target_bytes`` is capped for the call).
    axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise
        As for :func:`annio.concat`.
    progress
        Called as ``progress(done, total)`` after each block of the large arrays (``X``,
        layers, obsm/varm, obsp/varp) is written; both count rows (major positions of sparse
        matrices) summed over those arrays, and the last call has ``done == total``.
    """
    if isinstance(in_files, Mapping):
        if keys is not None:
            raise TypeError("Cannot specify categories in both mapping keys and using `keys`. Only specify this once.")
        keys, in_files = list(in_files.keys()), list(in_files.values())
    in_files = list(in_files)
    if not in_files:
        raise ValueError("No objects to concatenate.")
    if max_loaded_elems is None:
        block_bytes = min(settings.write_block_bytes, DEFAULT_BLOCK_BYTES)
    elif int(max_loaded_elems) < 1:
        raise ValueError(f"max_loaded_elems must be positive, got {max_loaded_elems!r}")
    else:
        block_bytes = max(2**16, int(max_loaded_elems) * 8)
    # A zarr shard is encoded whole, so a shard larger than the block would hold a dense
    # array (obsm, a dense layer) in memory at once: shards stay within the block too.
    overrides = {"write_block_bytes": block_bytes, "shard_target_bytes": min(settings.shard_target_bytes, max(block_bytes, settings.chunk_target_bytes))}
    with ExitStack() as stack:
        stack.enter_context(settings.override(**overrides))
        scheduler = dask_scheduler()
        if scheduler:  # the threaded scheduler named: dask looks for no distributed client
            stack.enter_context(dask.config.set(scheduler))
        lazies = []
        for f in in_files:
            lazy = read_lazy(f)
            file = getattr(lazy, "file", None)
            if getattr(file, "close", None) is not None:
                stack.callback(file.close)
            lazies.append(lazy)
        result = concat(
            lazies, axis=axis, join=join, merge=merge, uns_merge=uns_merge, label=label, keys=keys,
            index_unique=index_unique, fill_value=fill_value, pairwise=pairwise,
        )
        concat_direct.substitute_direct(result, lazies, _check_axis(axis), fill_value)
        total = 0
        if progress is not None:
            result, total = _with_progress(result, progress)
        options = {"convert_strings_to_categoricals": False}
        if isinstance(out_file, h5py.Group) or (isinstance(out_file, str | os.PathLike) and is_h5ad(out_file)):
            write_h5ad(out_file, result, **options)
        elif isinstance(out_file, zarr.Group | str | os.PathLike):
            write_zarr(out_file, result, **options)
        else:
            raise TypeError(f"out_file must be a path or an h5py/zarr group, got {type(out_file).__name__}")
        if progress is not None and not total:
            progress(0, 0)  # nothing was streamed: one call still tells that it is done
