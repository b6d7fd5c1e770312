"""What the format readers share: optional dependencies, opening text, building results."""

from __future__ import annotations

import bz2
import gzip
import importlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annio._core import AnnData
from annio.errors import MissingDependencyError

__all__ = ["require", "text_lines", "open_binary", "names_index", "frame", "decode_strings", "to_str_index"]


def require(module: str, extra: str, what: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, extra, what) from None


def open_binary(path: str | os.PathLike) -> Any:
    """A binary file object; ``.gz``/``.bz2`` files are decompressed (gzip in a background
    thread with ISA-L when installed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    if path.suffix == ".gz":
        try:
            from isal import igzip_threaded

            return igzip_threaded.open(path, "rb", threads=1)
        except ImportError:  # pragma: no cover - optional extra
            return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def text_lines(source: str | os.PathLike | Iterable[str]) -> Iterator[str]:
    """The lines of a (possibly compressed) text file, or of an iterator of strings."""
    if isinstance(source, str | os.PathLike):
        with open_binary(source) as f:
            for raw in f:
                yield raw.decode("utf-8")
    else:
        yield from source


def to_str_index(values: Any) -> pd.Index:
    return pd.Index(np.asarray(values, dtype=object).astype(str), dtype=object)


def names_index(values: Any | None, n: int) -> pd.Index:
    """``values`` as a string index, or ``'0'…'n-1'`` when there are none."""
    if values is None:
        return pd.Index(np.arange(n).astype(str), dtype=object)
    return to_str_index(values)


def frame(index: pd.Index, columns: dict[str, Any] | None = None) -> pd.DataFrame:
    return pd.DataFrame(columns or {}, index=index)


def decode_strings(arr: np.ndarray) -> np.ndarray:
    """Byte strings (fixed-length or object) decoded to ``str`` objects; others unchanged."""
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8").astype(object)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    if arr.dtype == object and arr.size and isinstance(arr.flat[0], bytes):
        return np.array([x.decode("utf-8") if isinstance(x, bytes) else x for x in arr.ravel()], dtype=object).reshape(arr.shape)
    return arr


def anndata(**parts: Any) -> AnnData:
    return AnnData(**parts)
