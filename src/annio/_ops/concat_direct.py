"""The direct path of ``concat_on_disk`` for ``X`` and ``layers``: stored parts copied
straight into the output, without a dask graph.

The lazy concatenation (:func:`annio.concat` of :func:`~annio.experimental.read_lazy`
objects) decides *what* is written; this module replaces its dask arrays, where the inputs
allow it, by objects that read the inputs' stored arrays block by block:

* :class:`ConcatenatedSparse` — CSR parts stacked on axis 0 (CSC on axis 1): each block is
  a range of one part's major axis, read with
  :func:`~annio.io._storage.sparse_read.read_major_slice` (only that range of ``data`` and
  ``indices``); the minor axis is remapped by a column map when the other axis was joined
  (no map when it is identical). The sparse writer streams the blocks into the output
  (``indptr`` offset-shifted, int64 only when the total nnz needs it).
* :class:`ConcatenatedDense` — dense parts, row blocks copied (reindexed on the other axis
  when joined).

The output is what the lazy path writes (same dtype, values, block layout in the file).
Memory is bounded by ``settings.write_block_bytes`` per block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core.kinds import is_dask
from annio.errors import FormatError
from annio.io._encodings.arrays import DenseArray
from annio.io._encodings.registry import register
from annio.io._encodings.sparse import CSCMatrix, CSRMatrix
from annio.io._storage.h5_raw import RawSource
from annio.io._storage.sparse_read import check_index_range, check_indptr_bounds, read_major_slice
from annio.settings import settings

__all__ = ["ConcatenatedSparse", "ConcatenatedDense", "direct_element"]


def _origin(value: Any) -> Any:
    """The stored source of an unselected lazy array from ``read_lazy``, else None."""
    origin = getattr(value, "_annio_origin", None)
    if origin is None or origin.rows is not None:
        return None
    return origin


class ConcatenatedSparse:
    """Stored compressed parts (``None``: a part without the element, all zeros) stacked
    along their major axis; ``maps[i]`` sends part ``i``'s minor positions to the output's
    (``-1``: dropped), ``None`` when they are the same."""

    _annio_backed_array = True
    ndim = 2

    def __init__(self, sources: Sequence[Any], lengths: Sequence[int], maps: Sequence[np.ndarray | None], fmt: str, n_minor: int, dtype: np.dtype) -> None:
        self.sources, self.maps, self.format = list(sources), list(maps), fmt
        self.lengths = [int(n) for n in lengths]
        self.n_minor = int(n_minor)
        self.dtype = np.dtype(dtype)
        n_major = sum(self.lengths)
        self.shape = (n_major, self.n_minor) if fmt == "csr" else (self.n_minor, n_major)
        self.on_block: Callable[[int], None] | None = None  # told the major positions of each block
        self._indptrs = [None if s is None else _whole_indptr(s) for s in self.sources]
        self._blocks = self._plan_blocks()
        self._raw: dict[int, tuple[Any, Any]] = {}  # per part: direct readers of data, indices
        offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self._by_start = {int(offsets[p]) + lo: (p, lo, hi) for p, lo, hi in self._blocks}
        sizes = tuple(stop - start for _, start, stop in self._blocks) or (0,)
        self.chunks = (sizes, (self.n_minor,)) if fmt == "csr" else ((self.n_minor,), sizes)

    def _plan_blocks(self) -> list[tuple[int, int, int]]:
        """``(part, start, stop)`` per block: whole major ranges of one part holding at most
        the write budget of stored values."""
        index_bytes = 8 if max(self.n_minor, 1) > np.iinfo(np.int32).max else 4
        # a quarter of the budget: the writer's buffers of data and indices hold the rest
        budget = max(1, settings.write_block_bytes // 4 // (self.dtype.itemsize + index_bytes))
        blocks: list[tuple[int, int, int]] = []
        for i, (n, indptr) in enumerate(zip(self.lengths, self._indptrs, strict=True)):
            if n == 0:
                continue
            if indptr is None:  # missing part: empty blocks of the budget's length
                step = max(1, budget)
                blocks.extend((i, s, min(n, s + step)) for s in range(0, n, step))
                continue
            start = 0
            while start < n:
                # the farthest stop whose range holds at most `budget` values (at least one row)
                stop = int(np.searchsorted(indptr, indptr[start] + budget, side="right")) - 1
                stop = min(n, max(start + 1, stop))
                blocks.append((i, start, stop))
                start = stop
        return blocks

    def _read(self, part: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(data, indices, indptr)`` of major positions ``lo:hi`` of part ``part``: plain
        HDF5 datasets straight from the file (chunk offsets listed once per part, not per
        block), anything else through :func:`read_major_slice`; indices range-checked."""
        source, whole = self.sources[part], self._indptrs[part]
        readers = self._raw.get(part)
        if readers is None:
            readers = self._raw[part] = (_raw_source(source.data), _raw_source(source.indices))
        if readers[0] is None or readers[1] is None:
            return read_major_slice(source, lo, hi, indptr=whole)
        bounds = whole[lo : hi + 1]
        check_indptr_bounds(source.path, bounds[:-1], bounds[1:], source.nnz)
        start, stop = int(bounds[0]), int(bounds[-1])
        data, indices = readers[0].read(start, stop), readers[1].read(start, stop)
        check_index_range(source.path, indices, source.n_minor)
        if max(self.n_minor, indices.size) > np.iinfo(np.int32).max:
            indices = indices.astype(np.int64, copy=False)
        elif indices.dtype != np.int32:
            indices = indices.astype(np.int32)
        return data, indices, bounds - start

    def __getitem__(self, key: Any) -> Any:
        sel = key if self.format == "csr" else key[1]
        start, stop = sel.start or 0, sel.stop
        found = self._by_start.get(start)
        if found is None or found[2] - found[1] != stop - start:
            if stop > start:  # a writer that re-blocks would otherwise write zeros silently
                raise ValueError(f"rows {start}:{stop} are not one of the planned blocks {self.chunks}")
            part, lo, hi = None, 0, 0  # only the empty ranges of an empty matrix
        else:
            part, lo, hi = found
        n = hi - lo
        cls = sp.csr_matrix if self.format == "csr" else sp.csc_matrix
        shape = (n, self.n_minor) if self.format == "csr" else (self.n_minor, n)
        source = None if part is None else self.sources[part]
        if source is None or n <= 0:
            block = cls(shape, dtype=self.dtype)
        else:
            data, indices, indptr = self._read(part, lo, hi)
            mapping = self.maps[part]
            if mapping is not None:
                new = mapping[indices]
                keep = new >= 0
                if not keep.all():
                    major = np.repeat(np.arange(n), np.diff(indptr))
                    counts = np.bincount(major[keep], minlength=n)
                    indptr = np.zeros(n + 1, dtype=np.int64)
                    np.cumsum(counts, out=indptr[1:])
                    data, new = data[keep], new[keep]
                indices = new
            block = cls((data.astype(self.dtype, copy=False), indices, indptr), shape=shape)
        if self.on_block is not None:
            self.on_block(n)
        return block


def _raw_source(arr: Any) -> RawSource | None:
    opener = getattr(arr, "_with_node", None)  # a lazy source: the stored array it reads
    return opener(RawSource.open) if opener is not None else RawSource.open(arr)


def _whole_indptr(source: Any) -> np.ndarray:
    indptr = np.asarray(source.indptr.read())
    if indptr.shape != (source.n_major + 1,) or indptr.dtype.kind not in "iu":
        raise FormatError(f"{source.path}/indptr", f"expected {source.n_major + 1} integers, found {indptr.shape} {indptr.dtype}")
    return indptr.astype(np.int64, copy=False)


class ConcatenatedDense:
    """Stored dense parts (``None``: filled with ``fill``) stacked along ``axis``; on axis
    0, ``takes[i]`` gives for each output column the column of part ``i`` (``-1``: fill),
    ``None`` when they are the same. Sliced by rows (what the dense writer asks for)."""

    _annio_backed_array = True

    def __init__(self, sources: Sequence[Any], lengths: Sequence[int], takes: Sequence[np.ndarray | None], axis: int, shape: tuple[int, ...], dtype: np.dtype, fill: Any) -> None:
        self.sources, self.takes, self.axis = list(sources), list(takes), axis
        self.lengths = [int(n) for n in lengths]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(dtype)
        self.fill = np.nan if fill is None else fill
        self.on_block: Callable[[int], None] | None = None  # told the rows of each block

    def _part_block(self, i: int, rows: slice) -> np.ndarray:
        n = rows.stop - rows.start
        width = self.shape[1] if self.axis == 0 else self.lengths[i]
        source = self.sources[i]
        if source is None:
            return np.full((n, width, *self.shape[2:]), self.fill, dtype=self.dtype)
        block = np.asarray(source.read((rows,))).astype(self.dtype, copy=False)
        take = self.takes[i]
        if take is None:
            return block
        out = np.take(block, np.where(take < 0, 0, take), axis=1).astype(self.dtype, copy=False)
        out[:, take < 0] = self.fill
        return out

    def __getitem__(self, rows: Any) -> np.ndarray:
        start, stop = rows.start or 0, rows.stop
        if self.axis == 1:
            pieces = [self._part_block(i, slice(start, stop)) for i in range(len(self.sources))]
            block = np.concatenate(pieces, axis=1) if pieces else np.zeros((stop - start, 0), dtype=self.dtype)
        else:
            pieces = []
            for i in range(len(self.sources)):
                lo, hi = max(start, self.offsets[i]), min(stop, self.offsets[i + 1])
                if lo < hi:
                    pieces.append(self._part_block(i, slice(int(lo - self.offsets[i]), int(hi - self.offsets[i]))))
            block = np.concatenate(pieces, axis=0) if pieces else np.zeros((0, *self.shape[1:]), dtype=self.dtype)
        if self.on_block is not None:
            self.on_block(stop - start)
        return block


# -- write-only encodings: the ordinary writers, dispatched for the direct objects ----------
def _write_sparse(group: Any, value: ConcatenatedSparse, dataset_kwargs: Any) -> bool:
    from annio._ops.concat_write import write_sparse_direct

    return write_sparse_direct(group, value, dataset_kwargs)


@register
class _DirectCSR(CSRMatrix):
    reads = False
    python_types = (ConcatenatedSparse,)

    def accepts(self, value: Any) -> bool:
        return value.format == "csr"

    def write_into(self, group: Any, value: Any, writer: Any, dataset_kwargs: Any) -> None:
        if not _write_sparse(group, value, dataset_kwargs):  # local HDF5: file to file
            super().write_into(group, value, writer, dataset_kwargs)


@register
class _DirectCSC(CSCMatrix):
    reads = False
    python_types = (ConcatenatedSparse,)

    def accepts(self, value: Any) -> bool:
        return value.format == "csc"

    def write_into(self, group: Any, value: Any, writer: Any, dataset_kwargs: Any) -> None:
        if not _write_sparse(group, value, dataset_kwargs):
            super().write_into(group, value, writer, dataset_kwargs)


@register
class _DirectDense(DenseArray):
    reads = False
    python_types = (ConcatenatedDense,)

    def accepts(self, value: Any) -> bool:
        return True


# -- deciding ----------------------------------------------------------------------------
def direct_element(
    values: Sequence[Any],
    result: Any,
    axis: int,
    lengths: Sequence[int],
    alt_indices: Sequence[pd.Index],
    alt_index: pd.Index,
    fill_value: Any,
) -> Any:
    """The direct replacement of ``result`` (the lazy concatenation of ``values``, one per
    input, ``None`` where missing), or None when the lazy path must write it: any part not
    an unselected stored array of the fitting kind, or a non-zero fill of sparse gaps."""
    if not is_dask(result) or result.ndim != 2 or not any(v is not None for v in values):
        return None
    origins = [None if v is None else _origin(v) for v in values]
    if any(o is None for o, v in zip(origins, values, strict=True) if v is not None):
        return None
    same = [old is alt_index or old.equals(alt_index) for old in alt_indices]
    sparse_result = sp.issparse(getattr(result, "_meta", None))
    if sparse_result:
        fmt = "csr" if axis == 0 else "csc"
        if any(o is not None and (o.kind != "sparse" or o.source.fmt != fmt) for o in origins):
            return None
        maps: list[np.ndarray | None] = []
        for old, is_same in zip(alt_indices, same, strict=True):
            if is_same:
                maps.append(None)
                continue
            maps.append(alt_index.get_indexer(old).astype(np.int64))
            if fill_value not in (None, 0) and (old.get_indexer(alt_index) < 0).any():
                return None  # explicit fill entries: the lazy path writes them
        if fill_value not in (None, 0) and any(v is None for v in values):
            return None
        sources = [None if o is None else o.source for o in origins]
        return ConcatenatedSparse(sources, lengths, maps, fmt, len(alt_index), result.dtype)
    if any(o is not None and o.kind != "dense" for o in origins) or np.dtype(result.dtype).kind not in "biufc":
        return None
    if axis == 1 and not all(same):
        return None  # rows of each part reordered: left to the lazy path
    takes = [None if is_same else old.get_indexer(alt_index).astype(np.int64) for old, is_same in zip(alt_indices, same, strict=True)]
    sources = [None if o is None else o.source for o in origins]
    if any(s is not None and len(s.shape) != 2 for s in sources):
        return None
    return ConcatenatedDense(sources, lengths, takes, axis, tuple(result.shape), result.dtype, fill_value)


def _direct_stacked(values: Sequence[Any], result: Any, lengths: Sequence[int]) -> Any:
    """``obsm``/``varm`` entries present in every part with the same trailing shape: stacked
    along their first axis (dense row blocks, or CSR parts as they are)."""
    if not is_dask(result) or any(v is None for v in values):
        return None
    origins = [_origin(v) for v in values]
    if any(o is None for o in origins) or len({tuple(v.shape[1:]) for v in values}) != 1:
        return None
    if sp.issparse(getattr(result, "_meta", None)):
        if result.ndim != 2 or any(o.kind != "sparse" or o.source.fmt != "csr" for o in origins):
            return None
        return ConcatenatedSparse([o.source for o in origins], lengths, [None] * len(values), "csr", int(result.shape[1]), result.dtype)
    if any(o.kind != "dense" for o in origins) or np.dtype(result.dtype).kind not in "biufc" or result.ndim < 2:
        return None
    return ConcatenatedDense([o.source for o in origins], lengths, [None] * len(values), 0, tuple(result.shape), result.dtype, None)


def substitute_direct(result: Any, inputs: Sequence[Any], axis: int, fill_value: Any) -> int:
    """Replace the lazy ``X`` and ``layers`` of ``result`` (the lazy concatenation of
    ``inputs``) by direct objects wherever :func:`direct_element` allows; returns how many
    were replaced."""
    alt = "var" if axis == 0 else "obs"
    alt_indices = [pd.Index(getattr(a, f"{alt}_names")) for a in inputs]
    alt_index = pd.Index(getattr(result, f"{alt}_names"))
    lengths = [a.shape[axis] for a in inputs]
    replaced = 0
    if result.X is not None:
        direct = direct_element([a.X for a in inputs], result.X, axis, lengths, alt_indices, alt_index, fill_value)
        if direct is not None:
            result.X = direct
            replaced += 1
    ax = "obs" if axis == 0 else "var"
    aligned = getattr(result, f"{ax}m")
    for key in list(aligned.keys()):
        values = [getattr(a, f"{ax}m")[key] if key in getattr(a, f"{ax}m") else None for a in inputs]
        direct = _direct_stacked(values, aligned[key], lengths)
        if direct is not None:
            aligned[key] = direct
            replaced += 1
    for key in [k for k in result.layers.keys() if k is not None]:
        values = [a.layers[key] if key in a.layers else None for a in inputs]
        direct = direct_element(values, result.layers[key], axis, lengths, alt_indices, alt_index, fill_value)
        if direct is not None:
            result.layers[key] = direct
            replaced += 1
    return replaced
