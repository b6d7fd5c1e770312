"""``dataframe`` 0.2.0: one child per column plus the index; attributes ``_index`` (the
index's key) and ``column-order``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from annio.errors import FormatError
from annio.io._encodings.frame_blocks import read_columns
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, lazy_builder, register
from annio.io._storage.adapter import StorageGroup

# Above this many columns HDF5 needs dense attribute storage for `column-order`.
MANY_COLUMNS = 5000
RESERVED = "_index"


def check_columns(path: str, df: pd.DataFrame) -> None:
    """Refuse column names the format cannot hold, naming the element path."""
    for col in df.columns:
        if not isinstance(col, str):
            raise TypeError(f"{path}: column name {col!r} is an invalid key. Should be str.")
    if RESERVED in df.columns:
        raise ValueError(f"{path}: {RESERVED!r} is a reserved name for dataframe columns.")
    duplicated = df.columns[df.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"{path}: Found repeated column names: {duplicated}")
    name = df.index.name
    if name is not None and name in df.columns and not np.array_equal(
        np.asarray(df[name]).astype(str), np.asarray(df.index).astype(str)
    ):
        raise ValueError(f"{path}: index name {name!r} is also a column name with different values")


def index_values(path: str, index: pd.Index) -> Any:
    """The index as it is stored: as anndata, a categorical index stays categorical and a
    numeric one numeric (it reads back as written); anything else is an array of ``str``."""
    if index.hasnans:
        raise ValueError(f"{path}: the index holds missing values, which cannot be stored")
    if isinstance(index, pd.CategoricalIndex):
        return pd.Categorical(index)
    if index.dtype.kind in "iuf" and not isinstance(index, pd.MultiIndex):
        return index.to_numpy()
    values = index.to_numpy()
    if values.dtype.kind not in "OU" or index.inferred_type not in ("string", "empty"):
        values = index.astype(str).to_numpy()
    return np.asarray(values, dtype=object)


def column_values(series: pd.Series) -> Any:
    """What the column's encoding writes: numpy arrays, Categoricals or extension arrays."""
    values = series.array
    if isinstance(values, pd.arrays.NumpyExtensionArray) and not isinstance(values, pd.arrays.StringArray):
        return values.to_numpy()
    if isinstance(values, pd.arrays.DatetimeArray | pd.arrays.TimedeltaArray) and getattr(values, "tz", None) is None:
        return values.to_numpy()
    return values


def index_key(df: pd.DataFrame) -> str:
    """Key the index is stored under: its name when it has one that is not a column."""
    name = df.index.name
    return name if isinstance(name, str) and name not in df.columns else RESERVED


@register
class DataFrame(GroupEncoding):
    spec = IOSpec("dataframe", "0.2.0")
    python_types = (pd.DataFrame,)

    def needs_many_attributes(self, value: pd.DataFrame) -> bool:
        return value.shape[1] > MANY_COLUMNS

    def group_attrs(self, df: pd.DataFrame) -> dict[str, Any]:
        return {"_index": index_key(df), "column-order": [str(c) for c in df.columns]}

    def write(self, parent: StorageGroup, key: str, value: pd.DataFrame, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageGroup:
        check_columns(f"{parent.path.rstrip('/')}/{key}", value)  # before anything is created
        return super().write(parent, key, value, writer, dataset_kwargs)

    def write_into(self, group: StorageGroup, df: pd.DataFrame, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        index_key = group.attrs["_index"]
        writer.write_elem(group, index_key, index_values(group.path, df.index), dataset_kwargs=dataset_kwargs)
        for col in df.columns:
            writer.write_elem(group, col, column_values(df[col]), dataset_kwargs=dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> pd.DataFrame:
        attrs = node.attrs
        if "_index" not in attrs:
            raise FormatError(node.path, "dataframe lacks the '_index' attribute")
        index_key = attrs["_index"]
        columns = list(attrs.get("column-order", []))
        index = pd.Index(reader.read_elem(node[index_key]), name=None if index_key == RESERVED else index_key)
        df = read_columns(node, reader, columns, index)  # numeric columns decoded into their blocks
        if df is not None:
            return df
        data = {}
        for col in columns:
            values = reader.read_elem(node[col])
            if len(values) != len(index):
                raise FormatError(f"{node.path}/{col}", f"column has {len(values)} rows, index has {len(index)}")
            data[col] = values
        df = pd.DataFrame(data, index=index, columns=columns if columns else None)
        if not columns:
            df = pd.DataFrame(index=index)
        return df

    def read_lazy(self, node: StorageGroup, reader: Reader, *, use_range_index: bool = False, chunks: Any = None, **kwargs: Any) -> Any:
        """A lazy :class:`annio._lazy.frame.Dataset2D`: the index is read, columns stay on disk."""
        return lazy_builder("frame")(node, reader, use_range_index=use_range_index, chunks=chunks)


@register
class LazyDataFrame(GroupEncoding):
    """Writes lazy frames (:class:`annio._lazy.frame.Dataset2D`) as ``dataframe``, streaming
    every column in row blocks; reading stays with :class:`DataFrame`."""

    spec = IOSpec("dataframe", "0.2.0")
    python_types = ("annio._lazy.frame.Dataset2D",)
    reads = False

    def needs_many_attributes(self, value: Any) -> bool:
        return value.shape[1] > MANY_COLUMNS

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        lazy_builder("write_frame")(group, value, writer, dataset_kwargs)
