"""The ``AnnData`` class: an annotated data matrix (observations × variables).

Backed mode is a service of the I/O layer (:mod:`annio._core.services`): when ``filename`` is
given, the constructor calls ``service("open_backed")(adata, filename, filemode)``, which must set
``adata._file`` to a file manager with ``filename``, ``is_open``, ``open()``, ``close()``,
``get_X()``, ``set_X(value)`` and ``get_raw_X()``. Everything else reads X through
:meth:`AnnData._get_actual_X`, so in-memory objects never touch the I/O layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from annio._core.aligned import check_X, coerce_array, infer_dims, new_mapping, non_2d_message
from annio._core.chunks import ChunksMixin
from annio._core.conversion import MAPPINGS as _MAPPINGS
from annio._core.conversion import ConversionMixin, is_anndata_object
from annio._core.index import compose_index, normalize_indices, subset_2d, subset_axis
from annio._core.names import NamesMixin, make_dim_frame
from annio._core.raw import Raw
from annio._core.services import service
from annio._core.views import (
    DictView,
    ElementRef,
    actualize_view,
    as_view,
    drop_unused_categories,
    to_actual,
)
from annio.errors import ImplicitModificationWarning
from annio.settings import settings

__all__ = ["AnnData"]


_STATE = ("_is_view", "_adata_ref", "_oidx", "_vidx", "_X", "_obs", "_var", "_uns", "_raw", "_file") + tuple(
    f"_{m}" for m in _MAPPINGS
)


class _NoFile:
    """The file manager of an in-memory AnnData: no file."""

    filename = filemode = None
    is_open = False

    def open(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("This AnnData object is not backed by a file.")

    def close(self) -> None:
        """Nothing to close."""

    __repr__ = lambda self: "Backing file manager: no file is set."


_SET_LAYERS_KEEPS_X = (
    "Assigning to `.layers` without a `None` key currently preserves `.X` (stored under the `None` key), "
    "but a future release may drop it. Include `.X` explicitly as `{None: adata.X, ...}` to keep it, or "
    "`{None: None, ...}` to drop it and silence this warning."
)
_DEL_LAYERS_KEEPS_X = (
    "`del adata.layers` currently keeps `.X` (stored under the `None` key), but a future release may drop "
    "it. Use `adata.layers.clear(keep_x=True)` to keep `.X` or `adata.layers.clear(keep_x=False)` to drop "
    "it and silence this warning."
)


def _mapping_property(attr: str, doc: str) -> property:
    return property(
        lambda self: self._mapping(attr),
        lambda self, value: self._set_mapping(attr, value),
        lambda self: self._set_mapping(attr, None, deleting=True),
        doc,
    )


class AnnData(ConversionMixin, ChunksMixin, NamesMixin):
    """An annotated data matrix: ``X`` (n_obs × n_vars) with ``obs``/``var`` tables and more.

    Parameters
    ----------
    X
        Data matrix: numpy array, scipy CSR/CSC sparse matrix or array, dask array, h5py or
        zarr array, or a DataFrame (whose index/columns become obs/var names). An annio
        AnnData is copied if it is a view; an ``anndata.AnnData`` is taken over without
        copying its arrays (see :meth:`from_anndata`).
    obs, var
        Observation / variable annotation: DataFrame, mapping of columns, or None.
    uns
        Unstructured annotation (a dict).
    obsm, varm
        Multi-dimensional annotation aligned to the observations / variables.
    layers
        Further matrices with the shape of X.
    raw
        A frozen earlier state (``Raw``, AnnData or a mapping with X/var/varm).
    obsp, varp
        Pairwise (square) annotation of observations / variables.
    shape
        ``(n_obs, n_vars)`` when X is None.
    filename, filemode
        Open in backed mode (X stays on disk); needs ``annio.io``.
    """

    def __init__(
        self,
        X: Any = None,
        obs: pd.DataFrame | Mapping | None = None,
        var: pd.DataFrame | Mapping | None = None,
        uns: Mapping | None = None,
        obsm: Mapping | None = None,
        varm: Mapping | None = None,
        layers: Mapping | None = None,
        raw: Any = None,
        obsp: Mapping | None = None,
        varp: Mapping | None = None,
        shape: tuple[int, int] | None = None,
        *,
        filename: Any = None,
        filemode: Literal["r", "r+"] | None = None,
    ) -> None:
        if is_anndata_object(X):  # an ``anndata.AnnData``: taken over without copying (annio._bridge)
            if any(x is not None for x in (obs, var, uns, obsm, varm, layers, raw, obsp, varp, shape)):
                raise ValueError("If `X` is an AnnData object, no further arguments must be provided.")
            converted = service("from_anndata")(X, type(self))
            self._init_as_actual_from(converted._copy_in_memory() if converted.is_view else converted)
            return
        if isinstance(X, AnnData):
            if any(x is not None for x in (obs, var, uns, obsm, varm, layers, raw, obsp, varp, shape)):
                raise ValueError("If `X` is an AnnData object, no further arguments must be provided.")
            src = X.copy() if X.is_view else X
            X, obs, var, uns, raw = src.X, src.obs, src.var, src.uns, src.raw
            obsm, varm, obsp, varp, layers = (getattr(src, m).as_dict() for m in _MAPPINGS)
        if layers is not None and None in layers:  # anndata 0.13: ``layers[None]`` is X
            layers = dict(layers)
            layer_x = layers.pop(None)
            if X is not None and layer_x is not X:
                raise ValueError("If you provide `layers[None]` and `X`, they must be identical.")
            X = layer_x
        self._init_empty()
        if filename is not None:
            service("open_backed")(self, filename, filemode)
        if isinstance(X, pd.DataFrame):
            obs = pd.DataFrame(index=X.index) if obs is None else obs
            var = pd.DataFrame(index=X.columns) if var is None else var
            X = X.to_numpy()
        if X is not None:
            if shape is not None:
                raise ValueError("`shape` needs to be `None` if `X` is not `None`.")
            X = check_X(to_actual(X))
        n_obs, n_vars = X.shape[:2] if X is not None else (shape if shape is not None else (None, None))
        if X is None and shape is None:  # as anndata: the annotations tell the shape
            found = infer_dims(dict(layers=layers, obsm=obsm, varm=varm, obsp=obsp, varp=varp))
            n_obs, n_vars = (n if given is None else None for n, given in zip(found, (obs, var), strict=True))
        self._obs = make_dim_frame(to_actual(obs), "obs", n_obs)
        self._var = make_dim_frame(to_actual(var), "var", n_vars)
        for attr, df, n, dim in (("obs", self._obs, n_obs, "rows"), ("var", self._var, n_vars, "columns")):
            if n is not None and df.shape[0] != n:
                if X is None:
                    raise ValueError(f"`shape` is inconsistent with `{attr}` ({df.shape[0]} rows instead of {n})")
                raise ValueError(
                    f"Observations annot. `{attr}` must have as many rows as `X` has {dim} ({n}), "
                    f"but has {df.shape[0]} rows."
                )
        if X is not None and not self.isbacked:
            self._X = X
        self._uns = uns if isinstance(uns, dict) else dict(to_actual(uns) or {})
        for attr, value in zip(_MAPPINGS, (obsm, varm, obsp, varp, layers), strict=True):
            setattr(self, f"_{attr}", new_mapping(attr, self, value))
        self.raw = raw
        self._check_uniqueness()

    # -- internal state ----------------------------------------------------------------
    def _init_empty(self) -> None:
        for name in _STATE:
            setattr(self, name, None)
        self._is_view = False
        self._uns = {}
        self._file = _NoFile()

    @classmethod
    def _from_parts(cls, *, X: Any, obs: Any, var: Any, uns: dict, raw: Any = None, **mappings: Mapping) -> AnnData:
        """Build an AnnData from already validated, owned parts (no checks, no copies)."""
        adata = cls.__new__(cls)
        adata._init_empty()
        adata._X, adata._obs, adata._var, adata._uns = X, obs, var, uns
        for attr in _MAPPINGS:
            setattr(adata, f"_{attr}", new_mapping(attr, adata, mappings.get(attr), validate=False))
        if raw is not None:
            adata._raw = Raw._from_parts(adata, raw.X, raw.var, raw.varm.as_dict(), None)
        return adata

    def _init_as_actual_from(self, other: AnnData) -> None:
        """Turn this object (typically a view) into ``other``'s state (copy-on-write)."""
        for name in _STATE:
            setattr(self, name, getattr(other, name))
        for attr in _MAPPINGS:
            getattr(self, f"_{attr}")._parent = self
        if self._raw is not None:
            self._raw._adata = self

    def _init_as_view(self, ref: AnnData, oidx: Any, vidx: Any) -> None:
        self._init_empty()
        self._is_view, self._adata_ref, self._oidx, self._vidx = True, ref, oidx, vidx
        self._file = ref._file
        obs, var, uns = subset_axis(ref.obs, oidx, 0), subset_axis(ref.var, vidx, 0), ref._uns
        if settings.remove_unused_categories:
            obs, uns = drop_unused_categories(ref.obs, obs, uns)
            var, uns = drop_unused_categories(ref.var, var, uns)
        self._obs = as_view(obs, ElementRef(self, "obs"))
        self._var = as_view(var, ElementRef(self, "var"))
        self._uns = uns

    def _actualize_silently(self) -> None:
        if self.is_view:
            self._init_as_actual_from(self._copy_in_memory())

    # -- backed-mode hooks -----------------------------------------------------------
    def _get_actual_X(self) -> Any:
        if self._X is None and self.isbacked:
            return self._file.get_X()
        return self._X

    def _has_X(self) -> bool:
        """Whether X is set (in memory or in the backing file), without subsetting a view."""
        ref = self._adata_ref if self.is_view else self
        return ref._get_actual_X() is not None

    def _backed_raw_X(self) -> Any:
        X = self._file.get_raw_X()
        if self.is_view and X is not None:  # a view's raw holds only the view's observations
            X = subset_axis(X, self._oidx, 0)
        return X

    # -- shape and names ---------------------------------------------------------------
    @property
    def is_view(self) -> bool:
        """Whether this object is a view of another AnnData."""
        return self._is_view

    @property
    def isbacked(self) -> bool:
        """Whether X is stored in a file (backed mode)."""
        return self._file.filename is not None

    @property
    def file(self) -> Any:
        """The backing file manager (without a file for in-memory objects)."""
        return self._file

    @property
    def filename(self) -> Any:
        """Path of the backing file, or None in memory."""
        return self._file.filename

    @filename.setter
    def filename(self, value: Any) -> None:
        if value is None and not self.isbacked:
            return
        service("set_filename")(self, value)

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return self._obs.shape[0]

    @property
    def n_vars(self) -> int:
        """Number of variables."""
        return self._var.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)``."""
        return self.n_obs, self.n_vars

    def __len__(self) -> int:
        return self.n_obs

    # -- obs / var / uns -------------------------------------------------------------
    @property
    def obs(self) -> pd.DataFrame:
        """One-dimensional annotation of observations."""
        return self._obs

    @obs.setter
    def obs(self, value: Any) -> None:
        self._set_dim_df("obs", value)

    obs = obs.deleter(lambda self: setattr(self, "obs", pd.DataFrame(index=self.obs_names)))

    @property
    def var(self) -> pd.DataFrame:
        """One-dimensional annotation of variables."""
        return self._var

    @var.setter
    def var(self, value: Any) -> None:
        self._set_dim_df("var", value)

    var = var.deleter(lambda self: setattr(self, "var", pd.DataFrame(index=self.var_names)))

    def _set_dim_df(self, attr: str, value: Any) -> None:
        n = self.n_obs if attr == "obs" else self.n_vars
        df = make_dim_frame(to_actual(value), attr, n)
        if df.shape[0] != n:
            raise ValueError(f"`shape` is inconsistent with `{attr}` ({df.shape[0]} rows instead of {n})")
        self._actualize_silently()
        setattr(self, f"_{attr}", df)
        self._sync_frame_indexes(attr)

    @property
    def uns(self) -> Any:
        """Unstructured annotation (a dict; a copy-on-write ``DictView`` for views)."""
        if self.is_view:
            return DictView(self._uns, ElementRef(self, "uns"))
        return self._uns

    @uns.setter
    def uns(self, value: Mapping) -> None:
        if not isinstance(value, Mapping):
            raise ValueError("Only mutable mapping types (e.g. dict) are allowed for `.uns`.")
        self._actualize_silently()
        self._uns = value if isinstance(value, dict) else to_actual(value)

    uns = uns.deleter(lambda self: setattr(self, "uns", {}))

    # -- X ---------------------------------------------------------------------------
    @property
    def X(self) -> Any:
        """Data matrix of shape ``(n_obs, n_vars)`` (or None)."""
        if self.is_view:
            ref_X = self._adata_ref._get_actual_X()
            return as_view(subset_2d(ref_X, self._oidx, self._vidx), ElementRef(self, "X"))
        return self._get_actual_X()

    @X.setter
    def X(self, value: Any) -> None:
        # Validation follows anndata 0.13: scalars fill the shape and mismatched shapes are
        # reshaped (both with a FutureWarning) before a view is actualised.
        if value is not None:
            if np.isscalar(value):
                warnings.warn(
                    "The ability to set X with a scalar value will be removed in the future.  Initializing "
                    "as an `np.array` with the shape of the current view.",
                    FutureWarning,
                    stacklevel=2,
                )
                value = np.full(self.shape, fill_value=value)
            value = coerce_array(to_actual(value), name="X")
            shape = tuple(value.shape)
            if shape[:2] != self.shape:
                if len(shape) > 2:
                    raise ValueError(
                        f"Cannot set `X` from an array of shape {shape}: its leading two dimensions "
                        f"{shape[:2]} do not match the AnnData shape {self.shape}. Automatic reshaping is "
                        "only supported for 2-D inputs."
                    )
                warnings.warn("Automatic reshaping when setting X will be removed in the future.", FutureWarning, stacklevel=2)
                value = value.reshape(self.shape)
            if (msg := non_2d_message(value, name="X")) is not None:
                warnings.warn(msg, UserWarning, stacklevel=2)
        if self.is_view and value is not None and not settings.copy_on_write_X:
            self._write_X_through(value)
            return
        if self.is_view:
            new = actualize_view(self, "X", stacklevel=3)
            new.X = value
            self._init_as_actual_from(new)
            return
        if self.isbacked:
            self._file.set_X(value)
        else:
            self._X = value

    X = X.deleter(lambda self: setattr(self, "X", None))

    def _write_X_through(self, value: Any) -> None:
        """anndata 0.12 (``settings.copy_on_write_X = False``): a view's new X goes into its
        parent's X at the view's positions; the view stays a view."""
        warnings.warn(
            "Setting `.X` of a view writes into the parent AnnData because "
            "`settings.copy_on_write_X` is False; anndata 0.13 (and annio's default) copy the view instead.",
            FutureWarning,
            stacklevel=3,
        )
        warnings.warn("Setting `.X` of a view overwrites the parent's data.", ImplicitModificationWarning, stacklevel=3)
        ref_X = self._adata_ref._get_actual_X()
        oidx, vidx = self._oidx, self._vidx
        key = (oidx, vidx) if isinstance(oidx, slice) or isinstance(vidx, slice) else np.ix_(oidx, vidx)
        ref_X[key] = value.toarray() if hasattr(value, "toarray") and not hasattr(ref_X, "tocsr") else value

    # -- aligned mappings ------------------------------------------------------------
    def _mapping(self, attr: str) -> Any:
        if self.is_view:
            return getattr(self._adata_ref, f"_{attr}")._view(self, self._oidx, self._vidx)
        return getattr(self, f"_{attr}")

    def _set_mapping(self, attr: str, value: Mapping | None, *, deleting: bool = False) -> None:
        x_given, x_value = False, None
        if attr == "layers":  # anndata 0.13: the None key is X
            value = dict(value) if value is not None else {}
            x_given = None in value
            x_value = value.pop(None, None)
            if not x_given and self._has_X():
                warnings.warn(_DEL_LAYERS_KEEPS_X if deleting else _SET_LAYERS_KEEPS_X, FutureWarning, stacklevel=3)
        new = new_mapping(attr, self, value)  # validates before anything changes
        self._actualize_silently()
        new._parent = self
        setattr(self, f"_{attr}", new)
        if x_given:
            self.X = x_value

    obsm = _mapping_property("obsm", "Multi-dimensional annotation of observations (values with n_obs rows).")
    varm = _mapping_property("varm", "Multi-dimensional annotation of variables (values with n_vars rows).")
    obsp = _mapping_property("obsp", "Pairwise annotation of observations (n_obs × n_obs values).")
    varp = _mapping_property("varp", "Pairwise annotation of variables (n_vars × n_vars values).")
    layers = _mapping_property("layers", "Further data matrices with the shape of X (``layers[None]`` is X).")

    # -- raw -------------------------------------------------------------------------
    @property
    def raw(self) -> Raw | None:
        """A frozen earlier state of X and var (``adata.raw = adata`` stores a copy)."""
        if self.is_view:
            ref_raw = self._adata_ref._raw
            return None if ref_raw is None else ref_raw._subset_obs(self, self._oidx)
        return self._raw

    @raw.setter
    def raw(self, value: Any) -> None:
        if value is None:
            self._actualize_silently()
            self._raw = None
            return
        new_raw = Raw.from_value(self, value)
        self._actualize_silently()
        new_raw._adata = self
        self._raw = new_raw

    raw = raw.deleter(lambda self: setattr(self, "raw", None))

    # -- subsetting (copies and conversions: annio._core.conversion) ------------------
    def __getitem__(self, index: Any) -> AnnData:
        """A view of the selected observations and variables (see ``annio._core.index``)."""
        oidx, vidx = normalize_indices(index, self.obs_names, self.var_names)
        ref = self
        if self.is_view:
            ref = self._adata_ref
            oidx = compose_index(self._oidx, oidx, ref.n_obs)
            vidx = compose_index(self._vidx, vidx, ref.n_vars)
        view = type(self).__new__(type(self))
        view._init_as_view(ref, oidx, vidx)
        return view

    def __eq__(self, other: object) -> bool:
        raise NotImplementedError(
            "Equality comparisons are not supported for AnnData objects, instead compare the desired attributes."
        )

    __hash__ = None  # type: ignore[assignment]  # like anndata: unhashable

    def __repr__(self) -> str:
        prefix = "View of " if self.is_view else ""
        head = f"{prefix}AnnData object with n_obs × n_vars = {self.n_obs} × {self.n_vars}"
        if self.isbacked:
            head += f" backed at {str(self.filename)!r}"
        lines = [head]
        for attr in ("obs", "var", "uns", "obsm", "varm", "obsp", "varp", "layers"):
            value = self._obs if attr == "obs" else self._var if attr == "var" else self._uns if attr == "uns" else None
            keys = list(value.columns if attr in ("obs", "var") else value) if value is not None else list(
                getattr(self, attr).keys()
            )
            if keys:  # anndata 0.13: X is shown as the ``None`` layer
                lines.append(f"    {attr}: " + ", ".join("None (.X)" if k is None else f"'{k}'" for k in keys))
        return "\n".join(lines)

