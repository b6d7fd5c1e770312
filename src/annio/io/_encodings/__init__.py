"""Encodings of the anndata format, one module per family, over the storage adapter.

Importing this package registers every encoding with :data:`registry.REGISTRY`; the
registry module itself imports no encoding, so the package is the one place that
assembles them.
"""

from annio.io._encodings import (  # noqa: F401 - imported to register
    anndata_group,
    arrays,
    awkward,
    categorical,
    dataframe,
    legacy,
    mapping,
    nullable,
    scalars,
    sparse,
)
