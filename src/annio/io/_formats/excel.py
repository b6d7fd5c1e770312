"""Excel workbooks: ``read_excel`` (needs ``openpyxl``, the ``formats`` extra)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import frame, require, to_str_index

__all__ = ["read_excel"]


def read_excel(filename: str | os.PathLike, sheet: str | int, dtype: str = "float32") -> AnnData:
    """Read a sheet of an ``.xlsx`` file: the first column holds the row names, the first
    row the column names, the rest is X.

    Parameters
    ----------
    filename
        The workbook.
    sheet
        Sheet name or number.
    dtype
        Numpy dtype of X.
    """
    require("openpyxl", "formats", "read_excel")
    df = pd.read_excel(filename, sheet_name=sheet)
    if df.shape[1] < 1:
        raise FormatError(None, f"{filename}: sheet {sheet!r} is empty")
    try:
        X = df.iloc[:, 1:].to_numpy(dtype=dtype)
    except (ValueError, TypeError) as err:
        raise FormatError(None, f"{filename}: sheet {sheet!r} has non-numeric data ({err})") from err
    obs = frame(to_str_index(df.iloc[:, 0].to_numpy()))
    var = frame(to_str_index(np.asarray(df.columns[1:])))
    return AnnData(X, obs=obs, var=var)
