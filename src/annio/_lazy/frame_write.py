"""Streamed writing of lazy data frames: each column in row blocks bounded by
``settings.write_block_bytes``, categoricals and nullable columns part by part."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from annio._lazy.columns import RESERVED, LazyCategoricalArray, LazyMaskedArray, unwrap
from annio._lazy.concat_columns import ConcatenatedColumn
from annio._lazy.frame import Dataset2D, backend_array, is_dask
from annio.io._encodings.registry import Writer
from annio.io._storage.adapter import StorageArray, StorageGroup
from annio.settings import settings

__all__ = ["write_frame"]


def _codes_dtype(n_categories: int) -> np.dtype:
    return pd.Categorical.from_codes(np.zeros(0, dtype=np.int8), categories=pd.RangeIndex(n_categories)).codes.dtype


def _column_blocks(n: int, row_bytes: int, target: StorageArray | None = None) -> Iterator[slice]:
    from annio.io._encodings.blocks import row_blocks

    grid = ((target.shards or target.chunks) if target is not None else None) or (1,)
    return row_blocks(n, max(1, row_bytes), align=max(1, int(grid[0])))


def _set_spec(node: Any, encoding_type: str, version: str) -> None:
    node.attrs.update({"encoding-type": encoding_type, "encoding-version": version})


def write_frame(group: StorageGroup, frame: Dataset2D, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    """Write a lazy frame as a ``dataframe`` group, column by column in row blocks."""
    from annio.io._encodings.dataframe import index_values

    for col in frame.columns:
        if not isinstance(col, str):
            raise TypeError(f"{group.path}: column name {col!r} is an invalid key. Should be str.")
    if RESERVED in frame.columns:
        raise ValueError(f"{group.path}: {RESERVED!r} is a reserved name for dataframe columns.")
    index = frame.true_index
    index_key = index.name if isinstance(index.name, str) and index.name not in frame.columns else RESERVED
    group.attrs.update({"_index": index_key, "column-order": [str(c) for c in frame.columns]})
    writer.write_elem(group, index_key, index_values(group.path, index), dataset_kwargs=dataset_kwargs)
    remove_unused = frame.is_subset and settings.remove_unused_categories
    for col in frame.columns:
        variable = frame.ds[col].variable
        backend = backend_array(variable._data)
        if isinstance(backend, LazyCategoricalArray):
            _write_categorical(group, col, variable, backend, remove_unused, dataset_kwargs)
        elif isinstance(backend, ConcatenatedColumn):
            if isinstance(backend.dtype, pd.CategoricalDtype):
                _write_categorical(group, col, variable, backend, remove_unused, dataset_kwargs)  # type: ignore[arg-type]
            else:  # one column in memory (obs/var columns are small next to X)
                # a RangeIndex given: the default string labels would cost more than the column
                value = Dataset2D(xr.Dataset({col: variable}), index=pd.RangeIndex(variable.shape[0]), columns=[col]).to_memory()[col].array
                if type(value) is pd.arrays.NumpyExtensionArray:
                    value = value.to_numpy()
                writer.write_elem(group, col, value, dataset_kwargs=dataset_kwargs)
        elif isinstance(backend, LazyMaskedArray):
            _write_masked(group, col, variable, backend, writer, dataset_kwargs)
        elif is_dask(variable._data):
            _write_dask_column(group, col, variable._data, writer, dataset_kwargs)
        else:
            value = unwrap(variable._data)
            if isinstance(value, pd.Categorical) and remove_unused:
                value = value.remove_unused_categories()
            writer.write_elem(group, col, value, dataset_kwargs=dataset_kwargs)


def _write_dask_column(group: StorageGroup, col: str, data: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    kind = np.dtype(data.dtype).kind
    if kind in "biufc":  # the array encoding streams dask arrays block by block
        writer.write_elem(group, col, data, dataset_kwargs=dataset_kwargs)
        return
    if kind not in "OUT":
        writer.write_elem(group, col, np.asarray(data.compute()), dataset_kwargs=dataset_kwargs)
        return
    n = data.shape[0]
    target = group.create_empty_array(col, (n,), np.dtype(object), dataset_kwargs=dataset_kwargs)
    for rows in _column_blocks(n, 64, target):
        block = np.asarray(data[rows].compute(), dtype=object)
        from annio.io._storage.dtypes import as_str_objects

        target.write(rows, as_str_objects(block, f"{group.path}/{col}"))
    _set_spec(target, "string-array", "0.2.0")


def _block_values(variable: xr.Variable, rows: slice) -> Any:
    return unwrap(variable[rows]._data.get_duck_array())


def _write_categorical(group: StorageGroup, col: str, variable: xr.Variable, backend: LazyCategoricalArray, remove_unused: bool, dataset_kwargs: Mapping[str, Any]) -> None:
    from annio.io._encodings.categorical import categories_to_numpy

    kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
    n = variable.shape[0]
    categories = backend.categories
    mapping = None
    if remove_unused:  # first pass: which categories are used by the selected rows
        used = np.zeros(len(categories), dtype=bool)
        for rows in _column_blocks(n, 8):
            codes = np.asarray(_block_values(variable, rows).codes)
            used[codes[codes >= 0]] = True
        if not used.all():
            mapping = np.cumsum(used) - 1
            categories = categories[used]
    sub = group.create_group(col)
    codes_dtype = _codes_dtype(len(categories))
    target = sub.create_empty_array("codes", (n,), codes_dtype, dataset_kwargs=kwargs)
    for rows in _column_blocks(n, 8, target):
        codes = np.asarray(_block_values(variable, rows).codes).astype(np.int64)
        if mapping is not None:
            codes = np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1)
        target.write(rows, codes.astype(codes_dtype))
    _set_spec(target, "array", "0.2.0")
    from annio.io._encodings.registry import Writer as _Writer

    _Writer().write_elem(sub, "categories", categories_to_numpy(categories), dataset_kwargs=kwargs)
    sub.attrs.update({"ordered": bool(backend.ordered)})
    _set_spec(sub, "categorical", "0.2.0")


def _write_masked(group: StorageGroup, col: str, variable: xr.Variable, backend: LazyMaskedArray, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
    from annio.io._encodings.nullable import writes_nullable_strings

    n = variable.shape[0]
    is_string = backend.kind == "nullable-string-array"
    if is_string and not writes_nullable_strings():  # written as a plain string-array
        frame_value = Dataset2D(xr.Dataset({col: variable}), columns=[col]).to_memory()[col].array
        writer.write_elem(group, col, frame_value, dataset_kwargs=dataset_kwargs)
        return
    kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
    sub = group.create_group(col)
    values_dtype = np.dtype(object) if is_string else np.dtype(backend.values.dtype)
    if backend.kind == "nullable-boolean":
        values_dtype = np.dtype(bool)
    values = sub.create_empty_array("values", (n,), values_dtype, dataset_kwargs=kwargs)
    mask = sub.create_empty_array("mask", (n,), np.dtype(bool), dataset_kwargs=kwargs)
    fill: Any = "" if is_string else (False if values_dtype == bool else 0)
    for rows in _column_blocks(n, 16, values):
        block = _block_values(variable, rows)
        if is_string:
            raw = np.asarray(block).astype(object)
            block_mask = np.asarray(pd.isna(raw), dtype=bool)
            raw[block_mask] = fill
            block_values = raw
        else:
            block_mask = np.asarray(pd.isna(block), dtype=bool)
            block_values = np.asarray(block.to_numpy(dtype=values_dtype, na_value=fill))
        values.write(rows, block_values)
        mask.write(rows, block_mask)
    _set_spec(values, "string-array" if is_string else "array", "0.2.0")
    _set_spec(mask, "array", "0.2.0")
    if is_string:
        sub.attrs["na-value"] = backend.na_value
    _set_spec(sub, backend.kind, "0.1.0")

