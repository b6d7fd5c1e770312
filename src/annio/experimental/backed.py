"""``anndata.experimental.backed``: the lazy data frame's home in anndata."""

from annio._lazy import Dataset2D

__all__ = ["Dataset2D"]
