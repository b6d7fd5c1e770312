"""View classes and copy-on-write.

An element of a view ``adata[idx]`` is subset from its parent when accessed and wrapped in a
view class that *subclasses* the element's own type (``ArrayView(np.ndarray)``,
``SparseCSRMatrixView(csr_matrix)``, ``DataFrameView(pd.DataFrame)``, ...), so that code
dispatching on types (the I/O registry) handles views through the MRO.

Each view element remembers an :class:`ElementRef` -- the view AnnData, the attribute name and
the keys leading to the element. Modifying the element turns the view into an actual AnnData
(a copy) with an :class:`~annio.errors.ImplicitModificationWarning`, then applies the
modification to the copy.
"""

from __future__ import annotations

import copy as _copy
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import singledispatch
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from annio._core.kinds import DataMapping, is_awkward, is_dask
from annio._core.scheduler import dask_scheduler as _scheduler
from annio.errors import ImplicitModificationWarning

if TYPE_CHECKING:
    from annio._core.anndata import AnnData

__all__ = [
    "ElementRef",
    "view_update",
    "as_view",
    "ArrayView",
    "SparseCSRMatrixView",
    "SparseCSCMatrixView",
    "SparseCSRArrayView",
    "SparseCSCArrayView",
    "DataFrameView",
    "DictView",
    "to_actual",
    "drop_unused_categories",
    "copy_element",
    "is_awkward",
    "awkward_view_class",
]


class ElementRef(NamedTuple):
    """Where a view element lives: ``getattr(parent, attrname)[keys[0]][keys[1]]...``."""

    parent: AnnData
    attrname: str
    keys: tuple = ()

    def child(self, key: Any) -> ElementRef:
        return ElementRef(self.parent, self.attrname, (*self.keys, key))


def actualize_view(adata: AnnData, attrname: str, *, stacklevel: int = 4) -> AnnData:
    """Warn that ``adata`` (a view) becomes actual and return the actual copy to fill in."""
    warnings.warn(
        f"Trying to modify attribute `.{attrname}` of view, initializing view as actual.",
        ImplicitModificationWarning,
        stacklevel=stacklevel,
    )
    return adata._copy_in_memory()


@contextmanager
def view_update(ref: ElementRef) -> Iterator[Any]:
    """Copy-on-write: yield the element of an actual copy of ``ref.parent`` to modify in place.

    The view becomes actual only when the modification succeeded.
    """
    new = actualize_view(ref.parent, ref.attrname, stacklevel=5)
    container = getattr(new, ref.attrname)
    for key in ref.keys:
        container = container[key]
    yield container
    ref.parent._init_as_actual_from(new)


class _ViewMixin:
    _view_args: ElementRef | None = None

    def __setitem__(self, idx: Any, value: Any) -> None:
        if self._view_args is None:
            super().__setitem__(idx, value)  # type: ignore[misc]
            return
        with view_update(self._view_args) as container:
            container[idx] = value

    def __delitem__(self, idx: Any) -> None:
        if self._view_args is None:
            super().__delitem__(idx)  # type: ignore[misc]
            return
        with view_update(self._view_args) as container:
            del container[idx]


class ArrayView(_ViewMixin, np.ndarray):
    """A numpy array subset from an AnnData element; writing to it copies the view."""

    def __new__(cls, input_array: Any, view_args: ElementRef | None = None) -> ArrayView:
        arr = np.asarray(input_array).view(cls)
        arr._view_args = view_args
        return arr

    def __array_finalize__(self, obj: Any) -> None:
        # Arrays derived from a view (slices, reductions) are not tied to the AnnData.
        self._view_args = None

    def __array_wrap__(self, out_arr: np.ndarray, context: Any = None, return_scalar: bool = False) -> Any:
        out = out_arr.view(np.ndarray)
        return out[()] if return_scalar else out

    def __reduce__(self) -> Any:
        return np.asarray(self).copy().__reduce__()

    def copy(self, order: str = "C") -> np.ndarray:  # type: ignore[override]
        """A plain ``numpy.ndarray`` copy."""
        return np.array(self, order=order, copy=True)

    def toarray(self) -> np.ndarray:
        """A plain ``numpy.ndarray`` copy (sparse-compatible spelling)."""
        return self.copy()


class _SparseViewMixin(_ViewMixin):
    _base: type

    def copy(self) -> Any:
        """A copy of the base scipy type, detached from the AnnData."""
        return self._base(
            (self.data.copy(), self.indices.copy(), self.indptr.copy()), shape=self.shape
        )

    def __reduce__(self) -> Any:
        return self._base(self).__reduce__()


class SparseCSRMatrixView(_SparseViewMixin, sparse.csr_matrix):
    _base = sparse.csr_matrix


class SparseCSCMatrixView(_SparseViewMixin, sparse.csc_matrix):
    _base = sparse.csc_matrix


class SparseCSRArrayView(_SparseViewMixin, sparse.csr_array):
    _base = sparse.csr_array


class SparseCSCArrayView(_SparseViewMixin, sparse.csc_array):
    _base = sparse.csc_array


_SPARSE_VIEWS: dict[type, type] = {
    sparse.csr_matrix: SparseCSRMatrixView,
    sparse.csc_matrix: SparseCSCMatrixView,
    sparse.csr_array: SparseCSRArrayView,
    sparse.csc_array: SparseCSCArrayView,
}


def _inplace_method(name: str) -> Any:
    def method(self: DataFrameView, *args: Any, inplace: bool = False, **kwargs: Any) -> Any:
        if not inplace or self._view_args is None:
            return getattr(pd.DataFrame, name)(self, *args, inplace=inplace, **kwargs)
        with view_update(self._view_args) as df:
            return getattr(df, name)(*args, inplace=True, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``pandas.DataFrame.{name}``; ``inplace=True`` on a view copies the AnnData first."
    return method


class DataFrameView(_ViewMixin, pd.DataFrame):
    """A DataFrame subset from an AnnData element (obs, var, obsm frames).

    Column assignment, deletion and ``inplace=True`` methods copy the view first. Derived
    frames (``copy()``, ``drop()``, ...) are plain DataFrames.
    """

    _metadata = ["_view_args"]

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def pop(self, item: Any) -> Any:  # type: ignore[override]
        if self._view_args is None:
            return pd.DataFrame.pop(self, item)
        with view_update(self._view_args) as df:
            return df.pop(item)

    def insert(self, *args: Any, **kwargs: Any) -> None:
        if self._view_args is None:
            return pd.DataFrame.insert(self, *args, **kwargs)
        with view_update(self._view_args) as df:
            df.insert(*args, **kwargs)

    drop = _inplace_method("drop")
    rename = _inplace_method("rename")
    set_index = _inplace_method("set_index")
    reset_index = _inplace_method("reset_index")
    fillna = _inplace_method("fillna")
    replace = _inplace_method("replace")
    sort_values = _inplace_method("sort_values")
    sort_index = _inplace_method("sort_index")


def _make_dataframe_view(df: pd.DataFrame, ref: ElementRef | None) -> DataFrameView:
    view = DataFrameView(df)
    object.__setattr__(view, "_view_args", ref)
    return view


class DictView(DataMapping):
    """A read-mostly view of ``uns`` (or a nested dict in it); writing copies the AnnData.

    Nested dicts are returned as ``DictView`` and arrays as ``ArrayView``, so modifications at
    any depth are copy-on-write. ``dict(view)`` gives the (unwrapped) values.
    """

    def __init__(self, data: Mapping, view_args: ElementRef | None = None) -> None:
        self._data = data
        self._view_args = view_args

    def __getitem__(self, key: Any) -> Any:
        value = self._data[key]
        if self._view_args is None:
            return value
        return as_view(value, self._view_args.child(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._view_args is None:
            self._data[key] = value  # type: ignore[index]
            return
        with view_update(self._view_args) as d:
            d[key] = value

    def __delitem__(self, key: Any) -> None:
        if self._view_args is None:
            del self._data[key]  # type: ignore[attr-defined]
            return
        if key not in self._data:
            raise KeyError(key)
        with view_update(self._view_args) as d:
            del d[key]

    def __repr__(self) -> str:
        return f"DictView({dict(self._data)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DictView):
            other = other._data
        return self._data == other if isinstance(other, Mapping) else NotImplemented

    def copy(self) -> dict:
        """A deep copy as a plain ``dict``."""
        return _copy.deepcopy(to_actual(self))


_AWKWARD_VIEW: list[type] = []


def awkward_view_class() -> type:
    """The view class of awkward arrays, made on first use (awkward is optional).

    awkward resets an array's class from its layout parameters whenever the layout changes;
    the view class keeps itself instead, so field assignment still copies the view.
    """
    if not _AWKWARD_VIEW:
        import awkward as ak

        class AwkwardArrayView(_ViewMixin, ak.Array):
            """An awkward array subset from an AnnData element; assigning a field copies the view."""

            def _update_class(self, restore: Any = None) -> None:
                super()._update_class(restore)
                self.__class__ = AwkwardArrayView

            def __reduce__(self) -> Any:
                return ak.Array(self.layout, behavior=self.behavior).__reduce__()

        _AWKWARD_VIEW.append(AwkwardArrayView)
    return _AWKWARD_VIEW[0]


def _awkward_as_view(obj: Any, ref: ElementRef | None) -> Any:
    import awkward as ak

    view = ak.Array(obj.layout, behavior=obj.behavior)
    view.__class__ = awkward_view_class()
    view._view_args = ref
    return view


@singledispatch
def as_view(obj: Any, ref: ElementRef | None) -> Any:
    """Wrap an element subset from an AnnData in its view class (unknown types pass through)."""
    if is_awkward(obj):
        return _awkward_as_view(obj, ref)
    return obj


@as_view.register(np.ndarray)
def _(obj: np.ndarray, ref: ElementRef | None) -> Any:
    if isinstance(obj, np.ma.MaskedArray):
        return obj
    return ArrayView(obj, ref)


@as_view.register(pd.DataFrame)
def _(obj: pd.DataFrame, ref: ElementRef | None) -> DataFrameView:
    return _make_dataframe_view(obj, ref)


@as_view.register(dict)
def _(obj: dict, ref: ElementRef | None) -> DictView:
    return DictView(obj, ref)


@as_view.register(DictView)
def _(obj: DictView, ref: ElementRef | None) -> DictView:
    return DictView(obj._data, ref)


def _sparse_as_view(obj: Any, ref: ElementRef | None) -> Any:
    for base, view_cls in _SPARSE_VIEWS.items():
        if isinstance(obj, base):
            view = view_cls(obj)
            view._view_args = ref
            return view
    return obj


for _base in _SPARSE_VIEWS:
    as_view.register(_base)(_sparse_as_view)


def drop_unused_categories(df_full: Any, df_sub: Any, uns: dict) -> tuple[Any, dict]:
    """Remove unused categories from the categorical columns of a subset frame.

    ``uns[f"{col}_colors"]`` is subset to the remaining categories (or left out when its length
    does not match the categories). Neither ``df_sub``'s original nor ``uns`` is mutated.
    """
    if not isinstance(df_sub, pd.DataFrame):
        return df_sub, uns
    positions = [i for i, dt in enumerate(df_sub.dtypes) if isinstance(dt, pd.CategoricalDtype)]
    if not positions:
        return df_sub, uns
    df_sub = df_sub.copy(deep=False)
    new_uns = uns
    for i in positions:
        key = df_sub.columns[i]
        full_categories = df_full.iloc[:, i].cat.categories
        column = df_sub.iloc[:, i].cat.remove_unused_categories()
        if len(column.cat.categories) != len(full_categories):
            df_sub.isetitem(i, column)
        color_key = f"{key}_colors"
        if color_key not in uns:
            continue
        if new_uns is uns:
            new_uns = dict(uns)
        colors = uns[color_key]
        if len(colors) != len(full_categories):
            del new_uns[color_key]
        elif len(column.cat.categories) != len(full_categories):
            new_uns[color_key] = np.asarray(colors)[full_categories.isin(column.cat.categories)]
    return df_sub, new_uns


def to_actual(obj: Any) -> Any:
    """Strip view classes: the base-type object (sharing memory where possible)."""
    if isinstance(obj, ArrayView):
        return obj.view(np.ndarray)
    if isinstance(obj, _SparseViewMixin):
        return obj._base(obj)
    if isinstance(obj, DataFrameView):
        return pd.DataFrame(obj)
    if isinstance(obj, DictView):
        return {k: to_actual(v) for k, v in obj._data.items()}
    if _AWKWARD_VIEW and isinstance(obj, _AWKWARD_VIEW[0]):
        import awkward as ak

        return ak.Array(obj.layout, behavior=obj.behavior)
    return obj


def _materialize_awkward(obj: Any) -> Any:
    import awkward as ak

    return ak.materialize(obj)  # lazily read arrays hold virtual buffers; load them


def materialize(obj: Any) -> Any:
    """``obj`` in memory: dask arrays computed, lazy frames loaded, recursively in dicts;
    in-memory values are returned as they are (no copy)."""
    if obj is None:
        return None
    if hasattr(obj, "_annio_lazy_frame"):
        return obj.to_memory()
    if isinstance(obj, (DictView, dict)):
        data = obj._data if isinstance(obj, DictView) else obj
        return {k: materialize(v) for k, v in data.items()}
    if _is_dask(obj):
        return obj.compute(**_scheduler())
    if is_awkward(obj):
        return _materialize_awkward(obj)
    return obj


def _is_dask(obj: Any) -> bool:
    """A dask object that can be computed."""
    return is_dask(obj) and hasattr(obj, "compute")


def materialize_many(values: list[Any]) -> list[Any]:
    """:func:`materialize` each value, computing all dask arrays among them (also inside
    dicts) in one pass, so their reads and decompression run concurrently."""
    found: dict[int, Any] = {}

    def scan(obj: Any) -> None:
        if _is_dask(obj):
            found[id(obj)] = obj
        elif isinstance(obj, (DictView, dict)):
            for v in (obj._data if isinstance(obj, DictView) else obj).values():
                scan(v)

    for value in values:
        scan(value)
    computed: dict[int, Any] = {}
    if found:
        import dask

        computed = dict(zip(found, dask.compute(*found.values(), **_scheduler()), strict=True))

    def rebuild(obj: Any) -> Any:
        if id(obj) in computed and _is_dask(obj):
            return computed[id(obj)]
        if isinstance(obj, (DictView, dict)):
            return {k: rebuild(v) for k, v in (obj._data if isinstance(obj, DictView) else obj).items()}
        return materialize(obj)

    return [rebuild(v) for v in values]


def copy_element(obj: Any) -> Any:
    """A deep, detached copy of any element (views become their base type)."""
    if obj is None:
        return None
    if isinstance(obj, np.ndarray):
        return np.array(obj, copy=True, subok=isinstance(obj, np.ma.MaskedArray))
    if isinstance(obj, _SparseViewMixin):
        return obj.copy()
    if sparse.issparse(obj):
        return obj.copy()
    if isinstance(obj, pd.DataFrame):
        return pd.DataFrame(obj).copy(deep=True)
    if isinstance(obj, (DictView, dict)):
        data = obj._data if isinstance(obj, DictView) else obj
        return {k: copy_element(v) for k, v in data.items()}
    if is_awkward(obj):
        import awkward as ak

        return ak.copy(ak.materialize(to_actual(obj)))
    module = type(obj).__module__
    if hasattr(obj, "to_memory") and not module.startswith(("dask", "xarray")):
        return obj.to_memory()  # backed arrays of the I/O layer
    if module.startswith("dask"):
        return obj.copy()
    if module.startswith(("h5py", "zarr")):
        return obj[()] if getattr(obj, "ndim", 1) == 0 else obj[...]
    if hasattr(obj, "_annio_lazy_frame"):
        return obj
    try:
        return _copy.deepcopy(obj)
    except TypeError:  # pragma: no cover - exotic objects
        return obj
