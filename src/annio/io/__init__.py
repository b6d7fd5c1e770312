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

Every name is imported on first access (:mod:`annio._exports`): ``import annio.io`` is cheap
and ``annio.io.read_loom`` does not pull in the 10x or text readers.
"""

from annio._exports import lazy_face as _lazy_face

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

_HOMES = {
    "annio.io._backed.sparse_datasets": ("CSCDataset", "CSRDataset", "sparse_dataset"),
    "annio.io._encodings.registry": ("IOSpec", "read_dispatched", "read_elem", "write_dispatched", "write_elem"),
    "annio.io._files": ("read_h5ad", "read_zarr", "write_h5ad", "write_zarr"),
    "annio.io._formats.excel": ("read_excel",),
    "annio.io._formats.hdf": ("read_hdf",),
    "annio.io._formats.loom": ("read_loom", "write_loom"),
    "annio.io._formats.mtx": ("read_mtx",),
    "annio.io._formats.tenx": ("read_10x_h5", "read_10x_mtx"),
    "annio.io._formats.text": ("read_csv", "read_text", "write_csvs"),
    "annio.io._formats.umi_tools": ("read_umi_tools",),
}

__getattr__, __dir__ = _lazy_face(
    __name__, {name: f"{module}:{name}" for module, names in _HOMES.items() for name in names}, __all__
)
