"""Aligned mappings: ``obsm``/``varm`` (axis arrays), ``obsp``/``varp`` (pairwise), ``layers``.

Values are stored as the plain objects the user set (after coercion), so ``dict(adata.obsm)``
gives the arrays. Views of these mappings subset each value on access.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from annio._core.index import Index1D, subset_2d, subset_axis
from annio._core.kinds import DataMapping
from annio._core.shapes import axis_frame, element_shape, infer_dims
from annio._core.views import ElementRef, as_view, copy_element, drop_unused_categories, is_awkward, to_actual
from annio.errors import ImplicitModificationWarning
from annio.settings import settings

if TYPE_CHECKING:
    from annio._core.anndata import AnnData

__all__ = [
    "coerce_array",
    "AlignedMapping",
    "AxisArrays",
    "PairwiseArrays",
    "Layers",
    "AlignedView",
    "new_mapping",
    "check_X",
    "element_shape",
    "infer_dims",
]

_DIM_NAMES = ("obs", "var")


def _is_supported_array(x: Any) -> bool:
    module = type(x).__module__
    return (
        isinstance(x, np.ndarray)
        or sparse.issparse(x)
        or module.startswith(("dask", "h5py", "zarr", "awkward", "xarray", "cupy"))
        or hasattr(x, "_annio_lazy_frame")
        or getattr(x, "_annio_backed_array", False)
    )


def coerce_array(value: Any, *, name: str, allow_df: bool = False, allow_array_like: bool = True) -> Any:
    """Check and normalise a value stored in X, layers, obsm, ... .

    ``np.matrix`` becomes ``np.ndarray`` (with an ImplicitModificationWarning), sparse formats
    other than CSR/CSC are rejected, lists and tuples become arrays when ``allow_array_like``.
    """
    if isinstance(value, np.matrix):
        warnings.warn(
            f"{name} should not be a np.matrix, use np.ndarray instead.",
            ImplicitModificationWarning,
            stacklevel=4,
        )
        return np.asarray(value)
    if sparse.issparse(value):
        if value.format not in ("csr", "csc"):
            kind = "arrays" if isinstance(value, sparse.sparray) else "matrices"
            raise ValueError(f"Only CSR and CSC {kind} are supported.")
        return value
    if isinstance(value, pd.DataFrame):
        if allow_df:
            return value
        raise ValueError(f"{name} needs to be an array, not a DataFrame.")
    if _is_supported_array(value):
        if name == "X" and is_awkward(value):
            raise ValueError("X cannot be an awkward array (awkward arrays belong in obsm, varm or uns).")
        return value
    if allow_array_like and isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise ValueError(
        f"{name} needs to be of one of numpy.ndarray, scipy CSR/CSC sparse, h5py/zarr dataset, "
        f"dask array, awkward array or pandas.DataFrame, not {type(value)}."
    )


class AlignedMapping(DataMapping):
    """Base class: a mapping whose values are aligned to one or two axes of an AnnData."""

    attrname: ClassVar[str]
    axes: tuple[int, ...]

    def __init__(self, parent: AnnData, data: Mapping | None = None) -> None:
        self._parent = parent
        self._data: dict[Any, Any] = {}
        if data is not None:
            self.update(dict(data))

    # -- validation -------------------------------------------------------------------
    def _expected_shape(self) -> tuple[int, ...]:
        return tuple(self._parent.shape[ax] for ax in self.axes)

    def _validate_key(self, key: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"Keys of {self.attrname} must be strings, got {key!r}.")
        if "/" in key:
            raise ValueError(f"Forward slashes are not allowed in keys in {self.attrname}")

    def _validate_value(self, key: Any, value: Any) -> Any:
        value = coerce_array(value, name=f"{self.attrname.capitalize()} {key!r}", allow_df=self._allow_df)
        value = self._reshape(value)
        expected = self._expected_shape()
        shape = element_shape(value)
        if shape[: len(expected)] != expected:
            dims = tuple(_DIM_NAMES[ax] for ax in self.axes)
            raise ValueError(
                f"Value passed for key {key!r} is of incorrect shape. Values of {self.attrname} must "
                f"match dimensions {dims} of parent. Value had shape {shape[: len(expected)] or shape} "
                f"while it should have had {expected}."
            )
        if isinstance(value, pd.DataFrame):
            value = self._check_frame_index(value)
        return value

    _allow_df: ClassVar[bool] = False

    def _reshape(self, value: Any) -> Any:
        return value

    def _check_frame_index(self, value: pd.DataFrame) -> pd.DataFrame:
        return value

    # -- mapping protocol -------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._validate_key(key)
        self._data[key] = self._validate_value(key, value)

    def __delitem__(self, key: Any) -> None:
        del self._data[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__} with keys: {', '.join(map(repr, self.keys()))}"

    def copy(self) -> dict:
        """A plain ``dict`` of deep copies of the values."""
        return {k: copy_element(v) for k, v in self._data.items()}

    def as_dict(self) -> dict:
        """A plain ``dict`` of the values (not copied)."""
        return dict(self._data)

    @property
    def parent(self) -> AnnData:
        """The AnnData this mapping belongs to."""
        return self._parent

    is_view = False  # as anndata: whether this is the mapping of a view

    @property
    def dim(self) -> str:
        """``"obs"`` or ``"var"``: the axis the values are aligned to (obsm/varm/obsp/varp)."""
        if len(set(self.axes)) != 1:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'dim'")
        return _DIM_NAMES[self.axes[0]]

    def _view(self, view_parent: AnnData, oidx: Index1D, vidx: Index1D) -> AlignedView:
        return AlignedView(self, view_parent, oidx, vidx)

    def _subset_value(self, value: Any, oidx: Index1D, vidx: Index1D) -> Any:
        raise NotImplementedError


class AxisArrays(AlignedMapping):
    """``obsm`` (axis 0) or ``varm`` (axis 1): values whose first dimension is n_obs / n_vars."""

    _allow_df = True

    def __init__(self, parent: AnnData, axis: int, data: Mapping | None = None) -> None:
        self.axes = (axis,)
        self.attrname = ("obsm", "varm")[axis]
        super().__init__(parent, data)

    def _reshape(self, value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            return value.reshape(-1, 1)
        return value

    @property
    def dim_names(self) -> pd.Index:
        """``obs_names`` or ``var_names`` of the parent."""
        return self._parent.obs_names if self.axes[0] == 0 else self._parent.var_names

    def to_df(self) -> pd.DataFrame:
        """The values side by side as one DataFrame (column ``f"{key}{i + 1}"`` for column
        ``i`` of value ``key``), indexed by the parent's names."""
        return axis_frame(self, self.dim_names)

    def _check_frame_index(self, value: pd.DataFrame) -> pd.DataFrame:
        names = self.dim_names
        if not value.index.equals(names):
            try:
                pd.testing.assert_index_equal(value.index, names)
                detail = "Index are different"
            except AssertionError as err:
                detail = str(err)
            dim = _DIM_NAMES[self.axes[0]]
            raise ValueError(f"value.index does not match parent’s {dim} names:\n{detail}")
        if value.index.name != names.name:
            value = value.copy(deep=False)
            value.index = names
        return value

    def _subset_value(self, value: Any, oidx: Index1D, vidx: Index1D) -> Any:
        return subset_axis(value, oidx if self.axes[0] == 0 else vidx, 0)

    def _sync_index(self, names: pd.Index) -> None:
        """Give DataFrame values the new obs/var names (called by the names setter)."""
        for key, value in self._data.items():
            if isinstance(value, pd.DataFrame):
                value = value.copy(deep=False)
                value.index = names
                self._data[key] = value


class PairwiseArrays(AlignedMapping):
    """``obsp`` (axis 0) or ``varp`` (axis 1): square n_obs×n_obs / n_vars×n_vars values."""

    def __init__(self, parent: AnnData, axis: int, data: Mapping | None = None) -> None:
        self.axes = (axis, axis)
        self.attrname = ("obsp", "varp")[axis]
        super().__init__(parent, data)

    def _subset_value(self, value: Any, oidx: Index1D, vidx: Index1D) -> Any:
        idx = oidx if self.axes[0] == 0 else vidx
        return subset_2d(value, idx, idx)


class Layers(AlignedMapping):
    """``layers``: values with the shape of X.

    As in anndata 0.13, ``X`` is ``layers[None]``: while X is set, ``None`` is the first key
    (iteration, ``keys()``, ``len``, ``in``), ``del layers[None]`` removes X, and ``clear()``
    keeps X unless ``keep_x=False``. X itself stays stored on the AnnData (``_X``); ``_data``
    and the internal ``copy()``/``as_dict()`` hold the named layers only.
    """

    attrname = "layers"
    axes = (0, 1)

    def _validate_value(self, key: Any, value: Any) -> Any:
        if isinstance(value, pd.DataFrame):  # as anndata: a layer keeps the values only
            value = value.to_numpy()
        value = coerce_array(value, name=f"Layer {key!r}")
        if (msg := non_2d_message(value, name=f"Layer {key!r}")) is not None:
            warnings.warn(msg, UserWarning, stacklevel=4)
        return super()._validate_value(key, value)

    def _has_x(self) -> bool:
        return self._parent._has_X()

    def __getitem__(self, key: Any) -> Any:
        if key is None:
            if not self._has_x():
                raise KeyError(None)
            return self._parent.X
        return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        if key is None:
            self._parent.X = value
            return
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        if key is None:
            if not self._has_x():
                raise KeyError(None)
            self._parent.X = None
            return
        super().__delitem__(key)

    def __iter__(self) -> Iterator:
        if self._has_x():
            yield None
        yield from self._data

    def __len__(self) -> int:
        return len(self._data) + self._has_x()

    def __contains__(self, key: object) -> bool:
        return self._has_x() if key is None else key in self._data

    def __bool__(self) -> bool:
        return bool(self._data)

    def clear(self, *, keep_x: bool | None = None) -> None:
        """Remove all layers; ``keep_x`` says whether ``X`` (the ``None`` key) goes too.

        The default keeps X and warns (FutureWarning) like anndata 0.13.
        """
        if keep_x is None:
            warnings.warn(_CLEAR_KEEPS_X, FutureWarning, stacklevel=2)
            keep_x = True
        for key in [k for k in self if not (keep_x and k is None)]:
            del self[key]

    def _subset_value(self, value: Any, oidx: Index1D, vidx: Index1D) -> Any:
        return subset_2d(value, oidx, vidx)


_CLEAR_KEEPS_X = (
    "`.layers.clear()` currently keeps `.X` (stored under the `None` key), but a future release may "
    "drop it. Pass `keep_x=True` to keep `.X` or `keep_x=False` to drop it and silence this warning."
)


def non_2d_message(value: Any, *, name: str) -> str | None:
    """The UserWarning text for an X or layer of more than two dimensions (else None)."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) <= 2:
        return None
    return (
        f"{name} must be 2-dimensional, but got an array with shape {tuple(shape)} (ndim={len(shape)}). "
        "Storing higher-dimensional arrays in `X` or `layers` violates the AnnData specification, and "
        "cannot be written to disk."
    )


class AlignedView(MutableMapping):
    """The view of an aligned mapping in ``adata[idx]``: values subset on access.

    Setting or deleting a key turns the view AnnData into an actual one (with an
    ImplicitModificationWarning) and then applies the change.
    """

    def __init__(self, parent_mapping: AlignedMapping, view_parent: AnnData, oidx: Index1D, vidx: Index1D) -> None:
        self._parent_mapping = parent_mapping
        self._view_parent = view_parent
        self._oidx = oidx
        self._vidx = vidx

    @property
    def attrname(self) -> str:
        return self._parent_mapping.attrname

    @property
    def parent(self) -> AnnData:
        """The view AnnData this mapping belongs to."""
        return self._view_parent

    is_view = True

    @property
    def parent_mapping(self) -> AlignedMapping:
        """The mapping of the AnnData this is a view of."""
        return self._parent_mapping

    @property
    def axes(self) -> tuple[int, ...]:
        """The axes of the parent the values are aligned to."""
        return self._parent_mapping.axes

    @property
    def dim(self) -> str:
        """``"obs"`` or ``"var"`` (see :attr:`AlignedMapping.dim`)."""
        return self._parent_mapping.dim

    @property
    def subset_idx(self) -> tuple:
        """The normalised indexers of the view, one per aligned axis."""
        return tuple(self._oidx if axis == 0 else self._vidx for axis in self.axes)

    @property
    def dim_names(self) -> pd.Index:
        """The view's ``obs_names`` or ``var_names`` (obsm/varm)."""
        if not isinstance(self._parent_mapping, AxisArrays):
            raise AttributeError(f"{type(self).__name__!r} of {self.attrname} has no attribute 'dim_names'")
        return self._view_parent.obs_names if self.axes[0] == 0 else self._view_parent.var_names

    def to_df(self) -> pd.DataFrame:
        """The subset values as one DataFrame (see :meth:`AxisArrays.to_df`)."""
        return axis_frame(self, self.dim_names)

    def _is_layers(self) -> bool:
        return isinstance(self._parent_mapping, Layers)

    def _has_x(self) -> bool:
        return self._is_layers() and self._view_parent._has_X()

    def __getitem__(self, key: Any) -> Any:
        if key is None and self._is_layers():
            if not self._has_x():
                raise KeyError(None)
            return self._view_parent.X
        value = self._parent_mapping._data[key]
        sub = self._parent_mapping._subset_value(value, self._oidx, self._vidx)
        if isinstance(sub, pd.DataFrame) and settings.remove_unused_categories:
            sub = drop_unused_categories(value, sub, {})[0]  # as anndata does for obsm frames
        return as_view(sub, ElementRef(self._view_parent, self.attrname, (key,)))

    def _modify(self, verb: str, key: Any) -> AnnData:
        warnings.warn(
            f"{verb} element `.{self.attrname}[{key!r}]` of view, initializing view as actual.",
            ImplicitModificationWarning,
            stacklevel=3,
        )
        return self._view_parent._copy_in_memory()

    def __setitem__(self, key: Any, value: Any) -> None:
        if key is None and self._is_layers():
            self._view_parent.X = value  # copy-on-write with the X message
            return
        new = self._modify("Setting", key)
        getattr(new, self.attrname)[key] = value
        self._view_parent._init_as_actual_from(new)

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        new = self._modify("Removing", key)
        del getattr(new, self.attrname)[key]
        self._view_parent._init_as_actual_from(new)

    def __iter__(self) -> Iterator:
        if self._has_x():
            yield None
        yield from self._parent_mapping._data

    def __len__(self) -> int:
        return len(self._parent_mapping._data) + self._has_x()

    def __contains__(self, key: object) -> bool:
        if key is None and self._is_layers():
            return self._has_x()
        return key in self._parent_mapping._data

    def __bool__(self) -> bool:
        return bool(self._parent_mapping._data)

    def __repr__(self) -> str:
        return f"{type(self._parent_mapping).__name__}View with keys: {', '.join(map(repr, self.keys()))}"

    def copy(self) -> dict:
        """A plain ``dict`` of detached copies of the subset (named) values."""
        return {k: copy_element(self[k]) for k in self._parent_mapping._data}

    def as_dict(self) -> dict:
        """A plain ``dict`` of the (view) values of the named keys."""
        return {k: self[k] for k in self._parent_mapping._data}


def new_mapping(attr: str, parent: Any, data: Mapping | None = None, *, validate: bool = True) -> AlignedMapping:
    """An empty or filled (validated unless ``validate=False``) mapping for ``attr`` of ``parent``."""
    factory = {
        "obsm": lambda: AxisArrays(parent, 0),
        "varm": lambda: AxisArrays(parent, 1),
        "obsp": lambda: PairwiseArrays(parent, 0),
        "varp": lambda: PairwiseArrays(parent, 1),
        "layers": lambda: Layers(parent),
    }[attr]
    mapping = factory()
    if data is not None:
        if validate:
            mapping.update({k: to_actual(v) for k, v in dict(data).items()})
        else:
            mapping._data = dict(data)
    return mapping


def check_X(X: Any) -> Any:
    """Validate a data matrix given to the AnnData constructor."""
    X = coerce_array(X, name="X", allow_array_like=False)
    if len(X.shape) < 2:  # anndata 0.13 fails unpacking ``n_obs, n_vars = X.shape[:2]``
        raise ValueError(f"not enough values to unpack (expected 2, got {len(X.shape)})")
    if (msg := non_2d_message(X, name="X")) is not None:
        warnings.warn(msg, UserWarning, stacklevel=3)
    return X
