"""``categorical``: integer ``codes`` (-1 = missing) plus ``categories`` and ``ordered``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from annio.errors import FormatError
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, lazy_builder, register
from annio.io._storage.adapter import StorageGroup


def categories_to_numpy(categories: pd.Index) -> np.ndarray:
    """Categories as a numpy array the array encodings can store (strings as objects)."""
    values = categories.to_numpy()
    if values.dtype.kind in "OUT" or pd.api.types.is_string_dtype(categories.dtype):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def build_categorical(path: str, codes: np.ndarray, categories: Any, ordered: bool) -> pd.Categorical:
    """Validated ``pd.Categorical`` from stored parts."""
    if codes.dtype.kind not in "iu":
        raise FormatError(f"{path}/codes", f"expected integer codes, found dtype {codes.dtype}")
    n_categories = len(categories)
    if len(codes) and (codes.min() < -1 or codes.max() >= n_categories):
        raise FormatError(f"{path}/codes", f"codes must lie in [-1, {n_categories}), found {codes.min()}..{codes.max()}")
    if codes.dtype.kind == "u":
        codes = codes.astype(np.int64)
    return pd.Categorical.from_codes(codes, dtype=categorical_dtype(categories, bool(ordered)), validate=False)


_CACHED_CATEGORIES = 1024  # longer category lists are not worth hashing


def categorical_dtype(categories: Any, ordered: bool) -> pd.CategoricalDtype:
    """The dtype of ``categories``; short lists of strings or numbers share one instance
    (a frame of hundreds of columns with the same categories validates them once)."""
    values = np.asarray(categories) if not isinstance(categories, np.ndarray) else categories
    if values.ndim == 1 and len(values) <= _CACHED_CATEGORIES:
        if values.dtype.kind in "biuf":
            return _dtype_of(values.dtype.str, values.tobytes(), ordered)
        if values.dtype == object and all(type(v) is str for v in values):
            return _dtype_of("str", tuple(values), ordered)
    return pd.CategoricalDtype(pd.Index(categories), ordered=ordered)


@functools.lru_cache(maxsize=512)
def _dtype_of(kind: str, key: bytes | tuple[str, ...], ordered: bool) -> pd.CategoricalDtype:
    if kind == "str":
        values = np.empty(len(key), dtype=object)
        values[:] = key
    else:
        values = np.frombuffer(key, dtype=np.dtype(kind)).copy()  # type: ignore[arg-type]
    return pd.CategoricalDtype(pd.Index(values), ordered=ordered)


@register
class Categorical(GroupEncoding):
    spec = IOSpec("categorical", "0.2.0")
    python_types = (pd.Categorical,)

    def group_attrs(self, value: pd.Categorical) -> dict[str, Any]:
        return {"ordered": bool(value.ordered)}

    def write_into(self, group: StorageGroup, value: pd.Categorical, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
        writer.write_elem(group, "codes", np.asarray(value.codes), dataset_kwargs=kwargs)
        writer.write_elem(group, "categories", categories_to_numpy(value.categories), dataset_kwargs=kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> pd.Categorical:
        codes = reader.read_elem(node["codes"])
        categories = reader.read_elem(node["categories"])
        return build_categorical(node.path, np.asarray(codes), categories, bool(node.attrs.get("ordered", False)))

    def read_lazy(self, node: StorageGroup, reader: Reader, **kwargs: Any) -> Any:
        """A :class:`annio._lazy.columns.LazyCategoricalArray`: codes read on demand,
        categories once (their number is known without reading them)."""
        return lazy_builder("categorical")(node)
