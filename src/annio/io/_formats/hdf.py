"""A matrix in a plain HDF5 file: ``read_hdf``."""

from __future__ import annotations

import os

import h5py
import numpy as np

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import decode_strings, frame, names_index
from annio.io._storage.adapter import wrap

__all__ = ["read_hdf"]


def _names(f: h5py.File, key: str, n: int, axis: str) -> list | None:
    if key not in f:
        return None
    values = decode_strings(np.asarray(f[key][()]).ravel())
    if len(values) != n:
        raise FormatError(f"/{key}", f"{len(values)} names for {n} {axis}")
    return list(values)


def read_hdf(filename: str | os.PathLike, key: str) -> AnnData:
    """Read the 2-D dataset ``key`` of an HDF5 file as X; datasets ``row_names`` and
    ``col_names`` (when present) give obs and var names.

    Parameters
    ----------
    filename
        The HDF5 file.
    key
        Name of the dataset in the file.
    """
    with h5py.File(filename, "r") as f:
        if key not in f:
            raise KeyError(f"{filename}: no dataset {key!r}; the file has: {', '.join(sorted(f.keys()))}")
        node = f[key]
        if not isinstance(node, h5py.Dataset) or node.ndim != 2:
            raise FormatError(f"/{key}", "expected a 2-D dataset")
        X = wrap(node).read()
        rows = _names(f, "row_names", X.shape[0], "rows")
        cols = _names(f, "col_names", X.shape[1], "columns")
    return AnnData(X, obs=frame(names_index(rows, X.shape[0])), var=frame(names_index(cols, X.shape[1])))
