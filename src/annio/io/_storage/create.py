"""Creating HDF5 datasets and zarr arrays for :class:`~annio.io._storage.adapter.StorageGroup`
(dtype translation, chunking, sharding and compression defaults per backend)."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.dtype import VariableLengthUTF8

from annio.io._storage import h5_chunks, h5_small, layout, zarr_shards, zarr_small
from annio.io._storage.dtypes import as_str_objects, h5_record_dtype, nominal_itemsize, zarr_record_dtype

__all__ = ["create_h5", "create_zarr"]

# dataset_kwargs understood by each backend; anything else is passed through unchanged.
_H5_COMPRESSION_KEYS = {"compression", "compression_opts", "chunks", "shuffle", "fletcher32", "scaleoffset"}
_ZARR_COMPRESSION_KEYS = {"compressor", "compressors", "filters", "chunks", "shards", "serializer"}


def create_h5(raw: h5py.Group, child_path: str, key, shape, dtype, data, kwargs, resizable, is_string) -> h5py.Dataset:
    if shape == ():
        kwargs = {k: v for k, v in kwargs.items() if k not in _H5_COMPRESSION_KEYS}
    elif "chunks" in kwargs and kwargs["chunks"] not in (None, True) and len(kwargs["chunks"]) != len(shape):
        kwargs.pop("chunks")  # a chunk shape meant for another rank of array
    if is_string:
        h5dtype = h5py.string_dtype("utf-8")
        if data is not None:
            data = as_str_objects(data, child_path)
    elif dtype.kind == "V" and dtype.names:
        h5dtype = h5_record_dtype(dtype)
        if data is not None:
            data = data.astype(h5dtype)
    else:
        h5dtype = dtype
    if 0 in shape and not resizable:  # HDF5 cannot chunk an empty fixed-size dataset
        kwargs = {k: v for k, v in kwargs.items() if k not in _H5_COMPRESSION_KEYS}
    if resizable and len(shape) == 1:
        kwargs.setdefault("maxshape", (None,))
    wants_chunks = shape != () and ("maxshape" in kwargs or kwargs.get("compression") is not None)
    if wants_chunks and kwargs.get("chunks") in (None, True):
        kwargs["chunks"] = layout.h5_chunks(shape, nominal_itemsize(dtype))
    if data is None:
        return raw.create_dataset(key, shape=shape, dtype=h5dtype, **kwargs)
    if not kwargs and (is_string or dtype.kind in "biufc"):  # plain dataset: low-level, ~3x faster
        return h5_small.create_plain_dataset(raw, key, data, strings=is_string)
    if kwargs.get("compression") == "gzip" and not is_string:
        dataset = raw.create_dataset(key, shape=shape, dtype=h5dtype, **kwargs)
        if h5_chunks.can_use_direct_chunks(dataset):
            h5_chunks.write_chunks(dataset, data, level=kwargs.get("compression_opts") or 4)
        else:
            dataset[...] = data
        return dataset
    return raw.create_dataset(key, data=data, dtype=h5dtype, **kwargs)


def create_zarr(raw: zarr.Group, zarr_format: int | None, child_path: str, key, shape, dtype, data, kwargs, shardable, is_string) -> zarr.Array | None:
    """The new zarr array, or None when it was written straight to a local store
    (:mod:`~annio.io._storage.zarr_small`; the caller opens it on demand)."""
    if "compressor" in kwargs:
        compressor = kwargs.pop("compressor")
        kwargs.setdefault("compressors", compressor)
    if shape == ():
        kwargs = {k: v for k, v in kwargs.items() if k not in _ZARR_COMPRESSION_KEYS}
        shardable = False
    else:
        if "chunks" in kwargs and kwargs["chunks"] is not None and len(kwargs["chunks"]) != len(shape):
            kwargs.pop("chunks")
        if "shards" in kwargs and kwargs["shards"] is not None and len(kwargs["shards"]) != len(shape):
            kwargs.pop("shards")
    if zarr_format != 2 and shape != () and "compressors" not in kwargs:
        from annio.settings import settings

        if settings.zarr_zstd_level is not None:
            kwargs["compressors"] = ZstdCodec(level=settings.zarr_zstd_level, checksum=False)
    if dtype.kind == "V" and dtype.names:
        shardable = False  # zarr-python cannot shard structured dtypes (zarr-python #3546)
        dtype, data = zarr_record_dtype(dtype, data)
    if zarr_format == 2:
        kwargs.pop("shards", None)
    elif shape != () and "shards" not in kwargs and shardable:
        from annio.settings import settings

        if settings.auto_shard_zarr_v3:
            chunks = kwargs.get("chunks") or layout.zarr_chunks(shape, nominal_itemsize(dtype))
            kwargs["chunks"] = tuple(chunks)
            kwargs["shards"] = layout.zarr_shards(shape, tuple(chunks), nominal_itemsize(dtype))
    if shape != () and kwargs.get("chunks") is None:
        kwargs["chunks"] = layout.zarr_chunks(shape, nominal_itemsize(dtype))
    if data is not None and 0 not in shape:
        # one call creates the array and writes its data (fewer metadata round trips)
        if is_string:
            data = as_str_objects(data, child_path)
        directory = zarr_small.local_dir(raw)
        if directory is not None and zarr_small.write_array(raw, directory, key, data, kwargs, is_string):
            return None
        if is_string:
            data = data.astype(np.dtypes.StringDType())
        return zarr_shards.create_with_data(raw, key, data, kwargs)
    zdtype: Any = VariableLengthUTF8() if is_string else dtype
    return raw.create_array(key, shape=shape, dtype=zdtype, **kwargs)
