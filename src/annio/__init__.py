"""annio: fast, anndata-compatible annotated data matrices.

The public face: the model (:class:`AnnData`), whole-file readers and writers, streamed
conversion, settings and extension namespaces. Element-level I/O lives in :mod:`annio.io`,
lazy access in :mod:`annio.experimental`.

Implementation packages are private, one per layer, lowest first: ``_core`` (the model),
``io`` (the format: ``_storage`` → ``_encodings`` → ``_root``/``_files``/``_backed``),
``_lazy`` (lazy access), ``_ops`` (operations such as conversion). Imports only point down.
"""


__version__ = "0.1.0"

from annio.settings import settings  # noqa: E402
from annio._core import AnnData, Raw, register_anndata_namespace  # noqa: E402
from annio import datasets, errors, io  # noqa: E402
from annio.io import read_h5ad, read_zarr, write_h5ad, write_zarr  # noqa: E402
from annio.errors import (  # noqa: E402
    ExperimentalFeatureWarning,
    ImplicitModificationWarning,
    OldFormatWarning,
    WriteWarning,
)

__all__ = [
    "AnnData",
    "Raw",
    "settings",
    "register_anndata_namespace",
    "read_h5ad",
    "read_zarr",
    "write_h5ad",
    "write_zarr",
    "convert",
    "concat",
    "OldFormatWarning",
    "ImplicitModificationWarning",
    "ExperimentalFeatureWarning",
    "WriteWarning",
    "datasets",
    "errors",
    "io",
    "experimental",
    "__version__",
]

# these pull in dask and xarray: imported on first use, not with annio
_LAZY_ATTRIBUTES = {"experimental": ("annio.experimental", None), "convert": ("annio._ops.convert", "convert"),
                    "concat": ("annio._ops.concat", "concat")}


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        import importlib

        module_name, attr = _LAZY_ATTRIBUTES[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'annio' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
