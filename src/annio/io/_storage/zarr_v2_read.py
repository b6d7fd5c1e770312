"""Whole zarr v2 arrays, on local disk or fetched ahead from a remote store, decoded without
zarr-python's codec pipeline.

Reading a small array through zarr-python costs an event-loop round trip (~1 ms, far more
on a loaded machine, where the hand-off waits for a time slice) on top of the decoding; a
small h5ad-sized store has dozens of arrays. For a :class:`zarr.storage.LocalStore` array in
zarr format 2 with C order, a numcodecs compressor (or none) and no filters — or, for
strings, exactly the ``vlen-utf8`` filter anndata writes — annio reads each chunk file and
decodes it with the same numcodecs codec on the calling thread. The same holds for an array
of a remote store whose chunk objects were all fetched ahead
(:class:`~annio.io._storage.prefetch_store.PrefetchStore`, e.g. by ``read_zarr`` of a
consolidated store): it is decoded from those bytes, whatever its size, with no event-loop
round trip. Anything else (other filters, F order, object dtypes, missing string chunks,
other stores, chunks not fetched ahead) is left to zarr-python. Part of the storage
adapter: only ``adapter.py`` uses it.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs.vlen import VLenUTF8
from zarr.dtype import VariableLengthUTF8
from zarr.storage import LocalStore

from annio.errors import FormatError
from annio.io._storage.prefetch_store import PrefetchStore
from annio.io._storage.zarr_shards import MIN_PARALLEL_BYTES

__all__ = ["read_all"]

_VLEN = VLenUTF8()


class _Unsupported(Exception):
    """The array needs zarr-python after all (e.g. a string chunk that was never written)."""


def _eligible(arr: Any) -> tuple[Any, np.dtype | None] | None:
    """``(metadata, stored numeric dtype or None for strings)`` when annio decodes ``arr``."""
    if type(arr) is not zarr.Array or not (type(arr.store) is LocalStore or isinstance(arr.store, PrefetchStore)):
        return None
    meta = arr.metadata
    if meta.zarr_format != 2 or meta.order != "C" or not meta.shape or any(int(c) < 1 for c in meta.chunks):
        return None
    filters = tuple(meta.filters or ())
    if isinstance(meta.dtype, VariableLengthUTF8):
        return (meta, None) if len(filters) == 1 and isinstance(filters[0], VLenUTF8) else None
    if filters:
        return None
    dtype = np.dtype(meta.dtype.to_native_dtype())
    if dtype.kind not in "biuf" or meta.fill_value is None:
        return None
    return meta, dtype


def _chunk_source(arr: Any, keys: list[str]) -> Any:
    """``payload(key) -> bytes | None`` (None: no such chunk) for the chunk ``keys`` of
    ``arr``; None when a remote array's chunks were not all fetched ahead."""
    store = arr.store
    if isinstance(store, PrefetchStore):
        prefix = arr.path.strip("/") + "/" if arr.path.strip("/") else ""
        cached = store.cached_objects(prefix + k for k in keys)
        return None if cached is None else (lambda key: cached[prefix + key])
    directory = Path(store.root) / arr.path if arr.path else Path(store.root)

    def payload(key: str) -> bytes | None:
        try:
            with open(directory / key, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    return payload


def read_all(arr: Any) -> np.ndarray | None:
    """The whole of ``arr`` (strings as an ``object`` array of ``str``), or None when the
    array is not one this module decodes (the caller asks zarr-python)."""
    found = _eligible(arr)
    if found is None:
        return None
    meta, stored = found
    shape, chunks = tuple(int(s) for s in meta.shape), tuple(int(c) for c in meta.chunks)
    local = type(arr.store) is LocalStore
    if local and stored is not None and math.prod(shape) * stored.itemsize >= MIN_PARALLEL_BYTES:
        return None  # decoded here on one thread; large local arrays go to the parallel pipeline
    out = np.empty(shape, dtype=object if stored is None else stored.newbyteorder("="))
    if not out.size:
        return out
    grid = list(itertools.product(*(range(math.ceil(s / c)) for s, c in zip(shape, chunks, strict=True))))
    keys = [meta.encode_chunk_key(coords) for coords in grid]
    payload_of = _chunk_source(arr, keys)
    if payload_of is None:
        return None  # remote chunks not fetched ahead: zarr-python fetches them
    name = "/" + arr.path.strip("/")
    count = math.prod(chunks)
    try:
        for coords, key in zip(grid, keys, strict=True):
            region = tuple(slice(k * c, min((k + 1) * c, s)) for k, c, s in zip(coords, chunks, shape, strict=True))
            payload = payload_of(key)
            if payload is None:
                if stored is None:
                    raise _Unsupported
                out[region] = meta.fill_value
                continue
            try:
                raw = payload if meta.compressor is None else meta.compressor.decode(payload)
                if stored is None:
                    block = _VLEN.decode(raw)
                    if block.size != count:
                        raise ValueError(f"holds {block.size} strings, expected {count}")
                else:
                    if len(memoryview(raw).cast("B")) != count * stored.itemsize:
                        raise ValueError(f"holds {len(memoryview(raw).cast('B'))} bytes, expected {count * stored.itemsize}")
                    block = np.frombuffer(raw, dtype=stored)
            except (ValueError, RuntimeError, TypeError) as err:
                raise FormatError(name, f"chunk {key!r} does not decode: {err}") from err
            out[region] = block.reshape(chunks)[tuple(slice(0, r.stop - r.start) for r in region)]
    except _Unsupported:
        return None
    except OSError as err:
        raise FormatError(name, f"could not read data: {err}") from err
    return out
