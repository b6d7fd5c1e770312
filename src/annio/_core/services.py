"""What the model needs from the layers above it, handed in by those layers.

The model never imports the I/O layer (nor the anndata bridge). Instead each service it
calls — opening a backing file, writing itself, converting to ``anndata`` — is registered
here by the layer that implements it, when that layer is imported. ``import annio`` imports
all of them, so users never see the indirection; a missing service is a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annio.errors import AnnioError

__all__ = ["provide", "service"]

#: service name -> the module expected to provide it (for the error message)
_PROVIDERS = {
    "open_backed": "annio.io",
    "set_filename": "annio.io",
    "copy_backed": "annio.io",
    "write_h5ad": "annio.io",
    "write_zarr": "annio.io",
    "to_anndata": "annio._bridge",
    "from_anndata": "annio._bridge",
    "prefetch_lazy": "annio._lazy",
    "write_csvs": "annio.io",
    "write_loom": "annio.io",
}
_SERVICES: dict[str, Callable[..., Any]] = {}


def provide(name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as the implementation of service ``name``."""
    _SERVICES[name] = func


def service(name: str) -> Callable[..., Any]:
    """The implementation of service ``name``; raises :class:`AnnioError` if none is registered."""
    try:
        return _SERVICES[name]
    except KeyError:
        owner = _PROVIDERS.get(name, "a higher layer of annio")
        raise AnnioError(f"{name} is provided by {owner}, which has not been imported") from None
