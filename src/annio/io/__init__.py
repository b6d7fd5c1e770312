"""The anndata on-disk format: element I/O and whole-file readers/writers.

``read_elem``/``write_elem`` work on single elements of an h5py file or zarr store;
``read_h5ad``/``read_zarr``/``write_h5ad``/``write_zarr`` on whole AnnData objects;
``sparse_dataset`` opens a stored sparse matrix without reading it.

The implementation lives in private subpackages, one per layer: ``_storage`` (the one
adapter over h5py and zarr), ``_encodings`` (the registry and one module per encoding
family), ``_root``/``_files`` (whole files) and ``_backed`` (backed mode).
"""


from annio.io._backed.sparse_datasets import CSCDataset, CSRDataset, sparse_dataset
from annio.io._encodings.registry import IOSpec, read_dispatched, read_elem, write_dispatched, write_elem
from annio.io._files import read_h5ad, read_zarr, write_h5ad, write_zarr

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
]


def __dir__() -> list[str]:
    return list(__all__)
