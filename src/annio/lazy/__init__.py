"""Lazy access: AnnData objects whose elements stay on disk until they are needed.

* :func:`read_lazy` — a whole AnnData with dask arrays and lazy data frames;
* :func:`read_elem_lazy` — one element;
* :class:`Dataset2D` — the lazy data frame (anndata's ``Dataset2D``);
* :func:`dense_dask` / :func:`sparse_dask` — dask arrays over stored arrays.

Needs the ``lazy`` extra (``dask``, ``xarray``).
"""

from __future__ import annotations

from .arrays import ArraySource, dense_dask, sparse_dask
from .frame import Dataset2D, LazyCategoricalArray, LazyCategoricalDtype, LazyMaskedArray
from .read import LazyFile, read_elem_lazy, read_lazy

__all__ = [
    "read_lazy",
    "read_elem_lazy",
    "Dataset2D",
    "LazyCategoricalArray",
    "LazyCategoricalDtype",
    "LazyMaskedArray",
    "LazyFile",
    "ArraySource",
    "dense_dask",
    "sparse_dask",
]
