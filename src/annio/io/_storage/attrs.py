"""Attributes of stored nodes, normalised across backends (part of the storage adapter).

HDF5 returns byte strings, numpy scalars and arrays (and stores ``[]`` as an empty
``float64`` array); zarr stores JSON. :class:`Attributes` gives plain Python values on read
from both and converts values to what each backend can store on write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from annio.io._storage import h5_small

try:  # orjson (the ``fast`` extra): parses zarr metadata ~2x faster than the json module
    import orjson as _orjson
except ImportError:  # pragma: no cover - optional extra
    _orjson = None

if TYPE_CHECKING:
    from annio.io._storage.adapter import StorageNode

__all__ = ["Attributes", "KnownAttributes", "attr_to_json", "dumps_json", "loads_json"]


def _attr_from_h5(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO" or h5py.check_string_dtype(value.dtype) is not None:
            return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]
        if value.dtype.kind == "U":
            return value.tolist()
        if value.ndim == 0:
            return value.item()
        if value.size == 0 and value.dtype.kind == "f":
            return []  # h5py stores [] as an empty float64 array
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attr_to_h5(value: Any) -> Any:
    if isinstance(value, str | np.str_):
        return str(value)
    if isinstance(value, bool | np.bool_):
        return np.bool_(value)
    if isinstance(value, list | tuple | np.ndarray):
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
        if len(arr) and arr.dtype.kind in "UO":
            return np.array([str(v) for v in arr], dtype=h5py.string_dtype("utf-8"))
        if arr.dtype.kind == "i":
            return arr.astype(np.int64)
        return arr
    return value


def attr_to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return attr_to_json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [attr_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): attr_to_json(v) for k, v in value.items()}
    return value


class Attributes(MutableMapping[str, Any]):
    """Attributes of a node, normalised to plain Python values on read.

    Strings come back as ``str`` (h5 fixed-length byte strings included), string arrays as
    ``list[str]``, numeric arrays as lists, h5's empty ``float64`` array as ``[]``.
    """

    def __init__(self, node: StorageNode) -> None:
        self._node = node

    @property
    def _raw(self) -> Any:  # built on first use: h5py's AttributeManager costs ~10 µs
        raw = self.__dict__.get("_raw_attrs")
        if raw is None:
            raw = self.__dict__["_raw_attrs"] = self._node.raw.attrs
        return raw

    def __getitem__(self, key: str) -> Any:
        if self._node.backend == "hdf5" and type(key) is str:
            try:
                value = h5_small.read_string_attr(self._node.raw, key)
            except KeyError:
                raise KeyError(f"{self._node.path}: no attribute {key!r}") from None
            if value is not h5_small.NOT_A_STRING:
                return value
        try:
            value = self._raw[key]
        except KeyError:
            raise KeyError(f"{self._node.path}: no attribute {key!r}") from None
        return _attr_from_h5(value) if self._node.backend == "hdf5" else value

    def __setitem__(self, key: str, value: Any) -> None:
        if self._node.backend == "hdf5":
            self._raw[key] = _attr_to_h5(value)
        else:
            self._raw[key] = attr_to_json(value)

    def update(self, other: Mapping[str, Any] = (), /, **kw: Any) -> None:  # type: ignore[override]
        items = {**dict(other), **kw}
        if self._node.backend == "zarr":  # one metadata write instead of one per key
            self._raw.update({k: attr_to_json(v) for k, v in items.items()})
        elif h5_small.all_strings(items):  # encoding attributes: h5py's low-level API, ~3x faster
            h5_small.set_string_attrs(self._node.raw, items)
        else:
            for k, v in items.items():
                self[k] = v

    def raw_value(self, key: str) -> Any:
        """The attribute as the backend stores it (e.g. an h5py object reference)."""
        return self._raw[key]

    def __delitem__(self, key: str) -> None:
        del self._raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._raw.keys()))

    def __len__(self) -> int:
        return len(self._raw.keys())

    def __contains__(self, key: object) -> bool:
        if self._node.backend == "hdf5" and type(key) is str:
            return bool(h5py.h5a.exists(self._node.raw.id, key.encode("utf-8")))
        return key in self._raw


class KnownAttributes(Attributes):
    """Attributes of an array annio wrote itself (:mod:`~annio.io._storage.zarr_small`):
    read from what was written; changes go through zarr-python (which opens the array)."""

    def __init__(self, node: StorageNode, known: dict[str, Any]) -> None:
        self._node, self._known = node, known

    @property
    def _raw(self) -> Any:  # type: ignore[override]
        return self._node.raw.attrs

    def __getitem__(self, key: str) -> Any:
        try:
            return self._known[key]
        except KeyError:
            raise KeyError(f"{self._node.path}: no attribute {key!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._known[key] = attr_to_json(value)

    def update(self, other: Mapping[str, Any] = (), /, **kw: Any) -> None:  # type: ignore[override]
        items = {**dict(other), **kw}
        super().update(items)
        self._known.update({k: attr_to_json(v) for k, v in items.items()})

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._known.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, key: object) -> bool:
        return key in self._known


def dumps_json(value: Any) -> str:
    """JSON text of an attribute value (used for awkward forms and the CLI)."""
    return json.dumps(attr_to_json(value))


_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", bytes(10))


def loads_json(data: bytes | str) -> Any:
    """Parse a JSON document (zarr metadata) with orjson when installed, else with the
    json module, with the same result either way: documents orjson refuses (``NaN`` and
    ``Infinity`` literals, which Python's json writes; lone surrogates) and documents with a
    run of 20 digits (orjson reads integers beyond 64 bits as floats) go to the json module.
    (Valid JSON holds no raw NUL bytes, so the digit scan cannot be fooled.)"""
    if _orjson is not None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if raw.translate(_DIGITS_TO_NUL).find(bytes(20)) < 0:
            try:
                return _orjson.loads(raw)
            except _orjson.JSONDecodeError:
                pass
    return json.loads(data)
