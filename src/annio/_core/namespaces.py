"""``register_anndata_namespace``: attach custom accessors (``adata.myns.f()``) to AnnData.

Follows anndata (which follows polars): the decorated class is instantiated with the AnnData
on first attribute access, and the instance is cached on the AnnData object.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

from annio._core.anndata import AnnData

__all__ = ["register_anndata_namespace"]

NameSpT = TypeVar("NameSpT")

# Names that exist on AnnData when this module is imported; namespaces registered later are
# not reserved and can be overridden (with a warning).
_RESERVED: frozenset[str] = frozenset(dir(AnnData))


class _AccessorNameSpace:
    """Descriptor: class access gives the namespace class, instance access builds and caches it."""

    def __init__(self, name: str, ns: type) -> None:
        self._accessor = name
        self._ns = ns

    def __get__(self, instance: Any, cls: type) -> Any:
        if instance is None:
            return self._ns
        ns_instance = self._ns(instance)
        setattr(instance, self._accessor, ns_instance)
        return ns_instance


def _check_namespace_signature(ns_class: type) -> None:
    params = list(inspect.signature(ns_class.__init__).parameters.values())
    if len(params) < 2:
        raise TypeError("Namespace initializer must accept a AnnData instance as the second parameter.")
    param = params[1]
    if param.annotation is inspect.Parameter.empty:
        raise AttributeError(
            "Namespace initializer's second parameter must be annotated as the 'AnnData' class, "
            "got empty annotation."
        )
    try:
        hints = get_type_hints(ns_class.__init__)
    except NameError as err:
        raise NameError(
            f"Namespace initializer's second parameter annotation could not be resolved: {err}"
        ) from err
    resolved = hints.get(param.name, param.annotation)
    name_ok = param.name == "adata"
    type_ok = resolved is AnnData
    type_name = getattr(resolved, "__name__", str(resolved))
    if not name_ok and not type_ok:
        raise TypeError(
            f"Namespace initializer's second parameter must be named 'adata', got {param.name!r}. "
            f"And must be annotated as 'AnnData', got {type_name!r}."
        )
    if not name_ok:
        raise TypeError(f"Namespace initializer's second parameter must be named 'adata', got {param.name!r}.")
    if not type_ok:
        raise TypeError(
            f"Namespace initializer's second parameter must be annotated as the 'AnnData' class, got {type_name!r}."
        )


def register_anndata_namespace(name: str) -> Callable[[type[NameSpT]], type[NameSpT]]:
    """Register a custom namespace (accessor) on ``AnnData``.

    Parameters
    ----------
    name
        Attribute name under which the namespace is available (``adata.<name>``).

    Returns
    -------
    A class decorator. The class' ``__init__`` must take ``adata: AnnData`` as its second
    parameter.

    Examples
    --------
    >>> @register_anndata_namespace("stats")
    ... class Stats:
    ...     def __init__(self, adata: AnnData) -> None:
    ...         self._adata = adata
    ...     def n(self) -> int:
    ...         return self._adata.n_obs
    """

    def decorator(ns_class: type[NameSpT]) -> type[NameSpT]:
        _check_namespace_signature(ns_class)
        if name in _RESERVED:
            raise AttributeError(f"cannot override reserved attribute {name!r}")
        if hasattr(AnnData, name):
            warnings.warn(
                f"Overriding existing custom namespace {name!r} (on {AnnData.__name__!r})",
                UserWarning,
                stacklevel=2,
            )
        setattr(AnnData, name, _AccessorNameSpace(name, ns_class))
        return ns_class

    return decorator
