"""The anndata on-disk format: element I/O and whole-file readers/writers.

``read_elem``/``write_elem`` work on single elements of an h5py file or zarr store;
``read_h5ad``/``read_zarr``/``write_h5ad``/``write_zarr`` on whole AnnData objects;
``sparse_dataset`` opens a stored sparse matrix without reading it; ``read_csv``,
``read_text``, ``read_excel``, ``read_hdf``, ``read_mtx``, ``read_loom``, ``read_umi_tools``,
``read_10x_h5``, ``read_10x_mtx``, ``write_csvs`` and ``write_loom`` handle the other
formats data arrives in (``_formats``).

The implementation lives in private subpackages, one per layer: ``_storage`` (the one
adapter over h5py and zarr), ``_encodings`` (the registry and one module per encoding
family), ``_root``/``_files`` (whole files) and ``_backed`` (backed mode).
"""


from annio.io._backed.sparse_datasets import CSCDataset, CSRDataset, sparse_dataset
from annio.io._encodings.registry import IOSpec, read_dispatched, read_elem, write_dispatched, write_elem
from annio.io._files import read_h5ad, read_zarr, write_h5ad, write_zarr
from annio.io._formats.excel import read_excel
from annio.io._formats.hdf import read_hdf
from annio.io._formats.loom import read_loom, write_loom
from annio.io._formats.mtx import read_mtx
from annio.io._formats.tenx import read_10x_h5, read_10x_mtx
from annio.io._formats.text import read_csv, read_text, write_csvs
from annio.io._formats.umi_tools import read_umi_tools
from annio._core.services import provide as _provide

_provide("write_csvs", write_csvs)
_provide("write_loom", write_loom)

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
    "read_csv",
    "read_text",
    "read_excel",
    "read_hdf",
    "read_mtx",
    "read_loom",
    "read_umi_tools",
    "read_10x_h5",
    "read_10x_mtx",
    "write_csvs",
    "write_loom",
]


def __dir__() -> list[str]:
    return list(__all__)
