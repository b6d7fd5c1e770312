"""umi_tools' condensed count table (``gene  cell  count``, usually gzipped): ``read_umi_tools``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import frame, to_str_index

__all__ = ["read_umi_tools"]


def read_umi_tools(filename: str | os.PathLike, dtype: str | None = None) -> AnnData:
    """Read a ``umi_tools count --wide=false`` table: obs are the cells, var the genes
    (both sorted), X a CSR matrix of the counts.

    Parameters
    ----------
    filename
        A tab-separated file with the columns ``gene``, ``cell`` and ``count``.
    dtype
        Numpy dtype of X (default: the counts' own).
    """
    table = pd.read_csv(filename, sep="\t", dtype={"gene": str, "cell": str})
    missing = {"gene", "cell", "count"} - set(table.columns)
    if missing:
        raise FormatError(None, f"{filename}: missing column(s) {sorted(missing)} (found {list(table.columns)})")
    genes, gene_idx = np.unique(table["gene"].to_numpy(dtype=object).astype(str), return_inverse=True)
    cells, cell_idx = np.unique(table["cell"].to_numpy(dtype=object).astype(str), return_inverse=True)
    counts = table["count"].to_numpy()
    if dtype is not None:
        counts = counts.astype(dtype)
    X = sp.csr_matrix((counts, (cell_idx, gene_idx)), shape=(len(cells), len(genes)))
    obs, var = frame(to_str_index(cells)), frame(to_str_index(genes))
    obs.index.name, var.index.name = "cell", "gene"
    return AnnData(X, obs=obs, var=var)
