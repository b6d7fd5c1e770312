"""The border to the ``anndata`` package: zero-copy conversions both ways.

Layer: directly above the model (``annio._core``) and below the I/O layer, so writers and
operations can accept anndata objects. It imports only ``annio._core``, ``annio.settings``
and ``annio.errors``; ``anndata`` itself is imported only when converting *to* it. At import
it provides the model's ``to_anndata``/``from_anndata`` services
(:mod:`annio._core.services`).
"""

from annio._bridge.from_anndata import as_annio, from_anndata, is_anndata, is_anndata_raw
from annio._bridge.to_anndata import import_anndata, to_anndata
from annio._core.services import provide

__all__ = ["as_annio", "from_anndata", "to_anndata", "is_anndata", "is_anndata_raw", "import_anndata"]

provide("to_anndata", to_anndata)
provide("from_anndata", from_anndata)
