"""Encodings of the anndata format, one module per family. Importing this package
registers all of them with :data:`annio.io.registry.REGISTRY`."""

from . import (  # noqa: F401
    anndata_group,
    arrays,
    awkward,
    categorical,
    dataframe,
    mapping,
    nullable,
    scalars,
    sparse,
)
from .. import legacy  # noqa: F401  (readers for files without encoding attributes)
