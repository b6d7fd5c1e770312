"""Indexer normalisation and subsetting of elements.

Every indexer ``AnnData.__getitem__`` accepts is normalised, per axis, to one of two forms:

* a ``slice`` with non-negative integer ``start`` and ``step`` (``stop`` may be ``None`` for
  a negative step that runs to the first element), or
* a 1-D ``numpy.intp`` array of non-negative positions.

Both forms compose (views of views) with :func:`compose_index` and subset any element with
:func:`subset_axis` / :func:`subset_2d`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "Index1D",
    "normalize_indices",
    "normalize_index",
    "compose_index",
    "index_length",
    "as_positions",
    "subset_axis",
    "subset_2d",
    "is_full_slice",
    "dense",
    "get_vector",
]

Index1D: TypeAlias = slice | np.ndarray

_AXIS_LABEL = {"obs": "Observation", "var": "Variable"}


def unpack_index(index: Any) -> tuple[Any, Any]:
    """Split ``adata[index]`` into its obs and var parts, resolving ``Ellipsis``."""
    if not isinstance(index, tuple):
        index = (index,)
    n_ellipsis = sum(1 for i in index if i is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        pos = next(k for k, i in enumerate(index) if i is Ellipsis)
        fill = 2 - (len(index) - 1)
        if fill < 0:
            raise IndexError(f"Received a length {len(index)} index with an ellipsis and more than two axes")
        index = (*index[:pos], *([slice(None)] * fill), *index[pos + 1 :])
    if len(index) > 2:
        raise IndexError(f"Received a length {len(index)} index without an ellipsis")
    if len(index) == 1:
        return index[0], slice(None)
    return index[0], index[1]


def normalize_indices(index: Any, obs_names: pd.Index, var_names: pd.Index) -> tuple[Index1D, Index1D]:
    """Normalise ``adata[index]`` to a pair of (slice | int array) indexers.

    Parameters
    ----------
    index
        Anything ``AnnData.__getitem__`` accepts.
    obs_names, var_names
        The names used to resolve string indexers.

    Returns
    -------
    The obs and var indexers in normal form.
    """
    if isinstance(index, pd.DataFrame):
        raise IndexError(f"Unknown indexer {index!r} of type {type(index)}")
    oidx, vidx = unpack_index(index)
    return normalize_index(oidx, obs_names, "obs"), normalize_index(vidx, var_names, "var")


def _name_position(names: pd.Index, key: Any) -> int:
    pos = names.get_loc(key)
    if not isinstance(pos, (int, np.integer)):
        raise KeyError(f"{key!r} is not a unique name; use positions instead")
    return int(pos)


def _normalize_slice(idx: slice, names: pd.Index) -> slice:
    start, stop = idx.start, idx.stop
    if isinstance(start, str):
        start = _name_position(names, start)
    if isinstance(stop, str):
        stop = _name_position(names, stop) + 1  # label slices include their stop
    return _range_to_slice(range(*slice(start, stop, idx.step).indices(len(names))))


def _range_to_slice(r: range) -> slice:
    """A slice selecting the positions of ``r`` (all non-negative) on any long-enough axis."""
    if len(r) == 0:
        return slice(0, 0, 1)
    # a negative stop only arises for a negative step running to position 0
    return slice(r.start, r.stop if r.stop >= 0 else None, r.step)


def _array_from(idx: Any) -> np.ndarray:
    if sparse.issparse(idx):
        idx = idx.toarray()
    elif isinstance(idx, (pd.Series, pd.Index)):
        if isinstance(idx.dtype, pd.CategoricalDtype):
            idx = idx.astype(idx.dtype.categories.dtype)
        idx = idx.to_numpy()
    elif isinstance(idx, pd.api.extensions.ExtensionArray):
        idx = idx.to_numpy()
    arr = np.asarray(idx)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    return arr


def normalize_index(idx: Any, names: pd.Index, axis_name: str = "obs") -> Index1D:
    """Normalise one axis' indexer against ``names`` (see the module docstring)."""
    n = len(names)
    if isinstance(idx, slice):
        return _normalize_slice(idx, names)
    if isinstance(idx, (int, np.integer)) and not isinstance(idx, np.bool_):
        i = int(idx)
        if not -n <= i < n:
            raise IndexError(f"{_AXIS_LABEL[axis_name]} index `{i}` is out of range.")
        i = i % n
        return slice(i, i + 1, 1)
    if isinstance(idx, str):
        return slice(p := _name_position(names, idx), p + 1, 1)
    if isinstance(idx, np.bool_):  # anndata 0.13 treats numpy scalars as 0-d arrays
        raise IndexError(
            "Boolean index does not match AnnData’s shape along this dimension. "
            f"Boolean index has shape () while AnnData index has shape {names.shape}."
        )
    if idx is None or isinstance(idx, (float, np.floating, dict)):
        raise IndexError(f"Unknown indexer {idx!r} of type {type(idx)}")
    if type(idx).__module__.startswith("xarray") and hasattr(idx, "dims") and len(idx.dims) == 1:
        idx = np.asarray(idx)  # an xarray DataArray (e.g. a mask built from a lazy obs)
    if not isinstance(idx, (np.ndarray, Sequence, pd.Index, pd.Series, pd.api.extensions.ExtensionArray)) and not (
        sparse.issparse(idx)
    ):
        raise IndexError(f"Unknown indexer {idx!r} of type {type(idx)}")
    arr = _array_from(idx)
    if arr.ndim != 1:
        raise IndexError(f"Indexer of shape {arr.shape} is not one-dimensional.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.intp)
    kind = arr.dtype.kind
    if kind == "b":
        if arr.shape[0] != n:
            raise IndexError(
                "Boolean index does not match AnnData’s shape along this dimension. "
                f"Boolean index has shape {arr.shape} while AnnData index has shape {names.shape}."
            )
        return np.flatnonzero(arr)
    if kind == "f":
        as_int = arr.astype(np.intp)
        if not np.array_equal(as_int, arr):
            raise IndexError(f"Indexer {arr!r} has floating point values.")
        arr, kind = as_int, "i"
    if kind in "iu":
        arr = arr.astype(np.intp, copy=False)
        if arr.min() < -n or arr.max() >= n:
            raise IndexError("positional indexers are out-of-bounds")
        return np.where(arr < 0, arr + n, arr) if arr.min() < 0 else arr
    if kind in "USO" or isinstance(arr.dtype, pd.StringDtype):
        positions = names.get_indexer(arr) if names.is_unique else names.get_indexer_for(arr)
        if len(positions) != len(arr):
            raise KeyError("Cannot index by names when the names are not unique and a name repeats.")
        missing = positions < 0
        if missing.any():
            raise KeyError(
                f"Values {list(arr[missing])}, from {list(arr)}, are not valid obs/ var names or indices."
            )
        return positions.astype(np.intp, copy=False)
    raise IndexError(f"Unknown indexer {idx!r} of type {type(idx)}")


def index_length(idx: Index1D, n: int) -> int:
    """Number of positions selected by ``idx`` along an axis of length ``n``."""
    if isinstance(idx, slice):
        return len(range(*idx.indices(n)))
    return len(idx)


def as_positions(idx: Index1D, n: int) -> np.ndarray:
    """Integer positions selected by ``idx`` along an axis of length ``n``."""
    if isinstance(idx, slice):
        return np.arange(*idx.indices(n), dtype=np.intp)
    return np.asarray(idx, dtype=np.intp)


def is_full_slice(idx: Index1D, n: int) -> bool:
    """Whether ``idx`` selects the whole axis in order."""
    return isinstance(idx, slice) and idx.indices(n) == (0, n, 1)


def compose_index(parent: Index1D, child: Index1D, n: int) -> Index1D:
    """The indexer equivalent to applying ``parent`` then ``child`` on an axis of length ``n``."""
    if isinstance(parent, slice) and isinstance(child, slice):
        return _range_to_slice(range(*parent.indices(n))[child])
    return as_positions(parent, n)[child]


def _sorted_read(x: Any, idx: np.ndarray, axis: int) -> Any:
    """Read rows/cols ``idx`` from an on-disk array that needs increasing indices (h5py)."""
    uniq, inverse = np.unique(idx, return_inverse=True)
    key = (uniq,) if axis == 0 else (slice(None), uniq)
    block = np.asarray(x[key])
    return np.take(block, inverse, axis=axis)


def _is_plain(x: Any) -> bool:
    return isinstance(x, np.ndarray) or sparse.issparse(x)


#: Functions ``fn(x, idx, axis)`` that subset special array types themselves (returning
#: ``NotImplemented`` when they do not apply). :mod:`annio._lazy` registers one that turns a
#: row selection of a lazy array into a read of just those rows (the core never imports it).
_ARRAY_SUBSETTERS: list[Callable[[Any, Any, int], Any]] = []


def register_array_subsetter(fn: Callable[[Any, Any, int], Any]) -> None:
    """Let ``fn(x, idx, axis)`` subset arrays it recognises (see ``_ARRAY_SUBSETTERS``)."""
    if fn not in _ARRAY_SUBSETTERS:
        _ARRAY_SUBSETTERS.append(fn)


def subset_axis(x: Any, idx: Index1D, axis: int = 0) -> Any:
    """Subset ``x`` along ``axis`` (0 or 1) with a normalised indexer."""
    for subsetter in _ARRAY_SUBSETTERS:  # slices too: a lazy row range reads only its rows
        out = subsetter(x, idx, axis)
        if out is not NotImplemented:
            return out
    if isinstance(x, pd.DataFrame) or hasattr(x, "_annio_lazy_frame"):
        if axis != 0:
            raise ValueError("DataFrames can only be subset along their rows here")
        return x.iloc[idx]
    if x is None:
        return None
    key: tuple = (idx,) if axis == 0 else (slice(None), idx)
    if _is_plain(x) or isinstance(idx, slice) or type(x).__module__.startswith(("dask", "awkward")):
        return x[key]
    if type(x).__module__.startswith(("h5py", "zarr")):
        return _sorted_read(x, idx, axis)
    return x[key]


def subset_2d(x: Any, oidx: Index1D, vidx: Index1D) -> Any:
    """Subset a 2-D element on both axes with normalised indexers."""
    if x is None:
        return None
    both_slices = isinstance(oidx, slice) and isinstance(vidx, slice) and not type(x).__module__.startswith("dask")
    if both_slices or getattr(x, "_annio_backed_sparse", False):
        return x[oidx, vidx]  # backed datasets pick the cheapest on-disk read themselves
    if isinstance(x, np.ndarray) and not isinstance(oidx, slice) and not isinstance(vidx, slice):
        return x[np.ix_(oidx, vidx)]
    if sparse.issparse(x) and x.format == "csc":
        return subset_axis(subset_axis(x, vidx, 1), oidx, 0)
    return subset_axis(subset_axis(x, oidx, 0), vidx, 1)


def dense(x: Any) -> np.ndarray:
    """A dense numpy array of any 2-D element (sparse, dask, on-disk, views)."""
    if sparse.issparse(x):
        return x.toarray()
    if hasattr(x, "compute") and type(x).__module__.startswith("dask"):
        x = x.compute()
    if hasattr(x, "to_memory") and not isinstance(x, np.ndarray):
        x = x.to_memory()
        if sparse.issparse(x):
            return x.toarray()
    if type(x).__module__.startswith(("h5py", "zarr")):
        x = x[...]
    return np.asarray(x)


def get_vector(adata: Any, k: str, coldim: str, layer: str | None = None) -> Any:
    """``obs_vector``/``var_vector``: a ``coldim`` column ``k`` or the values of name ``k``.

    Parameters
    ----------
    adata
        The AnnData.
    k
        A column of ``adata.obs`` (``coldim="obs"``) / ``adata.var``, or a var / obs name.
    coldim
        ``"obs"`` or ``"var"``: the axis along which values are returned.
    layer
        Read names from this layer instead of X.
    """
    idxdim = "var" if coldim == "obs" else "obs"
    df = getattr(adata, coldim)
    names = getattr(adata, f"{idxdim}_names")
    in_col, in_idx = k in df.columns, k in names
    if in_col and in_idx:
        raise ValueError(f"Key {k} could be found in both .{idxdim}_names and .{coldim}.columns")
    if not (in_col or in_idx):
        raise KeyError(f"Could not find key {k} in .{idxdim}_names or .{coldim}.columns.")
    if in_col:
        return df[k].values
    X = adata.X if layer is None else adata.layers[layer]
    pos = names.get_loc(k)
    return dense(subset_axis(X, slice(pos, pos + 1), 1 if coldim == "obs" else 0)).ravel()
