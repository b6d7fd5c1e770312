"""obs/var tables and their names: validation, make-unique and strings-to-categoricals.

All functions here are pure: they return new objects and never mutate their arguments, so
the writer can, for example, convert strings to categoricals without touching the caller's
AnnData.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from natsort import natsorted

from annio._core.views import actualize_view
from annio.errors import ImplicitModificationWarning
from annio.settings import settings

__all__ = [
    "is_lazy_frame",
    "default_index",
    "prep_dim_index",
    "make_dim_frame",
    "make_index_unique",
    "strings_to_categoricals",
    "string_columns_to_convert",
    "warn_names_duplicates",
    "NamesMixin",
]

_LABEL = {"obs": "Observation", "var": "Variable"}


def is_lazy_frame(obj: Any) -> bool:
    """Whether ``obj`` is a lazy data frame (marked with ``_annio_lazy_frame = True``)."""
    return bool(getattr(obj, "_annio_lazy_frame", False))


def default_index(n: int) -> pd.Index:
    """``'0', '1', ..., 'n-1'`` as a string index."""
    return pd.Index(np.arange(n).astype(str))


def _is_string_index(index: pd.Index) -> bool:
    return pd.api.types.infer_dtype(index, skipna=False) in {"string", "empty"}


def prep_dim_index(index: Any, attr: str) -> pd.Index:
    """Validate an obs/var index; non-string indexes become strings with a warning.

    Parameters
    ----------
    index
        The proposed ``obs_names``/``var_names`` (anything ``pd.Index`` accepts).
    attr
        ``"obs"`` or ``"var"`` (for messages).
    """
    if not isinstance(index, pd.Index):
        index = pd.Index(index)
    if isinstance(index, pd.MultiIndex):
        if settings.restrict_index_types:
            raise ValueError(
                "pandas.MultiIndex not supported as index for obs or var on declaration.\n"
                "            You can set `obs_names` manually although most operations after will "
                "error or convert to str.\n"
                "            This behavior will likely be clarified in a future breaking release."
            )
        return index
    if not settings.restrict_index_types or _is_string_index(index):
        return index
    if isinstance(index, pd.CategoricalIndex) and _is_string_index(index.categories):
        return index  # as anndata: categorical names stay categorical
    warnings.warn("Transforming to str index.", ImplicitModificationWarning, stacklevel=4)
    return pd.Index(index.astype(str), name=index.name)


def make_dim_frame(value: Any, attr: str, n: int | None) -> Any:
    """Turn ``obs``/``var`` input (DataFrame, mapping of columns, None) into a DataFrame.

    The caller's DataFrame is never mutated (a shallow copy is made). Lazy frames (objects
    with ``_annio_lazy_frame = True``) are returned unchanged. The length is not checked
    here; ``n`` only sizes the default index when ``value`` is None.
    """
    if is_lazy_frame(value):
        return value
    if value is None:
        return pd.DataFrame(index=default_index(n or 0))
    if isinstance(value, pd.DataFrame):
        df = value.copy(deep=False)
    elif isinstance(value, Mapping):
        columns = dict(value)
        names = columns.pop(f"{attr}_names", None)
        alias = "row_names" if attr == "obs" else "col_names"  # anndata's older spelling
        if names is None:
            names = columns.pop(alias, None)
        if names is not None:
            df = pd.DataFrame(columns, index=names)
        else:
            try:  # sized by X when known, so that ``{}`` and scalar columns fill it
                df = pd.DataFrame(columns, index=None if n is None else default_index(n))
            except ValueError:  # lengths differ from X: the caller reports the mismatch
                df = pd.DataFrame(columns)
            if n is None or len(df) != n:
                df.index = default_index(len(df))
    else:
        raise ValueError(f"Can only accept a pandas.DataFrame, a mapping or None as `{attr}`, not {type(value)}.")
    df.index = prep_dim_index(df.index, attr)
    return df


def warn_names_duplicates(attr: str) -> None:
    """The UserWarning anndata emits for non-unique obs/var names."""
    warnings.warn(
        f"{_LABEL[attr]} names are not unique. To make them unique, call `.{attr}_names_make_unique`.",
        UserWarning,
        stacklevel=4,
    )


def make_index_unique(index: pd.Index, join: str = "-") -> pd.Index:
    """Make an index unique the way anndata does.

    The first occurrence of a name is kept; each later duplicate ``v`` becomes
    ``f"{v}{join}{k}"`` with a per-name counter ``k`` starting at 1, skipping candidates that
    already exist (a UserWarning then says that the suffixes may be hard to interpret).
    Missing values (NaN) are left alone.

    Parameters
    ----------
    index
        The names.
    join
        The separator between name and counter.
    """
    if index.is_unique:
        return index
    values = np.asarray(index, dtype=object).copy()
    dup_mask = np.asarray(index.duplicated(keep="first")) & ~np.asarray(pd.isna(index))
    taken = set(values.tolist())
    counters: dict[Any, int] = {}
    collisions: list[str] = []
    new_names = []
    for name in values[dup_mask]:  # a loop over the duplicates only
        k = counters.get(name, 0)
        while True:
            k += 1
            candidate = f"{name}{join}{k}"
            if candidate not in taken:
                break
            collisions.append(candidate)
        counters[name] = k
        taken.add(candidate)
        new_names.append(candidate)
    values[dup_mask] = new_names
    if collisions:
        warnings.warn(
            f"Suffix used ({join}[0-9]+) to deduplicate index values may make index values difficult "
            "to interpret. There values with a similar suffixes in the index. Consider using a "
            "different delimiter by passing `join={delimiter}`. Example key collisions generated by "
            f"the make_index_unique algorithm: {collisions[:5]}",
            UserWarning,
            stacklevel=3,
        )
    return pd.Index(values, name=index.name, dtype=index.dtype)


def _should_convert(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.infer_dtype(column, skipna=True) != "string":
        return False
    return column.nunique(dropna=True) < len(column)


def string_columns_to_convert(df: Any) -> list:
    """Names of the string columns of ``df`` that ``strings_to_categoricals`` would convert."""
    if is_lazy_frame(df) or not isinstance(df, pd.DataFrame):
        return []
    return [key for key in df.columns if _should_convert(df[key])]


def _to_categorical(column: pd.Series) -> pd.Categorical:
    uniques = column.dropna().unique()
    categories = pd.Index(natsorted(np.asarray(uniques, dtype=object)), dtype=column.dtype)
    return pd.Categorical(column, categories=categories)


def strings_to_categoricals(df: Any) -> Any:
    """A copy of ``df`` with string columns converted to (natsorted) categoricals.

    A column is converted when it holds strings (``infer_dtype == "string"`` ignoring missing
    values, including pandas string dtypes) and has fewer distinct values than rows. The input
    is not modified; when nothing needs converting, ``df`` itself is returned. Lazy frames are
    returned unchanged.
    """
    keys = string_columns_to_convert(df)
    if not keys:
        return df
    out = df.copy(deep=False)
    for key in keys:
        out[key] = _to_categorical(df[key])
    return out


class NamesMixin:
    """AnnData methods about obs/var names, key listings and categoricals.

    Relies on the host class for ``_obs``, ``_var``, ``_obsm``/``_varm``, ``n_obs``,
    ``n_vars``, ``shape``, ``is_view``, ``isbacked`` and ``_actualize_silently``.
    """

    def _check_uniqueness(self) -> None:
        if not settings.check_uniqueness:
            return
        for attr in ("obs", "var"):
            if not getattr(self, f"{attr}_names").is_unique:
                warn_names_duplicates(attr)

    @property
    def obs_names(self) -> pd.Index:
        """Names of the observations (``obs.index``)."""
        return self._obs.index

    @obs_names.setter
    def obs_names(self, names: Any) -> None:
        self._set_names("obs", names)

    @property
    def var_names(self) -> pd.Index:
        """Names of the variables (``var.index``)."""
        return self._var.index

    @var_names.setter
    def var_names(self, names: Any) -> None:
        self._set_names("var", names)

    def _set_names(self, attr: str, names: Any) -> None:
        if isinstance(names, pd.Series) and not isinstance(names.name, str):
            names = pd.Index(names.array).rename(None)  # as anndata: a Series' non-string name is dropped
        if not isinstance(names, pd.Index):
            names = pd.Index(names)
        if not isinstance(names.name, (str, type(None))):
            raise ValueError(
                f"AnnData expects .{attr}.index.name to be a string or None, but you passed a name "
                f"of type {type(names.name).__name__!r}"
            )
        n = self.n_obs if attr == "obs" else self.n_vars
        if len(names) != n:
            raise ValueError(
                f"Length of passed value for {attr}_names is {len(names)}, but this AnnData has shape: {self.shape}"
            )
        self._actualize_silently()
        names = prep_dim_index(names, attr)
        df = getattr(self, f"_{attr}")
        if is_lazy_frame(df):
            raise NotImplementedError(f"Cannot set {attr}_names of a lazy {attr} frame.")
        df.index = names
        self._sync_frame_indexes(attr)
        if settings.check_uniqueness and not names.is_unique:
            warn_names_duplicates(attr)

    def _sync_frame_indexes(self, attr: str) -> None:
        getattr(self, f"_{attr}m")._sync_index(getattr(self, f"{attr}_names"))

    def _deprecated_keys(self, attr: str, example: str) -> list:
        warnings.warn(
            f"The method {attr}_keys is deprecated and will be removed in the future. Use {attr} instead "
            f"of {attr}_keys. (e.g. `k in adata.{attr}` or {example})",
            FutureWarning,
            stacklevel=3,
        )
        source = getattr(self, attr)
        return source.columns.tolist() if isinstance(source, pd.DataFrame) else list(source.keys())

    def obs_keys(self) -> list[str]:
        """Column names of obs (deprecated in anndata: use ``adata.obs.columns``)."""
        return self._deprecated_keys("obs", "`str(adata.obs.columns.tolist())`")

    def var_keys(self) -> list[str]:
        """Column names of var (deprecated in anndata: use ``adata.var.columns``)."""
        return self._deprecated_keys("var", "`str(adata.var.columns.tolist())`")

    def obsm_keys(self) -> list[str]:
        """Keys of obsm (deprecated in anndata: use ``adata.obsm.keys()``)."""
        return self._deprecated_keys("obsm", "`adata.obsm.keys() | {'u'}`")

    def varm_keys(self) -> list[str]:
        """Keys of varm (deprecated in anndata: use ``adata.varm.keys()``)."""
        return self._deprecated_keys("varm", "`adata.varm.keys() | {'u'}`")

    def uns_keys(self) -> list[str]:
        """Keys of uns (deprecated in anndata: use ``sorted(adata.uns)``)."""
        return self._deprecated_keys("uns", "`sorted(adata.uns)`")

    def obs_names_make_unique(self, join: str = "-") -> None:
        """Make obs_names unique by appending ``f"{join}{k}"`` to later duplicates."""
        self.obs_names = make_index_unique(self.obs_names, join)

    def var_names_make_unique(self, join: str = "-") -> None:
        """Make var_names unique by appending ``f"{join}{k}"`` to later duplicates."""
        self.var_names = make_index_unique(self.var_names, join)

    def strings_to_categoricals(self, df: pd.DataFrame | None = None) -> None:
        """Convert string columns with repeated values to natsorted categoricals, in place.

        Parameters
        ----------
        df
            Convert this DataFrame (in place) instead of ``obs`` and ``var``.
        """
        if df is not None:
            converted = strings_to_categoricals(df)
            for key in string_columns_to_convert(df):
                df[key] = converted[key]
            return
        todo = {attr: string_columns_to_convert(getattr(self, attr)) for attr in ("obs", "var")}
        if not any(todo.values()):
            return
        if self.is_view:
            if self.isbacked:
                raise RuntimeError(
                    "Please call `.strings_to_categoricals()` on full AnnData, not on this view. "
                    "You might encounter this error message while copying or writing to disk."
                )
            attr = "obs" if todo["obs"] else "var"
            self._init_as_actual_from(actualize_view(self, attr, stacklevel=3))
        for attr in ("obs", "var"):
            self.strings_to_categoricals(getattr(self, attr))

    _sanitize = strings_to_categoricals

