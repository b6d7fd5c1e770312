"""Public faces whose names are imported on first access (PEP 562), so that ``import annio``
costs nothing but this package: pandas, h5py, zarr, scipy, dask come in with the first name
that needs them.

A face lists its names in a table ``{public name: "module" or "module:attribute"}`` and
installs the two module hooks :func:`lazy_face` returns. A resolved name is stored in the
face's namespace, so the hook runs once per name; ``dir()`` shows exactly ``__all__``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_face", "resolve"]


def resolve(target: str) -> Any:
    """The object named by ``"module"`` or ``"module:attribute"`` (importing the module)."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def lazy_face(face: str, table: Mapping[str, str], api: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``face`` exporting ``api``, whose lazily
    imported names are the keys of ``table``."""

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {face!r} has no attribute {name!r}")
        value = resolve(target)
        setattr(sys.modules[face], name, value)
        return value

    def __dir__() -> list[str]:
        return list(api)

    return __getattr__, __dir__
