"""The in-memory AnnData model: ``AnnData``, ``Raw``, aligned mappings, views, namespaces."""

from annio.core.anndata import AnnData
from annio.core.namespaces import register_anndata_namespace
from annio.core.raw import Raw

__all__ = ["AnnData", "Raw", "register_anndata_namespace"]
