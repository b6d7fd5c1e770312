"""Whole zarr v2 arrays on local disk decoded without zarr-python's codec pipeline.

Reading a small array through zarr-python costs an event-loop round trip (~1 ms, far more
on a loaded machine, where the hand-off waits for a time slice) on top of the decoding; a
small h5ad-sized store has dozens of arrays. For a :class:`zarr.storage.LocalStore` array in
zarr format 2 with C order, a numcodecs compressor (or none) and no filters — or, for
strings, exactly the ``vlen-utf8`` filter anndata writes — annio reads each chunk file and
decodes it with the same numcodecs codec on the calling thread. Anything else (other
filters, F order, object dtypes, missing string chunks, stores that are not local) is left
to zarr-python. Part of the storage adapter: only ``adapter.py`` uses it.
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
from annio.io._storage.zarr_shards import MIN_PARALLEL_BYTES

__all__ = ["read_all"]

_VLEN = VLenUTF8()


class _Unsupported(Exception):
    """The array needs zarr-python after all (e.g. a string chunk that was never written)."""


def _eligible(arr: Any) -> tuple[Any, np.dtype | None] | None:
    """``(metadata, stored numeric dtype or None for strings)`` when annio decodes ``arr``."""
    if type(arr) is not zarr.Array or type(arr.store) is not LocalStore:
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


def read_all(arr: Any) -> np.ndarray | None:
    """The whole of ``arr`` (strings as an ``object`` array of ``str``), or None when the
    array is not one this module decodes (the caller asks zarr-python)."""
    found = _eligible(arr)
    if found is None:
        return None
    meta, stored = found
    shape, chunks = tuple(int(s) for s in meta.shape), tuple(int(c) for c in meta.chunks)
    if stored is not None and math.prod(shape) * stored.itemsize >= MIN_PARALLEL_BYTES:
        return None  # decoded here on one thread; large arrays go to the parallel pipeline
    out = np.empty(shape, dtype=object if stored is None else stored.newbyteorder("="))
    if not out.size:
        return out
    directory = Path(arr.store.root) / arr.path if arr.path else Path(arr.store.root)
    name = "/" + arr.path.strip("/")
    count = math.prod(chunks)
    try:
        for coords in itertools.product(*(range(math.ceil(s / c)) for s, c in zip(shape, chunks, strict=True))):
            region = tuple(slice(k * c, min((k + 1) * c, s)) for k, c, s in zip(coords, chunks, shape, strict=True))
            key = meta.encode_chunk_key(coords)
            try:
                with open(directory / key, "rb") as f:
                    payload = f.read()
            except FileNotFoundError:
                if stored is None:
                    raise _Unsupported from None
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
