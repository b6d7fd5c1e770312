"""Small pieces the rest of ``_core`` builds on: recognising dask and awkward values
without importing those libraries, and the base of the mappings kept over a ``_data`` dict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["DataMapping", "is_awkward", "is_dask"]


def is_dask(obj: Any) -> bool:
    """Whether ``obj`` comes from dask (an array, dataframe, ...), without importing dask."""
    return type(obj).__module__.startswith("dask")


def is_awkward(obj: Any) -> bool:
    """Whether ``obj`` is an awkward (high-level) array, without importing awkward."""
    return (
        type(obj).__module__.startswith("awkward")
        and hasattr(obj, "layout")
        and hasattr(obj, "fields")
    )


class DataMapping(MutableMapping):
    """A mutable mapping over the mapping ``_data``: iteration, length and membership are its."""

    _data: Mapping

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
