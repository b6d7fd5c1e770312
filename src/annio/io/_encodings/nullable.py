"""Nullable pandas arrays: ``nullable-integer``, ``nullable-boolean``,
``nullable-string-array`` — each a ``values`` array and a boolean ``mask`` (True = missing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from annio.errors import FormatError
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, lazy_builder, register
from annio.io._storage.adapter import StorageGroup
from annio.settings import settings

_ARROW_STRING = "pandas.core.arrays.string_arrow.ArrowStringArray"


def _read_parts(node: StorageGroup, reader: Reader) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(reader.read_elem(node["values"]))
    mask = np.asarray(reader.read_elem(node["mask"]))
    if values.shape != mask.shape:
        raise FormatError(node.path, f"values {values.shape} and mask {mask.shape} differ in shape")
    if mask.dtype != bool:
        mask = mask.astype(bool)
    return values, mask


class _Masked(GroupEncoding):
    fill: Any

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        kwargs = {k: v for k, v in dataset_kwargs.items() if k != "dtype"}
        mask = np.asarray(pd.isna(value), dtype=bool)
        values = self._values(value, mask)
        writer.write_elem(group, "values", values, dataset_kwargs=kwargs)
        writer.write_elem(group, "mask", mask, dataset_kwargs=kwargs)

    def _values(self, value: Any, mask: np.ndarray) -> np.ndarray:
        return np.asarray(value.to_numpy(dtype=value.dtype.numpy_dtype, na_value=self.fill))

    def read_lazy(self, node: StorageGroup, reader: Reader, **kwargs: Any) -> Any:
        """A :class:`annio._lazy.columns.LazyMaskedArray`: values and mask read on demand."""
        return lazy_builder("masked")(node, self.spec.encoding_type)


@register
class NullableInteger(_Masked):
    spec = IOSpec("nullable-integer", "0.1.0")
    python_types = (pd.arrays.IntegerArray,)
    fill = 0

    def read(self, node: StorageGroup, reader: Reader) -> pd.arrays.IntegerArray:
        values, mask = _read_parts(node, reader)
        if values.dtype.kind not in "iu":
            raise FormatError(f"{node.path}/values", f"expected integers, found {values.dtype}")
        return pd.arrays.IntegerArray(values, mask)


@register
class NullableBoolean(_Masked):
    spec = IOSpec("nullable-boolean", "0.1.0")
    python_types = (pd.arrays.BooleanArray,)
    fill = False

    def read(self, node: StorageGroup, reader: Reader) -> pd.arrays.BooleanArray:
        values, mask = _read_parts(node, reader)
        return pd.arrays.BooleanArray(values.astype(bool), mask)


def _string_dtype(na_value: str) -> pd.StringDtype:
    if na_value == "NaN":
        try:
            return pd.StringDtype(na_value=np.nan)
        except TypeError:  # pandas < 2.3 has no NaN-semantics string dtype
            return pd.StringDtype()
    return pd.StringDtype()


def writes_nullable_strings() -> bool:
    """Whether pandas string arrays are written as ``nullable-string-array``."""
    return settings.allow_write_nullable_strings is not False


@register
class NullableString(_Masked):
    """Pandas string arrays. With ``settings.allow_write_nullable_strings=False`` they are
    written as a plain ``string-array`` instead (an error if any value is missing)."""

    spec = IOSpec("nullable-string-array", "0.1.0")
    python_types = (pd.arrays.StringArray, _ARROW_STRING)
    fill = ""

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]):
        if writes_nullable_strings():
            return super().write(parent, key, value, writer, dataset_kwargs)
        if pd.isna(value).any():
            raise ValueError(
                f"{parent.path}/{key}: string column has missing values but "
                "settings.allow_write_nullable_strings is False"
            )
        writer.write_elem(parent, key, np.asarray(value.to_numpy(), dtype=object), dataset_kwargs=dataset_kwargs)
        return parent[key]

    def group_attrs(self, value: Any) -> dict[str, Any]:
        return {"na-value": "NA" if value.dtype.na_value is pd.NA else "NaN"}

    def _values(self, value: Any, mask: np.ndarray) -> np.ndarray:
        return np.asarray(value.to_numpy(dtype=object, na_value=""), dtype=object)

    def read(self, node: StorageGroup, reader: Reader) -> pd.api.extensions.ExtensionArray:
        values, mask = _read_parts(node, reader)
        values = np.asarray(values, dtype=object)
        values[mask] = None
        return pd.array(values, dtype=_string_dtype(str(node.attrs.get("na-value", "NA"))))
