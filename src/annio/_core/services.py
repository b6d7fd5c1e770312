"""What the model needs from the layers above it, handed in by those layers.

The model never imports the I/O layer (nor the anndata bridge). Instead each service it
calls — opening a backing file, writing itself, converting to ``anndata`` — is registered
here by the layer that implements it (:func:`provide`).

``import annio`` imports none of those layers (start-up stays cheap), so registration is also
on demand: the public face hands in a *loader* (:func:`provide_loader`), a callable that maps
a service name to its implementation by importing the module that owns it. :func:`service`
asks the loaders on a miss. The table of which module implements which service therefore
lives in the face, above every layer; this module names no upper module at all. A service
no loader knows stays missing (e.g. ``prefetch_lazy`` until :mod:`annio._lazy` is imported:
nothing can be lazy before) and is a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annio.errors import AnnioError

__all__ = ["provide", "provide_loader", "service"]

_SERVICES: dict[str, Callable[..., Any]] = {}
_LOADERS: list[Callable[[str], Callable[..., Any] | None]] = []


def provide(name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as the implementation of service ``name``."""
    _SERVICES[name] = func


def provide_loader(loader: Callable[[str], Callable[..., Any] | None]) -> None:
    """Register ``loader``: called with a service name nobody has provided yet, it returns
    the implementation (importing its module) or None when it does not know the name."""
    if loader not in _LOADERS:
        _LOADERS.append(loader)


def service(name: str) -> Callable[..., Any]:
    """The implementation of service ``name``; raises :class:`AnnioError` if none is registered
    and no loader provides it."""
    try:
        return _SERVICES[name]
    except KeyError:
        pass
    for loader in _LOADERS:
        func = loader(name)
        if func is not None:
            return _SERVICES.setdefault(name, func)
    raise AnnioError(f"service {name!r} is not available: no imported layer of annio provides it")
