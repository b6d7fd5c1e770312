"""What an AnnData turns into: copies, in-memory versions, its transpose, data frames and
vectors, files (a service of the I/O layer). Mixed into :class:`annio._core.anndata.AnnData`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annio._core.index import dense, get_vector
from annio._core.names import is_lazy_frame
from annio._core.raw import Raw
from annio._core.services import service
from annio._core.views import copy_element, materialize_many

if TYPE_CHECKING:
    from annio._core.anndata import AnnData

__all__ = ["ConversionMixin", "MAPPINGS", "is_anndata_object"]

MAPPINGS = ("obsm", "varm", "obsp", "varp", "layers")


def _same_path(a: Any, b: Any) -> bool:
    import os

    try:
        return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))
    except TypeError:
        return False


def _prefetching(adata: Any) -> Any:
    from contextlib import nullcontext

    from annio.errors import AnnioError

    try:
        return service("prefetch_lazy")(adata)
    except AnnioError:  # annio._lazy not imported: nothing can be lazy
        return nullcontext()


def _shallow(frame: Any) -> Any:
    return frame if is_lazy_frame(frame) else frame.copy(deep=False)


class ConversionMixin:
    """Copies and conversions of an AnnData (see the class docstrings of the methods)."""

    def copy(self, filename: Any = None) -> AnnData:
        """A full (deep) copy; views become actual objects.

        Parameters
        ----------
        filename
            For backed objects: the path of the new backing file.
        """
        if self.isbacked:
            return service("copy_backed")(self, filename)
        return self._copy_in_memory()

    def _copy_in_memory(self) -> AnnData:
        raw = self.raw
        return type(self)._from_parts(
            X=copy_element(self.X),  # reads backed X (h5py/zarr datasets, ``to_memory()`` objects)
            obs=copy_element(self._obs),
            var=copy_element(self._var),
            uns=copy_element(self._uns),
            raw=None if raw is None else raw.copy(),
            **{attr: getattr(self, attr).copy() for attr in MAPPINGS},
        )

    def to_memory(self, copy: bool = False) -> AnnData:
        """An in-memory AnnData: backed elements are read, views are materialised.

        Parameters
        ----------
        copy
            Also copy in-memory elements (otherwise they are shared with ``self``).
        """
        with _prefetching(self):  # lazy objects from remote stores: one concurrent fetch
            return self._to_memory(copy)

    def _to_memory(self, copy: bool) -> AnnData:
        if copy or self.is_view or self.isbacked:
            result = self._copy_in_memory()
        else:
            result = type(self)._from_parts(
                X=self._X, obs=_shallow(self._obs), var=_shallow(self._var), uns=dict(self._uns),
                raw=self._raw, **{attr: getattr(self, f"_{attr}").as_dict() for attr in MAPPINGS},
            )
        result._materialize()
        return result

    async def to_memory_async(self, copy: bool = False) -> AnnData:
        """:meth:`to_memory` for coroutines (``await lazy[cells].to_memory_async()``): the
        reads run off the caller's event loop."""
        import asyncio

        return await asyncio.to_thread(self.to_memory, copy)

    def _materialize(self) -> None:
        """Load every lazy element (dask arrays, lazy frames) of this object in place; all
        dask arrays are computed together."""
        mappings = [getattr(self, f"_{attr}") for attr in MAPPINGS]
        raw = self._raw
        X, obs, var, uns, *rest = materialize_many(
            [self._X, self._obs, self._var, self._uns, *(dict(m._data) for m in mappings),
             *((raw.X, raw.var, dict(raw.varm.items())) if raw is not None else ())]
        )
        self._X, self._obs, self._var, self._uns = X, obs, var, uns
        for mapping, data in zip(mappings, rest[: len(mappings)], strict=True):
            mapping._data = data
        if raw is not None:
            raw_X, raw_var, raw_varm = rest[len(mappings):]
            self._raw = Raw._from_parts(self, raw_X, raw_var, raw_varm, None)

    def transpose(self) -> AnnData:
        """The transposed object: obs↔var, obsm↔varm, obsp↔varp, X and layers transposed.

        Data is shared with ``self``; ``raw`` is dropped.
        """
        if self.isbacked:
            raise ValueError(
                "Cannot transpose an AnnData whose X is backed by a file (h5py/zarr arrays); "
                "load it with `.to_memory()` first."
            )
        if self.is_view:
            raise ValueError(
                "You’re trying to transpose a view of an `AnnData`, which is currently not implemented. "
                "Call `.copy()` before transposing."
            )
        X = self.X
        if X is not None and type(X).__module__.startswith(("h5py", "zarr")):
            X = X[...]
        return type(self)._from_parts(
            X=None if X is None else X.T,
            obs=self._var.copy(deep=False),
            var=self._obs.copy(deep=False),
            uns=self._uns,  # as anndata: the transpose shares the uns dict
            obsm=self._varm.as_dict(),
            varm=self._obsm.as_dict(),
            obsp=self._varp.as_dict(),
            varp=self._obsp.as_dict(),
            layers={k: v.T for k, v in self._layers._data.items()},
        )

    T = property(transpose, doc="Transpose (see :meth:`transpose`).")

    # -- conversions ------------------------------------------------------------------
    def to_df(self, layer: str | None = None) -> pd.DataFrame:
        """X (or a layer) as a dense DataFrame indexed by obs_names with var_names as columns."""
        X = self.X if layer is None else self.layers[layer]
        if X is None:
            raise ValueError("X is None, cannot convert to dataframe.")
        return pd.DataFrame(dense(X), index=self.obs_names, columns=self.var_names)

    def obs_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values across observations of obs column ``k`` or variable ``k`` (from X or ``layer``)."""
        return get_vector(self, k, "obs", layer)

    def var_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values across variables of var column ``k`` or observation ``k`` (from X or ``layer``)."""
        return get_vector(self, k, "var", layer)

    # -- the anndata package (a service of annio._bridge) ---------------------------
    def to_anndata(self) -> Any:
        """This object as an ``anndata.AnnData`` that shares every array buffer (no copy).

        X, layers, obsm/varm/obsp/varp, raw and the obs/var columns are the same arrays in
        both objects (the frames and uns dicts are new containers). A view gives anndata's
        view of the converted parent; a backed object an anndata backed object on the same
        file; a lazy object keeps its dask arrays and loads its obs/var frames. Needs the
        ``anndata`` package (an ImportError names it when it is missing).
        """
        return service("to_anndata")(self)

    @classmethod
    def from_anndata(cls, adata: Any) -> AnnData:
        """An annio AnnData sharing every array buffer with the ``anndata.AnnData`` ``adata``.

        Works with anndata 0.12 and 0.13 without importing anndata. A view gives annio's view
        of the converted parent (``annio.AnnData(view)`` gives an actual copy); a backed object
        an annio backed object on the same file and mode.
        """
        return service("from_anndata")(adata, cls)

    # -- writing (a service of annio.io) and dunder methods --------------------------
    def write_h5ad(self, filename: Any = None, **kwargs: Any) -> None:
        """Write to an ``.h5ad`` file (see ``annio.write_h5ad``)."""
        if filename is None:
            filename = self.filename
        service("write_h5ad")(filename, self, **kwargs)
        if self.isbacked and _same_path(filename, self.filename):
            self.file.close()  # as anndata: the backing file is closed after writing it

    write = write_h5ad

    def write_zarr(self, store: Any, **kwargs: Any) -> None:
        """Write to a zarr store (see ``annio.write_zarr``)."""
        service("write_zarr")(store, self, **kwargs)



def is_anndata_object(obj: Any, name: str = "AnnData") -> bool:
    """Whether ``obj`` is an instance of the ``anndata`` package's class ``name`` (``AnnData``
    or ``Raw``), or of a subclass of it — decided from the class's module and name, so
    ``anndata`` is never imported here."""
    return any(
        cls.__name__ == name and cls.__module__.split(".")[0] == "anndata" for cls in type(obj).__mro__
    )
