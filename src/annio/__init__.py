"""annio: fast, anndata-compatible annotated data matrices.

The public face: the model (:class:`AnnData`), whole-file readers and writers, settings,
concatenation and extension namespaces. Element-level I/O lives in :mod:`annio.io`, lazy
access in :mod:`annio.experimental`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .settings import settings  # noqa: E402

try:  # the model is being written in parallel; becomes a plain import once it lands
    from .core import AnnData, Raw, register_anndata_namespace  # noqa: E402
except ImportError:  # pragma: no cover
    pass

__all__ = ["AnnData", "Raw", "settings", "register_anndata_namespace", "read_h5ad", "read_zarr", "__version__"]


def __getattr__(name: str):
    if name in {"read_h5ad", "read_zarr"}:
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'annio' has no attribute {name!r}")
