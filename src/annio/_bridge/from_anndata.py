"""anndata → annio: :func:`from_anndata` (``annio.AnnData(obj)``, ``AnnData.from_anndata``)
and :func:`as_annio`, which every writer calls on what it is given.

Nothing here imports ``anndata``: the object is read through its public attributes (``X``,
``obs``, ``layers``, ``raw``, ``is_view``, ``isbacked``, ...), so both anndata 0.12 (X kept
apart) and 0.13 (X listed as ``layers[None]``) work. Arrays are taken over as the same
objects (no copy); obs/var are shallow copies (own column set, shared buffers); uns gets new
dict containers around the same values.

* A **view** converts its parent and returns annio's view with the same indices.
* A **backed** object becomes an annio backed object on the same file and mode.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from annio._core.conversion import is_anndata_object

__all__ = ["from_anndata", "as_annio", "is_anndata", "is_anndata_raw"]

_MAPPINGS = ("obsm", "varm", "obsp", "varp")


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an ``anndata.AnnData`` (without importing anndata)."""
    return is_anndata_object(obj, "AnnData")


def is_anndata_raw(obj: Any) -> bool:
    """Whether ``obj`` is an ``anndata.Raw`` (without importing anndata)."""
    return is_anndata_object(obj, "Raw")


def _value(value: Any) -> Any:
    if is_anndata(value):
        return from_anndata(value)
    if isinstance(value, pd.DataFrame):
        return value.copy(deep=False)
    return value


def _uns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _uns(v) for k, v in value.items()}
    return _value(value)


def _named_layers(obj: Any) -> dict:
    """The layers of ``obj`` without anndata 0.13's ``None`` key (which is X)."""
    layers = obj.layers
    return {k: _value(layers[k]) for k in list(layers.keys()) if k is not None}


def _filemode(obj: Any) -> str:
    manager = obj.file
    mode = getattr(manager, "_filemode", None) or getattr(manager, "filemode", None)
    if mode is None:
        handle = getattr(manager, "_file", None)
        mode = getattr(handle, "mode", "r")
    return "r+" if mode in ("r+", "a", "w") else "r"


def _plain_index(index: Any) -> Any:
    """A view's index as numpy/slice: anndata 0.13 wraps it in an ``IndexManager`` (one
    index per array backend) whose ``get_default()`` is the numpy form."""
    get_default = getattr(index, "get_default", None)
    return get_default() if callable(get_default) else index


def from_anndata(obj: Any, cls: type | None = None) -> Any:
    """An :class:`annio.AnnData` sharing every array buffer with the ``anndata`` object ``obj``.

    Parameters
    ----------
    obj
        An ``anndata.AnnData`` (actual, view or backed).
    cls
        The annio class to build (default :class:`annio.AnnData`; subclasses work).

    Returns
    -------
    :class:`annio.AnnData`
    """
    from annio._core.anndata import AnnData
    from annio._core.raw import Raw

    cls = AnnData if cls is None else cls
    if not is_anndata(obj):
        raise TypeError(f"expected an anndata.AnnData, got {type(obj).__module__}.{type(obj).__qualname__}")
    if obj.is_view:
        ref, oidx, vidx = (getattr(obj, name, None) for name in ("_adata_ref", "_oidx", "_vidx"))
        if ref is not None and oidx is not None and vidx is not None:
            return from_anndata(ref, cls)[_plain_index(oidx), _plain_index(vidx)]
        obj = obj.copy()  # an anndata without the view internals: convert its copy
    kwargs: dict[str, Any] = {
        "obs": obj.obs.copy(deep=False),
        "var": obj.var.copy(deep=False),
        "uns": _uns(dict(obj.uns)),
        **{attr: {k: _value(v) for k, v in getattr(obj, attr).items()} for attr in _MAPPINGS},
        "layers": _named_layers(obj),
    }
    raw = obj.raw
    if obj.isbacked:
        adata = cls(**kwargs, filename=obj.filename, filemode=_filemode(obj))
        if raw is not None:
            raw_X = getattr(raw, "_X", None)  # None: anndata reads it from the file, so does annio
            varm = {k: _value(v) for k, v in raw.varm.items()}
            adata._raw = Raw._from_parts(adata, raw_X, raw.var.copy(deep=False), varm, None)
        return adata
    if raw is not None:
        kwargs["raw"] = {"X": raw.X, "var": raw.var.copy(deep=False), "varm": {k: _value(v) for k, v in raw.varm.items()}}
    return cls(X=obj.X, **kwargs)


def as_annio(obj: Any) -> Any:
    """``obj`` itself, or the annio object of an ``anndata.AnnData`` (zero-copy); what every
    annio writer calls on its input, so writers accept anndata objects directly."""
    if is_anndata(obj):
        return from_anndata(obj)
    return obj
