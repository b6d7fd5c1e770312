"""``Raw``: a frozen earlier state of X and var (with varm); obs comes from the parent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annio._core.aligned import AxisArrays, coerce_array
from annio._core.index import Index1D, dense, normalize_indices, subset_2d, subset_axis
from annio._core.names import make_dim_frame
from annio._core.views import copy_element, to_actual

if TYPE_CHECKING:
    from annio._core.anndata import AnnData

__all__ = ["Raw"]


class Raw:
    """The ``.raw`` attribute of an AnnData: ``X``, ``var`` and ``varm``.

    Parameters
    ----------
    adata
        The AnnData this raw belongs to (its obs are the raw's obs).
    X, var, varm
        The raw data. When ``X`` is None they are taken (copied) from ``adata``.
    """

    def __init__(
        self,
        adata: AnnData,
        X: Any = None,
        var: pd.DataFrame | Mapping | None = None,
        varm: Mapping | None = None,
    ) -> None:
        self._adata = adata
        self._obs_idx: Index1D | None = None
        if X is None:
            if adata.isbacked and not adata.is_view:
                self._X = None  # read from the backing file by the I/O layer
            else:
                self._X = copy_element(adata.X)
            self._var = copy_element(adata.var)
            self._varm = AxisArrays(self, 1, {k: copy_element(v) for k, v in adata.varm.items()})
            return
        X = coerce_array(to_actual(X), name="X")
        if X.shape[0] != adata.n_obs:
            raise ValueError(f"X has {X.shape[0]} rows, but n_obs is {adata.n_obs}")
        self._X = X
        self._var = make_dim_frame(to_actual(var), "var", X.shape[1])
        if len(self._var) != X.shape[1]:
            raise ValueError(f"`var` has {len(self._var)} rows, but raw X has {X.shape[1]} columns")
        self._varm = AxisArrays(self, 1, {k: to_actual(v) for k, v in (varm or {}).items()})

    @classmethod
    def from_value(cls, adata: AnnData, value: Any) -> Raw:
        """A new raw for ``adata`` from an AnnData, a Raw or a mapping with X/var/varm."""
        if isinstance(value, Raw):
            return cls(adata, X=value.X, var=value.var, varm=value.varm.as_dict())
        if isinstance(value, Mapping):
            return cls(adata, **dict(value))
        if hasattr(value, "X") and hasattr(value, "var") and hasattr(value, "varm"):
            return cls(adata, X=copy_element(value.X), var=copy_element(value.var), varm=value.varm.copy())
        raise ValueError(f"Can only set raw to an AnnData, a Raw, a mapping or None, not {type(value)}.")

    @classmethod
    def _from_parts(cls, adata: AnnData, X: Any, var: pd.DataFrame, varm: Mapping, obs_idx: Index1D | None) -> Raw:
        raw = cls.__new__(cls)
        raw._adata = adata
        raw._obs_idx = obs_idx
        raw._X = X
        raw._var = var
        raw._varm = AxisArrays.__new__(AxisArrays)
        raw._varm.axes, raw._varm.attrname = (1,), "varm"
        raw._varm._parent, raw._varm._data = raw, dict(varm)
        return raw

    # -- data ------------------------------------------------------------------------
    @property
    def X(self) -> Any:
        """The raw data matrix."""
        if self._X is None:
            return self._adata._backed_raw_X()
        return self._X

    @property
    def var(self) -> pd.DataFrame:
        """Variable annotation of the raw data."""
        return self._var

    @property
    def varm(self) -> AxisArrays:
        """Multi-dimensional variable annotation of the raw data."""
        return self._varm

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        if self._X is not None:
            return self._X.shape[0]
        return self._adata.n_obs

    @property
    def n_vars(self) -> int:
        """Number of variables."""
        return len(self._var)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)``."""
        return self.n_obs, self.n_vars

    @property
    def obs_names(self) -> pd.Index:
        """Names of the observations (from the parent)."""
        names = self._adata.obs_names
        return names if self._obs_idx is None else names[self._obs_idx]

    @property
    def var_names(self) -> pd.Index:
        """Names of the variables."""
        return self._var.index

    @property
    def isbacked(self) -> bool:
        """Whether X is read from a file."""
        return self._X is None

    # -- operations ------------------------------------------------------------------
    def _subset_obs(self, adata: AnnData, oidx: Index1D) -> Raw:
        """The raw of a view ``adata`` whose obs are ``oidx`` of this raw's parent."""
        X = self._X if self._X is None else subset_axis(self._X, oidx, 0)
        raw = Raw._from_parts(adata, X, self._var, self._varm._data, None)
        if self._X is None:
            raw._backed_oidx = oidx
        return raw

    def __getitem__(self, index: Any) -> Raw:
        oidx, vidx = normalize_indices(index, self.obs_names, self.var_names)
        X = subset_2d(self.X, oidx, vidx)
        if type(X).__module__.startswith(("h5py", "zarr")):
            X = X[...]
        var = self._var.iloc[vidx]
        varm = {k: subset_axis(v, vidx, 0) for k, v in self._varm.items()}
        return Raw._from_parts(self._adata, X, var, varm, oidx)

    def copy(self) -> Raw:
        """A deep copy (attached to the same parent)."""
        return Raw._from_parts(
            self._adata, copy_element(self.X), copy_element(self._var), self._varm.copy(), self._obs_idx
        )

    def to_adata(self) -> AnnData:
        """An AnnData with the raw X, var and varm and the parent's obs, obsm, obsp and uns."""
        parent = self._adata
        oidx = self._obs_idx
        sub = parent if oidx is None else parent[oidx]
        return type(parent)(
            X=copy_element(self.X),
            obs=copy_element(sub.obs),
            var=copy_element(self._var),
            varm=self._varm.copy(),
            obsm=sub.obsm.copy(),
            obsp=sub.obsp.copy(),
            uns=copy_element(parent._uns),
        )

    def obs_vector(self, k: str) -> np.ndarray:
        """Values of variable ``k`` across observations (a column of X)."""
        j = self.var_names.get_loc(k)
        col = subset_axis(self.X, slice(j, j + 1), 1)
        return dense(col).ravel()

    def var_vector(self, k: str) -> np.ndarray:
        """Values of observation ``k`` across variables (a row of X)."""
        i = self.obs_names.get_loc(k)
        return dense(subset_axis(self.X, slice(i, i + 1), 0)).ravel()

    def __len__(self) -> int:
        return self.n_obs

    def __repr__(self) -> str:
        lines = [f"Raw AnnData with n_obs × n_vars = {self.n_obs} × {self.n_vars}"]
        if len(self._var.columns):
            lines.append("    var: " + ", ".join(f"'{c}'" for c in self._var.columns))
        if len(self._varm):
            lines.append("    varm: " + ", ".join(f"'{c}'" for c in self._varm))
        return "\n".join(lines)
