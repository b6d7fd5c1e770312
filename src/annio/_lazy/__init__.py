"""Lazy access: AnnData objects whose elements stay on disk until they are needed.

* :func:`read_lazy` — a whole AnnData with dask arrays and lazy data frames;
* :func:`read_elem_lazy` — one element;
* :class:`Dataset2D` — the lazy data frame (anndata's ``Dataset2D``);
* :func:`dense_dask` / :func:`sparse_dask` — dask arrays over stored arrays.

Importing this package hands the lazy element builders to the encoding registry
(:func:`annio.io._encodings.registry.provide_lazy_builder`).
"""

from __future__ import annotations

from annio._core.services import provide
from annio._lazy.arrays import ArraySource, dense_dask, sparse_dask
from annio._lazy.columns import LazyCategoricalArray, LazyCategoricalDtype, LazyMaskedArray
from annio._lazy.frame import Dataset2D, read_frame_lazy
from annio._lazy.frame_write import write_frame
from annio._lazy.plans import prefetching_lazy_object
from annio._lazy.read import LazyFile, read_elem_lazy, read_lazy
from annio.io._encodings.registry import provide_lazy_builder

provide_lazy_builder("dense_array", dense_dask)
provide_lazy_builder("sparse_array", sparse_dask)
provide_lazy_builder("categorical", LazyCategoricalArray.from_node)
provide_lazy_builder("masked", LazyMaskedArray.from_node)
provide_lazy_builder("frame", read_frame_lazy)
provide_lazy_builder("write_frame", write_frame)
provide("prefetch_lazy", prefetching_lazy_object)

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
