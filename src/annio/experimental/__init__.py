"""anndata's ``experimental`` names, kept for compatibility; each has a real home elsewhere
(:mod:`annio.io._encodings.registry` for dispatched I/O, :mod:`annio._lazy` for lazy access,
:mod:`annio._ops.concat_on_disk`). Imported on first access: ``import annio.experimental``
does not import dask or xarray."""

from annio._exports import lazy_face as _lazy_face

__all__ = ["IOSpec", "read_dispatched", "write_dispatched", "read_lazy", "read_elem_lazy", "Dataset2D", "backed", "concat_on_disk"]

__getattr__, __dir__ = _lazy_face(
    __name__,
    {
        "IOSpec": "annio.io._encodings.registry:IOSpec",
        "read_dispatched": "annio.io._encodings.registry:read_dispatched",
        "write_dispatched": "annio.io._encodings.registry:write_dispatched",
        "read_lazy": "annio._lazy:read_lazy",
        "read_elem_lazy": "annio._lazy:read_elem_lazy",
        "Dataset2D": "annio._lazy:Dataset2D",
        # ``anndata.experimental.backed.Dataset2D`` lives here in anndata
        "backed": "annio.experimental.backed",
        "concat_on_disk": "annio._ops.concat_on_disk:concat_on_disk",
    },
    __all__,
)
