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

import os
from collections.abc import Callable, Collection, Mapping
from contextlib import ExitStack
from typing import Any, Literal

import numpy as np

from annio._ops.concat import DEFAULT_JOIN

__all__ = ["concat_on_disk"]


def _with_progress(adata: Any, progress: Callable[[int, int], None]) -> tuple[Any, int, list[int]]:
    """Wrap every dask array of ``adata`` so that each computed block reports progress."""
    from annio._ops.concat_elements import is_dask

    from annio._ops.concat_direct import ConcatenatedDense, ConcatenatedSparse

    total = 0
    done = [0]
    arrays: list[tuple[Any, str, Any]] = []
    direct: list[Any] = []
    for owner, key, value in [(adata, "X", adata.X)] + [
        (getattr(adata, attr), k, getattr(adata, attr)[k]) for attr in ("layers", "obsm", "varm", "obsp", "varp") for k in list(getattr(adata, attr).keys()) if k is not None
    ]:
        if is_dask(value):
            arrays.append((owner, key, value))
        elif isinstance(value, ConcatenatedSparse):
            direct.append(value)
            total += len(value.chunks[0 if value.format == "csr" else 1])
        elif isinstance(value, ConcatenatedDense):
            direct.append(value)
            total += max(1, len(range(0, value.shape[0], max(1, settings_rows(value)))))
    total += sum(int(a.npartitions) for _, _, a in arrays)

    def tick(block: Any = None) -> Any:
        done[0] += 1
        progress(min(done[0], total), total)
        return block

    for value in direct:
        value.on_block = tick
    for owner, key, arr in arrays:
        wrapped = arr.map_blocks(tick, dtype=arr.dtype, meta=arr._meta)
        if owner is adata:
            adata.X = wrapped
        else:
            owner[key] = wrapped
    return adata, total, done


def _default_dask_scheduler() -> Any:
    """dask's default scheduler, named as a function when ``distributed`` was never imported
    (then no client can exist): a name or no choice makes dask import ``distributed`` to look
    for one, which costs about a second."""
    import sys
    from contextlib import nullcontext

    if "distributed" in sys.modules:
        return nullcontext()
    import dask
    import dask.threaded

    if dask.config.get("scheduler", None) is not None:
        return nullcontext()
    return dask.config.set(scheduler=dask.threaded.get)


def settings_rows(value: Any) -> int:
    """Rows per block the dense writer uses for ``value`` (for the progress total)."""
    import math

    from annio.settings import settings

    row_bytes = np.dtype(value.dtype).itemsize * math.prod(value.shape[1:])
    return max(1, settings.write_block_bytes // max(1, row_bytes))


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
        ``settings.write_block_bytes`` to 8 bytes per element for the call).
    axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise
        As for :func:`annio.concat`.
    progress
        Called as ``progress(done, total)`` after each block of the large arrays is computed.
    """
    import h5py
    import zarr

    from annio.io._files import write_h5ad, write_zarr
    from annio.io._storage.stores import is_h5ad
    from annio.settings import settings
    from annio._lazy import read_lazy
    from annio._ops.concat import concat

    if isinstance(in_files, Mapping):
        if keys is not None:
            raise TypeError("Cannot specify categories in both mapping keys and using `keys`. Only specify this once.")
        keys, in_files = list(in_files.keys()), list(in_files.values())
    in_files = list(in_files)
    if not in_files:
        raise ValueError("No objects to concatenate.")
    overrides: dict[str, Any] = {}
    if max_loaded_elems is not None:
        if int(max_loaded_elems) < 1:
            raise ValueError(f"max_loaded_elems must be positive, got {max_loaded_elems!r}")
        overrides["write_block_bytes"] = max(2**16, int(max_loaded_elems) * 8)
    with ExitStack() as stack:
        stack.enter_context(settings.override(**overrides))
        stack.enter_context(_default_dask_scheduler())
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
        from annio._ops.concat import _check_axis
        from annio._ops.concat_direct import substitute_direct

        substitute_direct(result, lazies, _check_axis(axis), fill_value)
        total, done = 0, [0]
        if progress is not None:
            result, total, done = _with_progress(result, progress)
        options = {"convert_strings_to_categoricals": False}
        if isinstance(out_file, h5py.Group) or (isinstance(out_file, str | os.PathLike) and is_h5ad(out_file)):
            write_h5ad(out_file, result, **options)
        elif isinstance(out_file, zarr.Group | str | os.PathLike):
            write_zarr(out_file, result, **options)
        else:
            raise TypeError(f"out_file must be a path or an h5py/zarr group, got {type(out_file).__name__}")
        if progress is not None:
            progress(total, total)
