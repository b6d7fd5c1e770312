"""Matrix Market (``.mtx``, optionally gzipped): ``read_mtx`` and the parser the 10x reader
shares. Coordinates go straight into CSR (no dense intermediate); the text is parsed by
scipy's multi-threaded fast_matrix_market, gzip is decompressed in a background thread."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import frame, names_index, open_binary

__all__ = ["read_mtx", "read_mtx_csr"]


def read_mtx_csr(path: str | os.PathLike, dtype: str | np.dtype = "float32", *, transpose: bool = False) -> sp.csr_matrix:
    """The matrix of a Matrix Market file as CSR (of its transpose with ``transpose``)."""
    import scipy.io  # 50 ms to import: only when a Matrix Market file is read

    try:
        with open_binary(path) as f:
            m = scipy.io.mmread(f)
    except (ValueError, OSError, RuntimeError, EOFError) as err:
        raise FormatError(None, f"{path}: not a readable Matrix Market file: {err}") from err
    if not sp.issparse(m):  # an "array" (dense) file
        m = np.asarray(m, dtype=dtype)
        return sp.csr_matrix(m.T if transpose else m)
    coo = m.tocoo()
    rows, cols = (coo.col, coo.row) if transpose else (coo.row, coo.col)
    shape = coo.shape[::-1] if transpose else coo.shape
    return sp.csr_matrix((coo.data.astype(dtype, copy=False), (rows, cols)), shape=shape)


def read_mtx(filename: str | os.PathLike, dtype: str = "float32") -> AnnData:
    """Read a ``.mtx`` file (coordinate or array; ``.gz``/``.bz2`` allowed) as a CSR X.

    Parameters
    ----------
    filename
        The Matrix Market file.
    dtype
        Numpy dtype of X.
    """
    X = read_mtx_csr(filename, dtype)
    return AnnData(X, obs=frame(names_index(None, X.shape[0])), var=frame(names_index(None, X.shape[1])))
