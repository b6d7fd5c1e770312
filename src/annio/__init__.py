"""annio: fast, anndata-compatible annotated data matrices.

The public face: the model (:class:`AnnData`), whole-file readers and writers, streamed
conversion, settings and extension namespaces. Element-level I/O lives in :mod:`annio.io`,
lazy access in :mod:`annio.experimental`.

Implementation packages are private, one per layer, lowest first: ``_core`` (the model),
``io`` (the format: ``_storage`` → ``_encodings`` → ``_root``/``_files``/``_backed``),
``_lazy`` (lazy access), ``_ops`` (operations such as conversion). Imports only point down.

Start-up: ``import annio`` imports only the settings and the error classes. Every other name
is imported on first access (:mod:`annio._exports`), and the services the model calls on the
layers above it (writing itself, backing files, converting to ``anndata``) are imported on
their first call: this face hands :mod:`annio._core.services` a loader with the table of
which module implements which service (``_SERVICE_HOMES``).
"""

from annio._core.services import provide_loader as _provide_loader
from annio._exports import lazy_face as _lazy_face
from annio._exports import resolve as _resolve
from annio._version import __version__
from annio.errors import (
    ExperimentalFeatureWarning,
    ImplicitModificationWarning,
    OldFormatWarning,
    WriteWarning,
)
from annio.settings import settings

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

__getattr__, __dir__ = _lazy_face(
    __name__,
    {
        "AnnData": "annio._core.anndata:AnnData",
        "Raw": "annio._core.raw:Raw",
        "register_anndata_namespace": "annio._core.namespaces:register_anndata_namespace",
        "read_h5ad": "annio.io._files:read_h5ad",
        "read_zarr": "annio.io._files:read_zarr",
        "write_h5ad": "annio.io._files:write_h5ad",
        "write_zarr": "annio.io._files:write_zarr",
        "convert": "annio._ops.convert:convert",
        "concat": "annio._ops.concat:concat",
        "datasets": "annio.datasets",
        "io": "annio.io",
        "experimental": "annio.experimental",
    },
    __all__,
)

#: service name -> "module:attribute" implementing it (see annio._core.services)
_SERVICE_HOMES = {
    "open_backed": "annio.io._backed.file_backing:open_backed",
    "set_filename": "annio.io._backed.file_backing:set_filename",
    "copy_backed": "annio.io._backed.file_backing:copy_backed",
    "write_h5ad": "annio.io._files:write_h5ad",
    "write_zarr": "annio.io._files:write_zarr",
    "write_csvs": "annio.io._formats.text:write_csvs",
    "write_loom": "annio.io._formats.loom:write_loom",
    "to_anndata": "annio._bridge:to_anndata",
    "from_anndata": "annio._bridge:from_anndata",
}


def _load_service(name: str):
    home = _SERVICE_HOMES.get(name)
    return None if home is None else _resolve(home)


_provide_loader(_load_service)
