"""Per-element building blocks of ``concat``: reindexing an element onto the joined index of
the other axis (padding with a fill value), stacking arrays of every kind (numpy, scipy
sparse, dask, awkward, DataFrames) and combining data-frame columns (categoricals with a
union of categories, nullable dtypes, missing columns)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "Reindexer", "concat_arrays", "missing_like", "combine_columns", "natural_sorted", "is_dask", "is_awkward",
    "strings_padded", "padded_string_dtype",
]


_PANDAS_2 = int(pd.__version__.split(".")[0]) < 3


def is_dask(value: Any) -> bool:
    return type(value).__module__.startswith("dask")


def is_awkward(value: Any) -> bool:
    return type(value).__module__.startswith("awkward")


def _is_sparray(value: Any) -> bool:
    return isinstance(value, sp.sparray)


def _dask_is_sparse(value: Any) -> bool:
    return is_dask(value) and sp.issparse(getattr(value, "_meta", None))


def _fill_dtype(dtype: np.dtype, fill_value: Any) -> np.dtype:
    if fill_value is None:
        return np.result_type(dtype, np.float64) if dtype.kind in "biu" else dtype
    return np.result_type(dtype, np.asarray(fill_value).dtype)


class Reindexer:
    """Moves an element from index ``old`` onto index ``new`` along one axis; positions of
    ``new`` missing from ``old`` are padded."""

    def __init__(self, old: pd.Index, new: pd.Index) -> None:
        self.old, self.new = old, new
        self.identity = old is new or old.equals(new)
        if not self.identity:
            if not old.is_unique:
                raise pd.errors.InvalidIndexError(f"cannot reindex an axis with duplicate names: {old[old.duplicated()][:5].tolist()}")
            self.take = old.get_indexer(new)  # old position of each new entry, -1 if missing
            self.missing = bool((self.take < 0).any())
        self._old_to_new: np.ndarray | None = None

    def old_to_new(self) -> np.ndarray | None:
        """The new position of each old entry (``-1``: not in ``new``), ``None`` for the
        identity."""
        if self.identity:
            return None
        if self._old_to_new is None:
            out = np.full(len(self.old), -1, dtype=np.int64)
            present = self.take >= 0
            out[self.take[present]] = np.flatnonzero(present)
            self._old_to_new = out
        return self._old_to_new

    def __call__(self, value: Any, axis: int, fill_value: Any = None) -> Any:
        if getattr(value, "_annio_lazy_frame", False):
            value = value.to_memory()
        if self.identity:
            return value
        if is_dask(value):
            return self._dask(value, axis, fill_value)
        if isinstance(value, pd.DataFrame):
            if axis != 0:
                raise ValueError("data frames can only be reindexed along their rows")
            out = value.reset_index(drop=True).reindex(self.take)
            if self.missing:
                for c in [c for c in out.columns if out[c].dtype == object]:
                    out[c] = strings_padded(out[c].array)
            out.index = self.new
            return out
        if sp.issparse(value):
            return self._sparse(value, axis, fill_value)
        if is_awkward(value):
            import awkward as ak

            take = ak.Array(np.ma.masked_array(np.where(self.take < 0, 0, self.take), mask=self.take < 0))
            return value[take]
        value = np.asarray(value)
        if not self.missing:
            return np.take(value, self.take, axis=axis)
        dtype = _fill_dtype(value.dtype, fill_value)
        out = np.take(value, np.where(self.take < 0, 0, self.take), axis=axis).astype(dtype, copy=False)
        sel = [slice(None)] * value.ndim
        sel[axis] = self.take < 0
        out[tuple(sel)] = np.nan if fill_value is None else fill_value
        return out

    def _sparse(self, value: Any, axis: int, fill_value: Any) -> Any:
        cls = sp.csr_array if _is_sparray(value) else sp.csr_matrix
        new_pos = self.old_to_new()
        present = self.take >= 0
        coo = sp.coo_matrix(value)
        row, col = coo.row, coo.col
        if axis == 1:
            keep = new_pos[col] >= 0
            row, col = row[keep], new_pos[col[keep]]
        else:
            keep = new_pos[row] >= 0
            row, col = new_pos[row[keep]], col[keep]
        shape = list(value.shape)
        shape[axis] = len(self.new)
        out = sp.csr_matrix((coo.data[keep], (row, col)), shape=tuple(shape))
        if self.missing and fill_value not in (None, 0):
            dense_pad = np.zeros(tuple(shape), dtype=bool)
            sel = [slice(None)] * 2
            sel[axis] = ~present
            dense_pad[tuple(sel)] = True
            pad = sp.csr_matrix(dense_pad).astype(np.result_type(out.dtype, np.asarray(fill_value).dtype)) * fill_value
            out = out.astype(pad.dtype) + pad
        return cls(out)

    def _dask(self, value: Any, axis: int, fill_value: Any) -> Any:
        if len(value.chunks[axis]) > 1:
            value = value.rechunk({axis: -1})
        chunks = list(value.chunks)
        chunks[axis] = (len(self.new),)
        meta = value._meta
        if sp.issparse(meta):
            out_meta = (sp.csr_array if _is_sparray(meta) else sp.csr_matrix)((0, 0), dtype=meta.dtype)
            dtype = meta.dtype if fill_value in (None, 0) else np.result_type(meta.dtype, np.asarray(fill_value).dtype)
        else:
            dtype = _fill_dtype(value.dtype, fill_value) if self.missing else value.dtype
            out_meta = np.empty((0,) * value.ndim, dtype=dtype)
        return value.map_blocks(lambda block: self(block, axis, fill_value), chunks=tuple(chunks), dtype=dtype, meta=out_meta)


def missing_like(like: Sequence[Any], shape: tuple[int, ...], fill_value: Any) -> Any:
    """The stand-in for an element an input lacks (outer join): sparse zeros if the others
    are sparse (explicit ``fill_value`` entries if it is non-zero), else filled dense."""
    lazy = any(is_dask(v) for v in like)
    sparse = any(sp.issparse(v) or _dask_is_sparse(v) for v in like)
    if sparse:
        sparray = any(_is_sparray(v) or (is_dask(v) and _is_sparray(v._meta)) for v in like)
        cls = sp.csr_array if sparray else sp.csr_matrix
        if fill_value in (None, 0):
            make = lambda s: cls(s, dtype=bool)
        else:
            make = lambda s: cls(np.full(s, fill_value))
        if lazy:
            import dask.array as da

            chunk = max(1, min(shape[0], 10_000))
            base = da.zeros(shape, chunks=(chunk, -1), dtype=bool)
            meta = make((0, 0))
            return base.map_blocks(lambda b: make(b.shape), dtype=meta.dtype, meta=meta)
        return make(shape)
    value = np.nan if fill_value is None else fill_value
    if lazy:
        import dask.array as da

        return da.full(shape, value, chunks=(max(1, min(shape[0], 10_000)),) + (-1,) * (len(shape) - 1))
    return np.full(shape, value)


def _to_sparse_for_stack(value: Any) -> Any:
    return value if sp.issparse(value) else sp.csr_matrix(np.asarray(value))


def concat_arrays(values: Sequence[Any], axis: int, *, join: str = "inner", index: pd.Index | None = None) -> Any:
    """Stack ``values`` (already reindexed on the other axis) along ``axis``."""
    if any(isinstance(v, pd.DataFrame) for v in values):
        frames = [v if isinstance(v, pd.DataFrame) else pd.DataFrame(v) for v in values]
        out = pd.concat(frames, join=join, ignore_index=True)
        if index is not None:
            out.index = index
        return out
    if any(is_awkward(v) for v in values):
        import awkward as ak

        return ak.concatenate(list(values), axis=axis)
    if any(is_dask(v) for v in values):
        return _concat_dask(values, axis)
    if any(sp.issparse(v) for v in values):
        cls = sp.csr_array if any(_is_sparray(v) for v in values) else sp.csr_matrix
        parts = [_to_sparse_for_stack(v) for v in values]
        stacked = sp.vstack(parts, format="csr") if axis == 0 else sp.hstack(parts, format="csr")
        return cls(stacked)
    return np.concatenate([np.asarray(v) for v in values], axis=axis)


def _concat_dask(values: Sequence[Any], axis: int) -> Any:
    import dask.array as da

    sparse = any(sp.issparse(v) or _dask_is_sparse(v) for v in values)
    sparray = any(_is_sparray(v) or (is_dask(v) and _is_sparray(v._meta)) for v in values)
    cls = sp.csr_array if sparray else sp.csr_matrix
    parts = []
    for v in values:
        if not is_dask(v):
            v = da.from_array(_to_sparse_for_stack(v) if sparse else np.asarray(v), chunks=-1, asarray=False)
        elif sparse and not _dask_is_sparse(v):
            v = v.map_blocks(lambda b: cls(np.asarray(b)), meta=cls((0, 0), dtype=v.dtype))
        parts.append(v)
    other = 1 - axis
    if sparse:  # chunk every part along the concatenation axis only (CSR-like blocks)
        parts = [p if len(p.chunks[other]) == 1 else p.rechunk({other: -1}) for p in parts]
        parts = [p.map_blocks(lambda b: cls(b), meta=cls((0, 0), dtype=p.dtype)) for p in parts]
    elif len({p.chunks[other] for p in parts}) > 1:
        parts = [p.rechunk({other: parts[0].chunks[other]}) for p in parts]
    if sparse and axis == 1:
        rows = parts[0].chunks[0]
        parts = [p if p.chunks[0] == rows else p.rechunk({0: rows}) for p in parts]
    out = da.concatenate(parts, axis=axis)
    if sparse:
        out = out.map_blocks(lambda b: cls(b), meta=cls((0, 0), dtype=out.dtype))
    return out


# -- data frame columns ------------------------------------------------------------------
def _natural_key(value: Any) -> tuple:
    parts = re.split(r"(\d+)", str(value))
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def natural_sorted(values: Sequence[Any]) -> list[Any]:
    """Natural order (``"x2"`` before ``"x10"``; numbers numerically)."""
    values = list(values)
    if all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=_natural_key)


def unify_categoricals(present: Sequence[pd.Categorical]) -> Any:
    """The dtype a set of categorical pieces is combined into (``object`` when they cannot
    be: ordered with different categories)."""
    dtypes = [p.dtype for p in present]
    first = dtypes[0]
    if all(d is first or (d.ordered == first.ordered and d.categories.equals(first.categories)) or d == first for d in dtypes[1:]):
        # one dtype (unordered: the same set of categories, in any order): the first's
        # categories in their order, as pandas' concatenation keeps them
        return dtypes[0]
    if any(d.ordered for d in dtypes):
        first = dtypes[0]
        if all(d.ordered and d.categories.equals(first.categories) for d in dtypes):
            return pd.CategoricalDtype(first.categories, ordered=True)
        return np.dtype(object)
    seen: dict[Any, None] = {}
    for d in dtypes:
        for c in d.categories:
            seen.setdefault(c, None)
    categories = pd.Index(natural_sorted(seen), dtype=dtypes[0].categories.dtype if len(dtypes) == 1 else None)
    if all(d.categories.equals(categories) for d in dtypes):
        return dtypes[0]
    return pd.CategoricalDtype(categories, ordered=False)


def combine_columns(pieces: Sequence[Any | None], lengths: Sequence[int]) -> Any:
    """One data-frame column from its pieces (``None`` where an input lacks the column),
    with pandas' concatenation dtypes plus: categoricals unified (see
    :func:`unify_categoricals`), booleans with missing pieces → ``boolean``."""
    present = [p for p in pieces if p is not None]
    if present and all(isinstance(p, pd.Categorical) or isinstance(getattr(p, "dtype", None), pd.CategoricalDtype) for p in present):
        cats = [None if p is None else p if isinstance(p, pd.Categorical) else pd.Categorical(p) for p in pieces]
        target = unify_categoricals([c for c in cats if c is not None])
        if isinstance(target, pd.CategoricalDtype):
            return _stack_codes(cats, lengths, target)
        pieces = [None if p is None else np.asarray(p, dtype=object) for p in pieces]  # ordered, differing: values
        present = [p for p in pieces if p is not None]
    if len(present) == len(pieces) and present and len({str(p.dtype) for p in present}) == 1:
        first = present[0]
        if isinstance(first, np.ndarray) or type(first) is pd.arrays.NumpyExtensionArray:  # not its string subclasses
            return np.concatenate([np.asarray(p) for p in present])
        if isinstance(first, pd.api.extensions.ExtensionArray) and not isinstance(first, pd.arrays.NumpyExtensionArray | pd.arrays.StringArray):
            if not isinstance(first, pd.Categorical) or all(p.dtype == first.dtype for p in present):
                return type(first)._concat_same_type(present)
    frames = [pd.DataFrame({"c": p}, copy=False) if p is not None else pd.DataFrame(index=pd.RangeIndex(n)) for p, n in zip(pieces, lengths, strict=True)]
    import warnings
    from contextlib import nullcontext

    # pandas 2's opt-in to pandas 3's behaviour (the option is deprecated in pandas 3)
    quiet = pd.option_context("future.no_silent_downcasting", True) if _PANDAS_2 else nullcontext()
    with quiet, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = pd.concat(frames, join="outer", ignore_index=True)["c"].array
    if len(present) < len(pieces) and present and all(getattr(p, "dtype", None) == np.dtype(bool) for p in present):
        out = pd.array(out, dtype="boolean")
    elif len(present) < len(pieces):
        out = strings_padded(out)
    if type(out) is pd.arrays.NumpyExtensionArray:
        return out.to_numpy()
    return out


def _stack_codes(cats: Sequence[pd.Categorical | None], lengths: Sequence[int], target: pd.CategoricalDtype) -> pd.Categorical:
    """Categorical pieces (``None``: missing) as one categorical of dtype ``target``: the
    pieces' codes, sent to ``target``'s categories where theirs differ, concatenated."""
    if type(target) is not pd.CategoricalDtype:  # e.g. a part's lazily read dtype
        target = pd.CategoricalDtype(target.categories, target.ordered)
    codes = []
    for c, n in zip(cats, lengths, strict=True):
        if c is None:
            codes.append(np.full(n, -1, dtype=np.int8))
        elif c.categories.equals(target.categories):
            codes.append(c.codes)
        else:
            remap = target.categories.get_indexer(c.categories)
            codes.append(np.where(c.codes < 0, -1, remap[np.maximum(c.codes, 0)]) if len(remap) else np.full(len(c), -1, dtype=np.int8))
    return pd.Categorical.from_codes(np.concatenate(codes) if codes else np.zeros(0, dtype=np.int8), dtype=target, validate=False)


def padded_string_dtype() -> pd.StringDtype:
    """The dtype of string columns that concatenation pads with missing values: pandas'
    ``str`` (NaN for missing, pandas 3's default for strings, what anndata 0.13 gives), or
    the nullable ``string`` dtype on pandas < 2.3, which has no ``str``."""
    try:
        return pd.StringDtype(na_value=np.nan)
    except TypeError:  # pragma: no cover - pandas < 2.3
        return pd.StringDtype()


def strings_padded(values: Any) -> Any:
    """``values`` (a column padded with missing values by a join) as a string array when
    it is an ``object`` column of strings: ``object`` strings mixed with NaN cannot be
    written (a ``string-array`` holds no missing values), a string array can."""
    if not pd.api.types.is_object_dtype(getattr(values, "dtype", None)):
        return values
    raw = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(raw, skipna=True) not in ("string", "empty"):
        return values
    return pd.array(raw, dtype=padded_string_dtype())


def frame_columns(columns: Sequence[Sequence[str]], join: str) -> list[str]:
    """Column names of concatenated frames: all (first-seen order) or the shared ones."""
    if join == "inner":
        shared = set(columns[0]).intersection(*map(set, columns[1:])) if columns else set()
        return [c for c in columns[0] if c in shared] if columns else []
    seen: dict[str, None] = {}
    for cols in columns:
        for c in cols:
            seen.setdefault(c, None)
    return list(seen)


def concat_frames(frames: Sequence[pd.DataFrame], join: str, index: pd.Index) -> pd.DataFrame:
    """Concatenate annotation frames along their rows (columns joined by ``join``)."""
    for f in frames:
        if not f.columns.is_unique:
            raise pd.errors.InvalidIndexError("Cannot combine dataframes as some contained duplicated column names - causing ambiguity.")
    names = frame_columns([list(f.columns) for f in frames], join)
    lengths = [len(f) for f in frames]
    data = {c: _keep_object(combine_columns([f[c].array if c in f.columns else None for f in frames], lengths)) for c in names}
    if not names:
        return pd.DataFrame(index=index)
    out = pd.DataFrame(data, columns=names)
    out.index = index
    return out


def _keep_object(values: Any) -> Any:
    """An ``object`` column as a Series, so that pandas 3 does not re-infer ``str`` for it
    (the combined dtype is pandas' concatenation dtype, as anndata's)."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return pd.Series(values, dtype=object, copy=False)
    return values
