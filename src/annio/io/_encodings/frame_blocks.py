"""A DataFrame read as pandas lays it out: the plain numeric columns of one dtype are decoded
straight into the rows of one 2-D block, and the frame is built from its blocks.

``pd.DataFrame(dict_of_columns)`` copies every numeric column into a freshly allocated
consolidated block; for a frame of thousands of columns that copy (and the first touch of
its memory) costs as much as decoding the columns did. Here each column is decoded once,
into its final place. Columns of any other kind (categoricals, strings, nullable arrays)
get pandas' usual inference, column by column, and become blocks of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from annio.errors import FormatError
from annio.io._encodings.arrays import DenseArray
from annio.io._encodings.registry import IOSpec, Reader, get_spec
from annio.io._storage.adapter import StorageArray, StorageGroup
from annio.io._storage.decode_queue import decode_queue

_PLAIN = IOSpec("array", "0.2.0")
_BLOCK_KINDS = "biufc"  # numpy dtypes pandas keeps in plain 2-D numpy blocks


def read_columns(node: StorageGroup, reader: Reader, columns: list[str], index: pd.Index) -> pd.DataFrame | None:
    """The frame of ``columns`` (children of ``node``) over ``index``, built from blocks;
    None when it cannot be (a read callback sees every element; repeated names)."""
    if reader.callback is not None or not columns or len(set(columns)) != len(columns):
        return None
    n = len(index)
    groups: dict[np.dtype, list[tuple[int, StorageArray]]] = {}
    others: list[tuple[int, Any]] = []
    for pos, col in enumerate(columns):
        child = node[col]
        dtype = _block_dtype(reader, child, n)
        if dtype is not None:
            groups.setdefault(dtype, []).append((pos, child))  # type: ignore[arg-type]
            continue
        values = reader.read_elem(child)
        if len(values) != n:
            raise FormatError(f"{node.path}/{col}", f"column has {len(values)} rows, index has {n}")
        block = _column_block(values)
        if block is None:
            return None
        others.append((pos, block))
    blocks: list[tuple[Any, np.ndarray]] = []
    with decode_queue() as queue:  # decompression overlaps the reading of the next columns
        for dtype, members in groups.items():
            values = np.empty((len(members), n), dtype=dtype)
            for row, (_, child) in enumerate(members):
                reader.read_into(child, values[row], queue)
            blocks.append((values, np.array([pos for pos, _ in members], dtype=np.intp)))
    blocks.extend((block, np.array([pos], dtype=np.intp)) for pos, block in others)
    return frame_from_blocks(blocks, index, pd.Index(columns))


def _block_dtype(reader: Reader, child: Any, n: int) -> np.dtype | None:
    """The dtype of the block ``child`` can be decoded into: a plain ``array`` element of
    ``n`` native numeric values read by the standard encoding; else None."""
    if not isinstance(child, StorageArray):
        return None
    try:
        if get_spec(child) != _PLAIN or type(reader.registry.reader_for(child, _PLAIN)) is not DenseArray:
            return None
        dtype = child.dtype
        if child.shape != (n,) or dtype.kind not in _BLOCK_KINDS or not dtype.isnative:
            return None
    except Exception:  # damaged metadata: the element's own reader reports it
        return None
    return dtype


def _column_block(values: Any) -> Any:
    """``values`` as a block: extension arrays as they are, numpy arrays after pandas'
    column inference (object strings become ``str`` under pandas 3) as one-row 2-D arrays;
    None for anything else."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        return None
    series = pd.Series(values, copy=False)
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy().reshape(1, -1)
    return series.array


def frame_from_blocks(blocks: list[tuple[Any, np.ndarray]], index: pd.Index, columns: pd.Index) -> pd.DataFrame:
    """The DataFrame made of ``blocks`` — ``(values, positions)`` pairs, values a 2-D numpy
    array (one row per column) or a 1-D extension array — taken as they are, without copies.
    pandas 3 has a public function for this; pandas 2 builds the block manager itself."""
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:
        from pandas.core.internals import BlockManager
        from pandas.core.internals.api import make_block

        manager = BlockManager([make_block(values, placement=positions, ndim=2) for values, positions in blocks], [columns, index])
        return pd.DataFrame._from_mgr(manager, axes=manager.axes)
    return create_dataframe_from_blocks(blocks, index=index, columns=columns)
