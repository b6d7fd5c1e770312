"""annio → anndata: :func:`to_anndata` (``annio.AnnData.to_anndata()``).

The result is a real ``anndata.AnnData`` that holds the *same* array objects as the annio
object — X, layers, obsm/varm/obsp/varp, raw X/varm, and the column arrays of obs/var (the
frames are shallow copies: new column sets over shared buffers, so adding a column on one
side does not add it on the other, but writing into a shared array is seen by both). uns is
carried over with new ``dict`` containers around the same values.

* A **view** converts its parent and returns anndata's view of it with the same indices,
  i.e. exactly what anndata gives for ``adata[oidx, vidx]``.
* A **backed** object becomes an anndata backed object on the same file and mode; everything
  but X and raw X comes from the annio object's memory.
* A **lazy** object (``annio.experimental.read_lazy``) keeps its dask arrays lazy (anndata
  accepts dask arrays in X, layers, obsm, ...); its lazy obs/var frames, and lazy frames in
  other elements, are loaded into pandas DataFrames, since anndata's own lazy frame type is
  private to anndata. Call ``.to_memory()`` first for a fully in-memory anndata object.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd

from annio._core.names import is_lazy_frame

__all__ = ["to_anndata", "import_anndata"]

_MAPPINGS = ("obsm", "varm", "obsp", "varp", "layers")


def import_anndata() -> Any:
    """The ``anndata`` module, or an ImportError saying it is needed and how to get it."""
    try:
        import anndata
    except ImportError as err:
        raise ImportError(
            "Converting to an anndata object needs the `anndata` package, which is not installed. "
            "Install it with `pip install anndata`."
        ) from err
    return anndata


def _frame(df: Any) -> Any:
    """A frame anndata can hold: pandas (lazy frames loaded), shallow-copied."""
    if is_lazy_frame(df):
        return df.to_memory()
    return df.copy(deep=False)


def _value(value: Any) -> Any:
    """An element value as anndata holds it (the same object except for frames and
    nested AnnData objects)."""
    if value is None:
        return None
    if is_lazy_frame(value) or isinstance(value, pd.DataFrame):
        return _frame(value)
    if _is_annio(value):
        return to_anndata(value)
    return value


def _uns(value: Any) -> Any:
    """uns with fresh dict containers (nested dicts included) around the same values."""
    if isinstance(value, dict) or type(value).__name__ == "DictView":
        data = getattr(value, "_data", value)
        return {k: _uns(v) for k, v in data.items()}
    return _value(value)


def _is_annio(value: Any) -> bool:
    from annio._core.anndata import AnnData

    return isinstance(value, AnnData)


def to_anndata(adata: Any) -> Any:
    """An ``anndata.AnnData`` sharing every array buffer with ``adata`` (see the module doc).

    Parameters
    ----------
    adata
        An :class:`annio.AnnData` (actual, view, backed or lazy).

    Returns
    -------
    ``anndata.AnnData``
    """
    ad = import_anndata()
    if adata.is_view:
        return to_anndata(adata._adata_ref)[adata._oidx, adata._vidx]
    kwargs: dict[str, Any] = {
        "obs": _frame(adata._obs),
        "var": _frame(adata._var),
        "uns": _uns(adata._uns),
        **{attr: {k: _value(v) for k, v in getattr(adata, f"_{attr}")._data.items()} for attr in _MAPPINGS},
    }
    raw = adata._raw
    if adata.isbacked:
        if raw is not None:  # anndata reads the raw X of a backed object from the file
            kwargs["raw"] = {"var": _frame(raw.var), "varm": {k: _value(v) for k, v in raw.varm.items()}}
            if raw._X is not None:
                kwargs["raw"]["X"] = raw._X
        with _uniqueness_checked(ad, adata):
            return ad.AnnData(**kwargs, filename=adata.filename, filemode=adata.file.filemode)
    if raw is not None:
        kwargs["raw"] = {
            "X": _value(raw._X),
            "var": _frame(raw.var),
            "varm": {k: _value(v) for k, v in raw.varm.items()},
        }
    with _uniqueness_checked(ad, adata):
        return ad.AnnData(X=_value(adata._X), **kwargs)


def _uniqueness_checked(ad: Any, adata: Any) -> Any:
    """Switch off anndata's name-uniqueness check (most of the conversion time) when annio
    already knows the names are unique (pandas caches that on the shared index)."""
    override = getattr(ad.settings, "override", None)
    if override is not None and adata.obs_names.is_unique and adata.var_names.is_unique:
        return override(check_uniqueness=False)
    return contextlib.nullcontext()
