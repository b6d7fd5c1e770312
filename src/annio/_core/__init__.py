"""The in-memory AnnData model: ``AnnData``, ``Raw``, aligned mappings, views, namespaces.

The names are imported on first access (the model needs pandas and scipy): importing a
sibling such as :mod:`annio._core.services` stays cheap.
"""

from annio._exports import lazy_face as _lazy_face

__all__ = ["AnnData", "Raw", "register_anndata_namespace"]

__getattr__, __dir__ = _lazy_face(
    __name__,
    {
        "AnnData": "annio._core.anndata:AnnData",
        "Raw": "annio._core.raw:Raw",
        "register_anndata_namespace": "annio._core.namespaces:register_anndata_namespace",
    },
    __all__,
)
