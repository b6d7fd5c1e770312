"""annio: fast, anndata-compatible annotated data matrices.

The public face: the model (:class:`AnnData`), whole-file readers and writers, settings,
concatenation and extension namespaces. Element-level I/O lives in :mod:`annio.io`, lazy
access in :mod:`annio.experimental`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .settings import settings  # noqa: E402

from .core import AnnData, Raw, register_anndata_namespace  # noqa: E402
from . import datasets, io  # noqa: E402
from .io import read_h5ad, read_zarr  # noqa: E402

__all__ = [
    "AnnData",
    "Raw",
    "settings",
    "register_anndata_namespace",
    "read_h5ad",
    "read_zarr",
    "datasets",
    "io",
    "experimental",
    "__version__",
]


def __getattr__(name: str):
    # `annio.experimental` pulls in dask and xarray: imported on first use, not with annio
    if name == "experimental":
        import importlib

        return importlib.import_module(".experimental", __name__)
    raise AttributeError(f"module 'annio' has no attribute {name!r}")
