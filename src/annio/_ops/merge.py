"""Merge strategies of ``concat``: how elements of the non-concatenated axis (``merge``) and
``uns`` (``uns_merge``) of several inputs are combined into one mapping.

``"same"`` keeps a key whose value is equal in every input, ``"unique"`` a key whose values
(in the inputs that have it) are all equal, ``"first"`` the first value seen, ``"only"`` a key
present in exactly one input; a callable gets the list of mappings. Nested mappings are merged
recursively and an empty result drops the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["resolve_strategy", "merge_mappings", "equal"]

STRATEGIES = ("same", "unique", "first", "only")


def resolve_strategy(strategy: Any, what: str) -> Callable[[Sequence[Mapping[str, Any]]], dict] | None:
    """``None``, a strategy name or a callable → a function of a list of mappings."""
    if strategy is None:
        return None
    if callable(strategy):
        return lambda ms: dict(strategy(list(ms)))
    if isinstance(strategy, str) and strategy in STRATEGIES:
        return lambda ms: merge_mappings(ms, strategy)
    raise ValueError(f"`{what}` must be None, a callable or one of {STRATEGIES}, got {strategy!r}")


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def equal(a: Any, b: Any) -> bool:
    """Equality as the merge strategies need it: NaN-aware for arrays, structural for
    sparse matrices and frames, element-wise for anything array-like."""
    if a is b:
        return True
    if hasattr(a, "compute") or hasattr(b, "compute"):
        a = a.compute() if hasattr(a, "compute") else a
        b = b.compute() if hasattr(b, "compute") else b
    if isinstance(a, pd.DataFrame | pd.Series) or isinstance(b, pd.DataFrame | pd.Series):
        return type(a) is type(b) and a.equals(b)
    if sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)) or a.shape != b.shape:
            return False
        diff = abs(sp.csr_matrix(a, dtype=float) - sp.csr_matrix(b, dtype=float))
        return diff.nnz == 0 or bool(diff.max() == 0)
    if _is_mapping(a) or _is_mapping(b):
        if not (_is_mapping(a) and _is_mapping(b)) or set(a) != set(b):
            return False
        return all(equal(a[k], b[k]) for k in a)
    if type(a).__module__.startswith("awkward") or type(b).__module__.startswith("awkward"):
        import awkward as ak

        try:
            return ak.to_list(a) == ak.to_list(b)
        except Exception:
            return False
    if isinstance(a, np.ndarray | pd.api.extensions.ExtensionArray | list | tuple) or isinstance(b, np.ndarray | pd.api.extensions.ExtensionArray | list | tuple):
        try:
            a_arr, b_arr = np.asarray(a), np.asarray(b)
        except Exception:
            return False
        if a_arr.shape != b_arr.shape:
            return False
        if a_arr.dtype.kind in "fc" and b_arr.dtype.kind in "fc":
            return bool(np.array_equal(a_arr, b_arr, equal_nan=True))
        try:
            return bool(np.array_equal(a_arr, b_arr))
        except Exception:
            return False
    try:
        result = a == b
        if isinstance(result, bool | np.bool_):
            return bool(result) or (_is_nan(a) and _is_nan(b))
        return bool(np.all(result))
    except Exception:
        return False


def _is_nan(x: Any) -> bool:
    try:
        return bool(np.isnan(x))
    except (TypeError, ValueError):
        return False


def _ordered_union(mappings: Sequence[Mapping[str, Any]]) -> list[Any]:
    seen: dict[Any, None] = {}
    for m in mappings:
        for k in m:
            seen.setdefault(k, None)
    return list(seen)


def merge_mappings(mappings: Sequence[Mapping[str, Any]], strategy: str) -> dict[str, Any]:
    """Merge ``mappings`` with a named strategy (recursing into nested mappings)."""
    n = len(mappings)
    out: dict[str, Any] = {}
    for key in _ordered_union(mappings):
        values = [m[key] for m in mappings if key in m]
        if all(_is_mapping(v) for v in values):
            if strategy == "same" and len(values) != n:
                continue
            merged = merge_mappings(values, strategy)
            if merged:
                out[key] = merged
            continue
        if strategy == "first":
            out[key] = values[0]
        elif strategy == "only":
            if len(values) == 1:
                out[key] = values[0]
        elif strategy == "same":
            if len(values) == n and all(equal(values[0], v) for v in values[1:]):
                out[key] = values[0]
        elif strategy == "unique":
            if all(equal(values[0], v) for v in values[1:]):
                out[key] = values[0]
    return out
