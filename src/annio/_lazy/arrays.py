"""Dask arrays over stored arrays: dense (numeric and string) and compressed sparse.

Every task reads through an :class:`ArraySource`, a small picklable handle on one stored
array. zarr arrays pickle as they are; HDF5 datasets are remembered by file name and path
and, once pickled (``dask.distributed`` with worker processes) or when the original file
was closed, each read reopens the file read-only (``h5py.File(filename, "r")``).

Chunk rules (anndata's, except where annio improves on them):

* dense zarr: the shard shape when the array is sharded (a task never straddles a shard
  and never reads a shard twice), otherwise the zarr chunk shape;
* dense HDF5: the dataset's chunk shape, or ``min(1000, n)`` per axis when contiguous;
* sparse CSR/CSC: blocks along the major axis only, 1000 rows by default or more when the
  stored ``indptr``/``data`` chunks are larger; each block reads exactly its ``indptr``
  range and the matching range of ``data`` and ``indices``, through the same reader as
  backed mode (:func:`annio.io._storage.sparse_read.read_major_slice`).

``chunks`` given by the caller override the defaults; ``-1`` or ``None`` mean the whole axis.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import dask.array as da  # imported with annio._lazy, not on the first read_lazy call
import h5py
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from annio._lazy.pushdown import remember
from annio.errors import FormatError
from annio.io._encodings.sparse import result_class, stored_parts
from annio.io._storage.adapter import StorageArray, StorageGroup, wrap
from annio.io._storage.sparse_read import read_major_slice

__all__ = [
    "ArraySource",
    "dense_dask",
    "sparse_dask",
    "dense_chunks",
    "sparse_stride",
    "read_sparse_block",
    "DEFAULT_SPARSE_STRIDE",
]

DEFAULT_SPARSE_STRIDE = 1000
_DENSE_H5_DEFAULT = 1000
# more dask blocks than this cannot be scheduled (dask holds one graph key per block)
_MAX_BLOCKS = 10**7
#: Read a covering range instead of a point selection when at least this share of it is wanted.
_DENSE_SELECTION = 0.1


class ArraySource:
    """A picklable handle on one stored array, read with :meth:`read`/``[]``.

    Parameters
    ----------
    node
        The stored array (a :class:`~annio.io._storage.adapter.StorageArray` or raw h5py/zarr array).
    """

    def __init__(self, node: Any) -> None:
        node = wrap(node)
        if not isinstance(node, StorageArray):
            raise TypeError(f"{node.path}: expected an array, found a group")
        self._node: StorageArray | None = node
        self.backend = node.backend
        self.path = node.path
        self.shape = node.shape
        self.dtype = node.dtype
        self.ndim = len(self.shape)
        self.chunks = node.chunks
        self.shards = node.shards
        self.filename = node.filename if node.backend == "hdf5" else None

    # -- pickling: h5py objects cannot be pickled, so only the file name and path travel --
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.backend == "hdf5":
            state["_node"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __dask_tokenize__(self) -> Any:
        return (type(self).__name__, self.backend, self.filename, self.path, self.shape, str(self.dtype), id(self))

    def __repr__(self) -> str:
        return f"<ArraySource {self.backend} {self.filename or ''}:{self.path} {self.shape} {self.dtype}>"

    def _open_node(self) -> StorageArray | None:
        node = self._node
        if node is None:
            return None
        if self.backend == "hdf5" and not node.raw.id.valid:  # the user closed the file
            return None
        return node

    def _with_node(self, fn: Any) -> Any:
        """``fn(node)`` on the open stored array, or on the HDF5 dataset reopened by name."""
        node = self._open_node()
        if node is not None:
            return fn(node)
        if self.backend != "hdf5":  # pragma: no cover - zarr nodes always travel
            raise RuntimeError(f"{self.path}: the stored array is no longer available")
        with h5py.File(self.filename, "r") as f:
            return fn(StorageArray(f[self.path]))

    def read(self, selection: Any = ...) -> np.ndarray:
        """Read ``selection`` (basic indexing, or one sorted array of unique positions)."""
        return self._with_node(lambda node: node.read(selection))

    def read_ranges(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """See :meth:`annio.io._storage.adapter.StorageArray.read_ranges`."""
        return self._with_node(lambda node: node.read_ranges(starts, stops))

    def __getitem__(self, selection: Any) -> np.ndarray:
        return self.read(selection)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Values at ``positions`` along axis 0 (any order, repeats allowed).

        Reads only what is needed: a covering range when the positions are dense in it,
        otherwise a point selection of the sorted unique positions.
        """
        positions = np.asarray(positions, dtype=np.intp)
        if positions.size == 0:
            return self.read(slice(0, 0))
        uniq, inverse = np.unique(positions, return_inverse=True)
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if len(uniq) == hi - lo:
            block = self.read(slice(lo, hi))
            return block if np.array_equal(positions, uniq) else block[uniq[inverse] - lo]
        if _covering(len(uniq), lo, hi):
            block = self.read(slice(lo, hi))[uniq - lo]
        else:
            block = self.read(uniq)
        return block if np.array_equal(positions, uniq) else block[inverse]

    @staticmethod
    def take_span(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The row ranges ``(starts, stops)`` :meth:`take` reads for ``positions``."""
        from annio.io._storage.ranges import runs

        uniq = np.unique(np.asarray(positions, dtype=np.int64))
        if uniq.size == 0:
            return uniq, uniq
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if len(uniq) == hi - lo or _covering(len(uniq), lo, hi):
            return np.array([lo]), np.array([hi])
        return runs(uniq)


def _covering(n: int, lo: int, hi: int) -> bool:
    return n >= _DENSE_SELECTION * (hi - lo)


# ============================================================================= dense
def _full_axis(value: Any) -> bool:
    return value is None or (isinstance(value, int | np.integer) and int(value) == -1)


def dense_chunks(node: StorageArray | ArraySource, chunks: Any = None) -> tuple[int, ...]:
    """The dask chunk shape for a dense stored array (see the module docstring)."""
    shape = tuple(node.shape)
    if chunks is not None:
        chunks = tuple(chunks) if isinstance(chunks, tuple | list) else (chunks,) * len(shape)
        if len(chunks) != len(shape):
            raise ValueError(f"{node.path}: chunks {chunks} do not match the array's {len(shape)} dimensions")
        return tuple(max(1, n) if _full_axis(c) else int(c) for c, n in zip(chunks, shape, strict=True))
    if node.backend == "zarr":
        grid = node.shards or node.chunks
    else:
        grid = node.chunks or tuple(min(_DENSE_H5_DEFAULT, n) for n in shape)
    return tuple(max(1, min(int(g), n) if n else 1) for g, n in zip(grid, shape, strict=True))


def dense_dask(node: Any, chunks: Any = None) -> Any:
    """A dask array over a dense stored array (numeric, boolean or strings as objects)."""

    source = node if isinstance(node, ArraySource) else ArraySource(node)
    shape = source.shape
    if not shape:
        raise ValueError(f"{source.path}: 0-d arrays are read eagerly")
    source._with_node(lambda n: n.check_stored())
    block_shape = dense_chunks(source, chunks)
    n_blocks = 1
    for n, c in zip(shape, block_shape, strict=True):
        n_blocks *= -(-int(n) // max(1, int(c)))
    if n_blocks > _MAX_BLOCKS:
        raise FormatError(
            source.path,
            f"shape {shape} in blocks of {block_shape} makes {n_blocks} dask blocks (at most {_MAX_BLOCKS}): "
            "the declared shape is damaged, or pass larger chunks=",
        )
    name = f"annio-{source.path.strip('/').replace('/', '-') or 'array'}-{uuid.uuid4().hex}"
    meta = np.empty((0,) * len(shape), dtype=source.dtype)
    try:
        array = _sliced_array(source, block_shape, name, meta)
    except (ImportError, TypeError):  # another dask: its public constructor (same graph)
        array = da.from_array(source, chunks=block_shape, name=name, asarray=True, fancy=True, lock=False, inline_array=True, meta=meta)
    return remember(array, "dense", source)


def _sliced_array(source: ArraySource, block_shape: tuple[int, ...], name: str, meta: np.ndarray) -> Any:
    """The graph ``da.from_array(source, inline_array=True, lock=False)`` builds — one
    ``getter(source, block slices)`` task per block, fusable with later slicing — built
    directly: ``from_array`` inspects the getter's signature twice per call, a third of a
    lazy open's array-building time for frames of many columns."""
    from dask.array.core import getter, normalize_chunks
    from dask.blockwise import blockwise
    from dask.layers import ArraySliceDep

    chunks = normalize_chunks(block_shape, source.shape, dtype=source.dtype)
    axes = tuple(range(len(source.shape)))
    layer = blockwise(getter, name, axes, source, None, ArraySliceDep(chunks), axes, numblocks={}, _data_producer=True)
    return da.Array(HighLevelGraph.from_collections(name, layer), name, chunks=chunks, meta=meta)


# ============================================================================= sparse
class SparseSource:
    """Picklable handles on the three arrays of a CSR/CSC group."""

    def __init__(self, group: StorageGroup, fmt: str) -> None:
        data, indices, indptr, self.shape = stored_parts(group, fmt)
        self.path = group.path
        self.fmt = fmt
        self.n_major, self.n_minor = self.shape if fmt == "csr" else self.shape[::-1]
        self.data = ArraySource(data)
        self.indices = ArraySource(indices)
        self.indptr = ArraySource(indptr)
        self.nnz = self.data.shape[0] if self.data.shape else 0

    def __dask_tokenize__(self) -> Any:
        return ("SparseSource", self.data.filename, self.path, self.fmt, self.shape, id(self))


def read_sparse_block(source: SparseSource, start: int, stop: int, cls: type) -> Any:
    """Rows (CSR) or columns (CSC) ``start:stop``: reads ``indptr[start:stop+1]`` and only
    the matching range of ``data`` and ``indices`` (:func:`annio.io._storage.sparse_read.read_major_slice`)."""
    triple = read_major_slice(source, start, stop)
    n = stop - start if stop > start else 0
    shape = (n, source.n_minor) if source.fmt == "csr" else (source.n_minor, n)
    return cls(triple, shape=shape)


def sparse_stride(source: SparseSource) -> int:
    """Default block length along the major axis: 1000, or more when the stored chunks of
    ``indptr`` (in rows) or of ``data`` (in rows at the average density) are larger, rounded
    to whole ``indptr`` chunks."""
    stride = DEFAULT_SPARSE_STRIDE
    indptr_chunk = (source.indptr.chunks or (0,))[0]
    stride = max(stride, indptr_chunk)
    data_chunk = (source.data.chunks or (0,))[0]
    if data_chunk and source.nnz and source.n_major:
        per_row = source.nnz / source.n_major
        stride = max(stride, math.ceil(data_chunk / per_row))
    if indptr_chunk > 1:
        stride = math.ceil(stride / indptr_chunk) * indptr_chunk
    return max(1, min(stride, source.n_major))


_MAJOR_ONLY = "Only the major axis can be chunked. Try setting chunks to {}"


def _stride_from_chunks(source: SparseSource, chunks: Any) -> int:
    if chunks is None:
        return sparse_stride(source)
    hint = "(1000, -1)" if source.fmt == "csr" else "(-1, 1000)"
    if isinstance(chunks, int | np.integer) and not isinstance(chunks, bool):
        chunks = (chunks, -1) if source.fmt == "csr" else (-1, chunks)  # one int: the major axis
    if not isinstance(chunks, tuple | list) or len(chunks) != 2:
        raise ValueError(_MAJOR_ONLY.format(hint))
    major, minor = (chunks[0], chunks[1]) if source.fmt == "csr" else (chunks[1], chunks[0])
    if not (_full_axis(minor) or int(minor) == source.n_minor):
        raise ValueError(_MAJOR_ONLY.format(hint))
    if _full_axis(major):
        return max(1, source.n_major)
    major = int(major)
    if major < 1:
        raise ValueError(f"{source.path}: chunk length must be positive, got {major}")
    return major


def sparse_dask(group: Any, fmt: str, chunks: Any = None) -> Any:
    """A dask array of scipy CSR (or CSC) blocks along the major axis of a sparse group."""

    source = SparseSource(wrap(group), fmt)
    stride = _stride_from_chunks(source, chunks)
    bounds = list(range(0, source.n_major, stride)) or [0]
    sizes = tuple(min(stride, source.n_major - b) for b in bounds) if source.n_major else (0,)
    cls = result_class(fmt)
    name = f"annio-{fmt}-{source.path.strip('/').replace('/', '-') or 'matrix'}-{uuid.uuid4().hex}"
    dsk = {}
    for i, (start, size) in enumerate(zip(bounds, sizes, strict=True)):
        key = (name, i, 0) if fmt == "csr" else (name, 0, i)
        dsk[key] = (read_sparse_block, source, start, start + size, cls)
    chunks_out = (sizes, (source.n_minor,)) if fmt == "csr" else ((source.n_minor,), sizes)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    meta = cls((0, 0), dtype=source.data.dtype)
    return remember(da.Array(graph, name, chunks=chunks_out, meta=meta, dtype=source.data.dtype), "sparse", source)
