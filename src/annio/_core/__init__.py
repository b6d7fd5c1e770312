"""The in-memory AnnData model: ``AnnData``, ``Raw``, aligned mappings, views, namespaces."""

from annio._core.anndata import AnnData
from annio._core.namespaces import register_anndata_namespace
from annio._core.raw import Raw

__all__ = ["AnnData", "Raw", "register_anndata_namespace"]
