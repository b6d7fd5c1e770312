"""The anndata on-disk format: element I/O and whole-file readers/writers.

``read_elem``/``write_elem`` work on single elements of an h5py file or zarr store;
``read_h5ad``/``read_zarr``/``write_h5ad``/``write_zarr`` on whole AnnData objects.
"""

from __future__ import annotations

from .registry import IOSpec, read_dispatched, read_elem, write_dispatched, write_elem
from .files import read_h5ad, read_zarr, write_h5ad, write_zarr
from .sparse_datasets import CSCDataset, CSRDataset, sparse_dataset

__all__ = [
    "IOSpec",
    "read_elem",
    "write_elem",
    "read_dispatched",
    "write_dispatched",
    "read_h5ad",
    "read_zarr",
    "write_h5ad",
    "write_zarr",
    "sparse_dataset",
    "CSRDataset",
    "CSCDataset",
    "convert",
]


def __getattr__(name: str):
    # the streamed converter builds on annio.lazy (which builds on io): imported on use
    if name == "convert":
        from ..convert import convert

        return convert
    raise AttributeError(f"module 'annio.io' has no attribute {name!r}")
