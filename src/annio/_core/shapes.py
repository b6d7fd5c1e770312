"""Shapes of aligned values (awkward arrays included) and the frame view of obsm/varm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from annio._core.index import dense
from annio._core.views import is_awkward

__all__ = ["element_shape", "infer_dims", "axis_frame"]


def element_shape(value: Any) -> tuple[int, ...]:
    """The shape of an element; for awkward arrays ``len(value)`` followed by the sizes of
    the regular (fixed-size) dimensions after it."""
    if is_awkward(value):
        import awkward as ak

        shape, kind = [len(value)], value.type.content
        while isinstance(kind, ak.types.RegularType):
            shape.append(kind.size)
            kind = kind.content
        return tuple(shape)
    return tuple(getattr(value, "shape", ()))


def infer_dims(mappings: Mapping[str, Mapping | None]) -> tuple[int | None, int | None]:
    """``(n_obs, n_vars)`` read off layers, obsm/obsp (n_obs) and varm/varp (n_vars), for an
    AnnData made without X and shape; None where no value tells."""
    dims: list[int | None] = [None, None]
    for attr, axes in (("layers", (0, 1)), ("obsm", (0,)), ("obsp", (0, 0)), ("varm", (1,)), ("varp", (1, 1))):
        for value in (mappings.get(attr) or {}).values():
            shape = element_shape(value if not isinstance(value, (list, tuple)) else np.asarray(value))
            for pos, axis in enumerate(axes):
                if dims[axis] is None and len(shape) > pos:
                    dims[axis] = int(shape[pos])
    return dims[0], dims[1]


def axis_frame(mapping: Mapping, index: pd.Index) -> pd.DataFrame:
    """``to_df`` of obsm/varm: each value's columns numbered after its key."""
    columns: dict[str, Any] = {}
    for key in mapping:
        value = mapping[key]
        values = value.to_numpy() if isinstance(value, pd.DataFrame) else dense(value)
        values = values.reshape(len(index), -1)
        for i in range(values.shape[1]):
            columns[f"{key}{i + 1}"] = values[:, i]
    return pd.DataFrame(columns, index=index)
