"""Concatenation of lazy annotation frames (:class:`~annio._lazy.frame.Dataset2D`): a new
lazy frame whose columns are :class:`~annio._lazy.concat_columns.ConcatenatedColumn`.
Building it touches only metadata (dtypes), never column data, and never tokenizes dask
graphs, so it is cheap for many parts and columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from annio._lazy.concat_columns import ConcatenatedColumn, PartsBatch, lazy_variable
from annio._ops.concat_elements import combine_columns, frame_columns

__all__ = ["concat_lazy_frames"]

_DIM = "_annio_concat_index"


def _part_dtype(variable: xr.Variable) -> Any:
    from annio._lazy.frame import backend_array

    backend = backend_array(variable._data)
    if getattr(backend, "kind", None) in ("nullable-integer", "nullable-boolean", "nullable-string-array"):
        dtype = backend.pandas_dtype
    else:
        dtype = variable.dtype
    return dtype  # a pandas string dtype stays itself ("str" and "string" differ in pandas 3)


def concat_lazy_frames(frames: Sequence[Any], join: str, index: pd.Index) -> Any:
    """Concatenate lazy frames along their rows (columns joined by ``join``)."""
    from annio._lazy.frame import Dataset2D

    for f in frames:
        if not f.columns.is_unique:
            raise pd.errors.InvalidIndexError("Cannot combine dataframes as some contained duplicated column names - causing ambiguity.")
    names = frame_columns([list(f.columns) for f in frames], join)
    lengths = [len(f) for f in frames]
    present = [set(f.columns) for f in frames]
    variables = {}
    columns = {}
    for col in names:
        parts = [f.ds.variables[col] if col in has else None for f, has in zip(frames, present, strict=True)]
        dtypes = [None if v is None else _part_dtype(v) for v in parts]
        column = ConcatenatedColumn(parts, lengths, dtypes, combine_columns, path=str(col))
        columns[col] = column
        variables[col] = lazy_variable(_DIM, column)
    batch = PartsBatch(frames, lengths, columns, combine_columns)
    for column in columns.values():
        column.batch = batch
    ds = xr.Dataset(variables, coords={_DIM: pd.Index(np.asarray(index, dtype=object), name=_DIM)})
    return Dataset2D(ds, index=index, columns=names)
