"""``annio.concat``: join AnnData objects along the observations or the variables.

One implementation for eager and lazy inputs: the element functions of
:mod:`annio._ops.concat_elements` stack numpy, sparse and dask arrays alike, and lazy
annotation frames (:class:`~annio._lazy.frame.Dataset2D`) are concatenated by
:mod:`annio._ops.concat_lazy` into a lazy frame whose columns are combined by the same
column function on ``to_memory``. So ``concat(lazy).to_memory()`` equals ``concat(eager)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Mapping
from functools import reduce
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._ops.concat_elements import Reindexer, concat_arrays, concat_frames, is_dask, missing_like
from annio._ops.concat_sparse import stack_sparse_rows
from annio._ops.merge import resolve_strategy

__all__ = ["concat", "DEFAULT_JOIN"]


class _DefaultJoin(str):
    """The default ``join`` ("inner"), told apart from an explicit ``join="inner"``: anndata
    0.13 warns only when the default drops the ``X`` of some inputs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'inner'"


DEFAULT_JOIN: Any = _DefaultJoin("inner")

StrategyLike = Literal["same", "unique", "first", "only"] | Callable | None


def _check_axis(axis: Any) -> int:
    if axis in (0, "obs"):
        return 0
    if axis in (1, "var"):
        return 1
    raise ValueError(f"`axis` must be either 0, 1, 'obs', or 'var', was {axis!r}")


def _check_join(join: Any) -> str:
    if join is DEFAULT_JOIN:
        return join
    if join not in ("inner", "outer"):
        raise ValueError(f"`join` must be one of 'inner' or 'outer', was {join!r}")
    return str(join)


def _is_lazy_frame(frame: Any) -> bool:
    return getattr(frame, "_annio_lazy_frame", False)


def _inputs(adatas: Any, keys: Any) -> tuple[list[Any], list[str] | None]:
    if isinstance(adatas, Mapping):
        if keys is not None:
            raise TypeError("Cannot specify categories in both mapping keys and using `keys`. Only specify this once.")
        keys, adatas = list(adatas.keys()), list(adatas.values())
    else:
        adatas = list(adatas)
        keys = None if keys is None else list(keys)
    if keys is not None and len(keys) != len(adatas):
        raise ValueError(f"got {len(keys)} keys for {len(adatas)} objects to concatenate")
    from annio._bridge import as_annio
    from annio._core import AnnData

    adatas = [as_annio(a) for a in adatas]  # anndata.AnnData inputs are taken over without copying
    for a in adatas:
        if not isinstance(a, AnnData):
            raise TypeError(
                f"can only concatenate annio.AnnData or anndata.AnnData objects, got {type(a).__module__}.{type(a).__name__}"
            )
    return adatas, keys


def _join_indices(indices: list[pd.Index], join: str) -> pd.Index:
    first = indices[0]
    if all(first.equals(i) for i in indices[1:]):
        return first
    if join == "inner":
        return reduce(lambda a, b: a.intersection(b, sort=False), indices)
    return reduce(lambda a, b: a.union(b), indices)


def concat(
    adatas: Collection[Any] | Mapping[str, Any],
    *,
    axis: Literal["obs", 0, "var", 1] = "obs",
    join: Literal["inner", "outer"] = DEFAULT_JOIN,
    merge: StrategyLike = None,
    uns_merge: StrategyLike = None,
    label: str | None = None,
    keys: Collection[str] | None = None,
    index_unique: str | None = None,
    fill_value: Any = None,
    pairwise: bool = False,
) -> Any:
    """Concatenate AnnData objects along an axis (anndata's ``concat``).

    Parameters
    ----------
    adatas
        The objects, or a mapping ``{key: adata}`` (its keys become ``keys``). Objects from
        :func:`annio.experimental.read_lazy` give a lazy result (nothing is read until
        ``.to_memory()`` or a write); lazy and in-memory inputs mixed are all loaded.
    axis
        ``"obs"``/``0`` stacks observations, ``"var"``/``1`` variables.
    join
        ``"inner"`` keeps the intersection of the other axis (and of the element keys),
        ``"outer"`` the union, padding with ``fill_value``. When some inputs have no ``X``,
        the inner join drops it (with a warning if ``join`` was not given, as anndata 0.13)
        and the outer join pads the missing ones.
    merge
        How elements aligned with the other axis (``var``, ``varm``, ``varp`` when stacking
        observations) are combined: ``None`` drops them, ``"same"``, ``"unique"``,
        ``"first"``, ``"only"`` or a callable on the list of mappings.
    uns_merge
        The same strategies for ``uns`` (recursively).
    label
        Add a categorical column of this name to the concatenated axis' annotation, holding
        each row's ``keys`` entry.
    keys
        One name per input (default ``"0"``, ``"1"``, ...).
    index_unique
        If given, append ``f"{index_unique}{key}"`` to each concatenated name.
    fill_value
        Padding of outer joins (default: 0 for sparse, NaN for dense arrays and frames).
    pairwise
        Also concatenate ``obsp``/``varp`` (block-diagonally).

    Returns
    -------
    A new AnnData; the inputs are not modified.
    """
    axis_n = _check_axis(axis)
    join = _check_join(join)
    merge_fn = resolve_strategy(merge, "merge")
    uns_fn = resolve_strategy(uns_merge, "uns_merge")
    adatas, keys = _inputs(adatas, keys)
    if not adatas:
        raise ValueError("No objects to concatenate.")
    if keys is None:
        keys = [str(i) for i in range(len(adatas))]
    lazy = [_is_lazy_frame(a.obs) or _is_lazy_frame(a.var) for a in adatas]
    if any(lazy) and not all(lazy):
        adatas = [a.to_memory() if lz else a for a, lz in zip(adatas, lazy, strict=True)]
    parts = _concat_parts(
        adatas, axis_n, join, merge_fn, uns_fn, label, keys, index_unique, fill_value, pairwise
    )
    raw = None
    if all(a.raw is not None for a in adatas):
        from annio._core import AnnData

        # only what raw holds (X, var, varm), never the parents' obs (lazy inputs stay unread)
        raw_inputs = [AnnData(X=a.raw.X, obs=pd.DataFrame(index=a.obs_names), var=a.raw.var, varm=dict(a.raw.varm.items())) for a in adatas]
        raw_parts = _concat_parts(raw_inputs, axis_n, join, merge_fn, None, None, keys, index_unique, fill_value, False)
        raw = raw_parts
    elif any(a.raw is not None for a in adatas):
        warnings.warn(
            "Only some AnnData objects have `.raw` attribute, not concatenating `.raw` attributes.",
            UserWarning,
            stacklevel=2,
        )
    return _build(parts, raw)


def _build(parts: dict[str, Any], raw: dict[str, Any] | None) -> Any:
    from annio._core import AnnData
    from annio._core.raw import Raw

    adata = AnnData(**parts)
    if raw is not None:
        adata._raw = Raw._from_parts(adata, raw["X"], raw["var"], raw["varm"], None)
    return adata


def _concat_parts(
    adatas: list[Any],
    axis: int,
    join: str,
    merge_fn: Any,
    uns_fn: Any,
    label: str | None,
    keys: list[str],
    index_unique: str | None,
    fill_value: Any,
    pairwise: bool,
) -> dict[str, Any]:
    ax, alt = ("obs", "var") if axis == 0 else ("var", "obs")
    annots = [getattr(a, ax) for a in adatas]
    alt_indices = [getattr(a, f"{alt}_names") for a in adatas]
    alt_index = _join_indices(alt_indices, join)
    reindexers = [Reindexer(i, alt_index) for i in alt_indices]
    lengths = [a.shape[axis] for a in adatas]

    # the dtype of the names is that of pandas' concatenation of the inputs' names (``str``
    # from pandas 3 on, but ``object`` when an empty ``object`` index is among them), as anndata's
    names = [pd.Index(getattr(a, f"{ax}_names")) for a in adatas]
    if len({str(n.dtype) for n in names}) == 1 and all(len(n) for n in names):
        dtype = names[0].dtype
    else:
        dtype = pd.concat([n.to_series() for n in names], ignore_index=True).dtype
    values = np.concatenate([np.asarray(n, dtype=object) for n in names])
    if index_unique is not None:
        values = np.array([f"{n}{index_unique}{k}" for idx, k in zip(names, keys, strict=True) for n in idx], dtype=object)
    index = pd.Index(values, dtype=dtype)

    if all(_is_lazy_frame(f) for f in annots):
        from annio._ops.concat_lazy import concat_lazy_frames  # xarray: only for lazy inputs

        annot = concat_lazy_frames(annots, join, index)
    else:
        annot = concat_frames([frame_to_memory(f) for f in annots], join, index)
    if label is not None:
        codes = np.repeat(np.arange(len(adatas)), lengths)
        annot[label] = pd.Categorical.from_codes(codes, categories=pd.Index(keys))

    # the other axis: annotation and aligned elements, merged after reindexing
    alt_annot = pd.DataFrame(index=alt_index)
    if merge_fn is not None:
        columns = []
        for a, r in zip(adatas, reindexers, strict=True):
            frame = r(frame_to_memory(getattr(a, alt)), 0)
            columns.append({c: frame[c] for c in frame.columns})
        merged = merge_fn(columns)
        if merged:
            alt_annot = pd.DataFrame({k: pd.Series(v).array if isinstance(v, pd.Series) else v for k, v in merged.items()}, index=alt_index)
    alt_m: dict[str, Any] = {}
    alt_p: dict[str, Any] = {}
    if merge_fn is not None:
        alt_m = merge_fn([{k: r(v, 0, fill_value) for k, v in getattr(a, f"{alt}m").items()} for a, r in zip(adatas, reindexers, strict=True)])
        alt_p = merge_fn([{k: r(r(v, 0, fill_value), 1, fill_value) for k, v in getattr(a, f"{alt}p").items()} for a, r in zip(adatas, reindexers, strict=True)])

    # matrices: X and layers, reindexed on the other axis and stacked
    other = 1 - axis
    def stack(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        fill = fill_value
        if fill is None and any(sp.issparse(v) or sp.issparse(getattr(v, "_meta", None)) for v in present):
            fill = 0  # the result is sparse: pad dense inputs with zeros too
        if axis == 0 and fill in (None, 0) and _plain_sparse_rows(present):
            values = [v if v is None or sp.issparse(v) else sp.csr_matrix(np.asarray(v)) for v in values]
            maps = [r.old_to_new() for r in reindexers]
            sparray = any(isinstance(v, sp.sparray) for v in present)
            return stack_sparse_rows(values, maps, lengths, len(alt_index), sparray)
        full = []
        for v, r, n in zip(values, reindexers, lengths, strict=True):
            if v is None:
                shape = (n, len(alt_index)) if axis == 0 else (len(alt_index), n)
                full.append(missing_like(present, shape, fill))
            else:
                full.append(r(v, other, fill))
        return concat_arrays(full, axis)

    Xs = [a.X for a in adatas]
    if all(x is not None for x in Xs) or (join == "outer" and any(x is not None for x in Xs)):
        X = stack(Xs)
    else:
        X = None
        if join is DEFAULT_JOIN and any(x is not None for x in Xs):
            warnings.warn(
                "Some inputs have no X and `join` was not given: the inner join drops X (as it "
                "drops layers missing in some inputs); pass `join` explicitly to silence this.",
                UserWarning,
                stacklevel=3,
            )
    layers = {k: stack([a.layers[k] if k in a.layers else None for a in adatas]) for k in _keys([list(a.layers.keys()) for a in adatas], join)}

    axis_m = {}
    for k in _keys([list(getattr(a, f"{ax}m").keys()) for a in adatas], join):
        values = [getattr(a, f"{ax}m")[k] if k in getattr(a, f"{ax}m") else None for a in adatas]
        axis_m[k] = _concat_aligned(values, lengths, join, fill_value, index)
    axis_p = {}
    if pairwise:
        for k in _keys([list(getattr(a, f"{ax}p").keys()) for a in adatas], join):
            values = [getattr(a, f"{ax}p")[k] if k in getattr(a, f"{ax}p") else None for a in adatas]
            axis_p[k] = _block_diagonal(values, lengths)

    uns = uns_fn([dict(a.uns) for a in adatas]) if uns_fn is not None else {}
    return {
        "X": X,
        ax: annot,
        alt: alt_annot,
        f"{ax}m": axis_m,
        f"{alt}m": alt_m,
        f"{ax}p": axis_p,
        f"{alt}p": alt_p,
        "layers": layers,
        "uns": uns,
    }


def _plain_sparse_rows(present: list[Any]) -> bool:
    """In-memory scipy sparse (and numpy) parts, at least one sparse: stacked in one pass."""
    return any(sp.issparse(v) for v in present) and all(sp.issparse(v) or isinstance(v, np.ndarray) for v in present)


def frame_to_memory(frame: Any) -> pd.DataFrame:
    """A pandas frame from a lazy or in-memory one."""
    return frame.to_memory() if _is_lazy_frame(frame) else frame


def _keys(key_lists: list[list[Any]], join: str) -> list[Any]:
    from annio._ops.concat_elements import frame_columns

    return [k for k in frame_columns(key_lists, join) if k is not None]


def _concat_aligned(values: list[Any], lengths: list[int], join: str, fill_value: Any, index: pd.Index) -> Any:
    """obsm/varm entries: stacked along their first axis; arrays of different widths are
    cut to the narrowest (inner) or padded to the widest (outer)."""
    from annio._ops.concat_elements import is_awkward

    present = [v for v in values if v is not None]
    if all(_is_lazy_frame(v) for v in present) and len(present) == len(values):
        from annio._ops.concat_lazy import concat_lazy_frames

        return concat_lazy_frames(present, join, index)
    if any(_is_lazy_frame(v) for v in present):
        values = [v.to_memory() if _is_lazy_frame(v) else v for v in values]
        present = [v for v in values if v is not None]
    if any(isinstance(v, pd.DataFrame) for v in present):
        frames = [v if v is not None else pd.DataFrame(index=pd.RangeIndex(n)) for v, n in zip(values, lengths, strict=True)]
        return concat_frames([f.reset_index(drop=True) for f in frames], join, index)
    if any(is_awkward(v) for v in present):
        if len(present) != len(values):
            raise NotImplementedError("outer join of awkward arrays missing from some inputs is not supported")
        return concat_arrays(values, 0)
    widths = [v.shape[1] for v in present if len(v.shape) > 1]
    if widths and len(set(widths)) > 1 or len(present) != len(values):
        width = (min(widths) if join == "inner" else max(widths)) if widths else 0
        target = pd.RangeIndex(width)
        out = []
        for v, n in zip(values, lengths, strict=True):
            if v is None:
                out.append(missing_like(present, (n, width), fill_value))
            else:
                out.append(Reindexer(pd.RangeIndex(v.shape[1]), target)(v, 1, fill_value))
        values = out
    return concat_arrays(values, 0)


def _block_diagonal(values: list[Any], lengths: list[int]) -> Any:
    present = [v for v in values if v is not None]
    if any(is_dask(v) for v in present):
        values = [v.compute() if is_dask(v) else v for v in values]
    sparray = any(isinstance(v, sp.sparray) for v in present)
    blocks = [sp.csr_matrix((n, n), dtype=bool) if v is None else sp.csr_matrix(v) for v, n in zip(values, lengths, strict=True)]
    out = sp.block_diag(blocks, format="csr")
    return sp.csr_array(out) if sparray else out
