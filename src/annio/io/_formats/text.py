"""Delimited text: ``read_csv``, ``read_text`` and ``write_csvs``.

The text reader follows anndata's conventions: ``#`` comment lines are skipped (the last one
may hold the column names), a first line with non-numeric entries is the header, a first
column with non-numeric entries (or ``first_column_names=True``) holds the row names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError, WriteWarning
from annio.io._formats.common import frame, names_index, text_lines

__all__ = ["read_csv", "read_text", "write_csvs"]

_WRITE_ROWS = 10_000


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _content(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def read_text(
    filename: str | os.PathLike | Iterable[str],
    delimiter: str | None = None,
    *,
    first_column_names: bool | None = None,
    dtype: str = "float32",
) -> AnnData:
    """Read a ``.txt``/``.tab``/``.data`` text file (optionally ``.gz``/``.bz2``).

    Parameters
    ----------
    filename
        A path, or an iterator of lines.
    delimiter
        Field separator; ``None`` splits at any run of white space.
    first_column_names
        The first column holds row names (detected when its entries are not numeric).
    dtype
        Numpy dtype of X.
    """
    name = str(filename) if isinstance(filename, str | os.PathLike) else "<lines>"

    def split(line: str) -> list[str]:
        return line.split(delimiter) if delimiter is not None else line.split()

    comment_header: list[str] | None = None
    lines = _content(text_lines(filename))
    first = None
    for line in lines:
        if line.lstrip().startswith("#"):
            comment_header = [_unquote(x) for x in split(line.lstrip()[1:])]
            continue
        first = line
        break
    if first is None:
        raise FormatError(None, f"{name}: no data lines")
    fields = [_unquote(x) for x in split(first)]
    header: list[str] | None = None
    if any(not _is_number(f) for f in fields[1:]) or (len(fields) == 1 and not _is_number(fields[0])):
        header = fields
        first = next(lines, None)
    rows: list[list[str]] = [] if first is None else [split(first)]
    rows.extend(split(line) for line in lines)
    if not rows:
        raise FormatError(None, f"{name}: a header but no data lines")
    has_row_names = bool(first_column_names) or not _is_number(rows[0][0])
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise FormatError(None, f"{name}: data line {bad + 1} has {len(rows[bad])} fields, the first has {width}")
    row_names = [_unquote(r[0]) for r in rows] if has_row_names else None
    n_cols = width - 1 if has_row_names else width
    try:
        X = np.array([r[1:] for r in rows] if has_row_names else rows, dtype=dtype).reshape(len(rows), n_cols)
    except ValueError as err:
        raise FormatError(None, f"{name}: non-numeric data ({err})") from err
    col_names = None
    for candidate in (header, comment_header):
        if candidate is None:
            continue
        if len(candidate) == n_cols + 1:
            candidate = candidate[1:]
        if len(candidate) == n_cols:
            col_names = candidate
            break
        if candidate is header:
            raise FormatError(None, f"{name}: the header has {len(header)} names for {n_cols} data columns")
    obs = frame(names_index(row_names, X.shape[0]))
    var = frame(names_index(col_names, X.shape[1]))
    return AnnData(X, obs=obs, var=var)


def read_csv(
    filename: str | os.PathLike | Iterable[str],
    delimiter: str | None = ",",
    *,
    first_column_names: bool | None = None,
    dtype: str = "float32",
) -> AnnData:
    """Read a ``.csv`` file: :func:`read_text` with ``delimiter=','`` by default.

    Parameters
    ----------
    filename, delimiter, first_column_names, dtype
        As for :func:`read_text`.
    """
    return read_text(filename, delimiter, first_column_names=first_column_names, dtype=dtype)


# ----------------------------------------------------------------------------- writing
def _matrix_frame(mapping: Any, n: int) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for key, value in mapping.items():
        if isinstance(value, pd.DataFrame):
            for col in value.columns:
                columns[f"{key}_{col}"] = np.asarray(value[col])
            continue
        value = value.toarray() if sp.issparse(value) else np.asarray(value)
        value = value.reshape(n, -1)
        for j in range(value.shape[1]):
            columns[f"{key}{j + 1}"] = value[:, j]
    return pd.DataFrame(columns)


def _write_uns(folder: Path, uns: Any, sep: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in uns.items():
        if isinstance(value, dict) or hasattr(value, "keys") and not isinstance(value, pd.DataFrame):
            _write_uns(folder / key, value, sep)
        elif isinstance(value, pd.DataFrame):
            value.to_csv(folder / f"{key}.csv", sep=sep)
        elif sp.issparse(value) or isinstance(value, np.ndarray | list | tuple):
            arr = value.toarray() if sp.issparse(value) else np.asarray(value)
            if arr.ndim > 2 or arr.dtype.names is not None:
                pd.DataFrame(arr.reshape(len(arr), -1) if arr.dtype.names is None else arr).to_csv(folder / f"{key}.csv", sep=sep, index=False)
            else:
                pd.DataFrame(arr.reshape(len(arr), -1) if arr.ndim else arr.reshape(1, 1)).to_csv(
                    folder / f"{key}.csv", sep=sep, header=False, index=False
                )
        elif np.ndim(value) == 0 and not hasattr(value, "shape") or isinstance(value, np.generic):
            (folder / f"{key}.csv").write_text(f"{value}\n")
        else:
            warnings.warn(f"uns/{key}: a {type(value).__name__} cannot be written as csv; skipped", WriteWarning, stacklevel=3)


def _write_X(path: Path, X: Any, n_obs: int, sep: str) -> None:
    with open(path, "w") as f:
        for start in range(0, n_obs, _WRITE_ROWS):
            block = X[start : start + _WRITE_ROWS]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            pd.DataFrame(block).to_csv(f, sep=sep, header=False, index=False)


def write_csvs(dirname: str | os.PathLike, adata: AnnData, skip_data: bool = True, sep: str = ",") -> None:
    """Write the annotation of ``adata`` (and X unless ``skip_data``) to ``.csv`` files.

    ``obs.csv``/``var.csv`` (with names), ``obsm.csv``/``varm.csv`` (one column per matrix
    column, named ``{key}{j}``), ``uns/`` (one file per entry, folders for mappings) and
    ``X.csv``. The AnnData cannot be fully recovered from them; use ``write_h5ad`` for that.

    Parameters
    ----------
    dirname
        The folder to write into (created).
    adata
        The object to export.
    skip_data
        Do not write X.
    sep
        Field separator.
    """
    folder = Path(dirname)
    if folder.suffix == ".csv":
        folder = folder.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    adata.obs.to_csv(folder / "obs.csv", sep=sep)
    adata.var.to_csv(folder / "var.csv", sep=sep)
    _matrix_frame(adata.obsm, adata.n_obs).to_csv(folder / "obsm.csv", sep=sep, index=False)
    _matrix_frame(adata.varm, adata.n_vars).to_csv(folder / "varm.csv", sep=sep, index=False)
    _write_uns(folder / "uns", adata.uns, sep)
    if not skip_data and adata.X is not None:
        _write_X(folder / "X.csv", adata.X, adata.n_obs, sep)
