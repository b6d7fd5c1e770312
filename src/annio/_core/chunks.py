"""Row chunks of X, renaming categories, and the text/loom exports (services of the I/O
layer). Mixed into :class:`annio._core.anndata.AnnData`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core.services import service

if TYPE_CHECKING:
    from annio._core.anndata import AnnData

__all__ = ["ChunksMixin"]

_DEFAULT_CHUNK_ROWS = 5000


def _rows(X: Any, start: int, stop: int) -> Any:
    block = X[start:stop]
    if type(block).__module__.startswith(("h5py", "zarr")):
        block = np.asarray(block)
    return block


class ChunksMixin:
    """Chunked access to X and category renaming (see the methods)."""

    def chunked_X(self: AnnData, chunk_size: int | None = None) -> Iterator[tuple[Any, int, int]]:
        """Iterate over X in row blocks.

        Parameters
        ----------
        chunk_size
            Rows per block (default 5000).

        Yields
        ------
        ``(block, start, end)``: the rows ``start:end`` of X, in X's own array type (backed
        X is read block by block).
        """
        if chunk_size is None:
            chunk_size = _DEFAULT_CHUNK_ROWS
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        X = self.X
        for start in range(0, self.n_obs, chunk_size):
            stop = min(start + chunk_size, self.n_obs)
            yield _rows(X, start, stop), start, stop

    def chunk_X(self: AnnData, select: int | Sequence[int] | np.ndarray = 1000, *, replace: bool = True) -> np.ndarray:
        """A dense block of rows of X, random or chosen.

        Parameters
        ----------
        select
            An int: that many random rows (``numpy.random.choice``); a sequence of ints:
            these rows.
        replace
            For an int ``select``: sample with replacement.
        """
        if isinstance(select, int | np.integer):
            select = int(select)
            n = self.n_obs if select > self.n_obs and not replace else select
            choice = np.random.choice(self.n_obs, n, replace=replace)
        elif isinstance(select, Sequence | np.ndarray) and not isinstance(select, str):
            choice = np.asarray(select)
        else:
            raise ValueError("select should be int or array")
        X = self.X
        if type(X).__module__.startswith(("h5py", "zarr")) or hasattr(X, "to_memory"):
            order = np.argsort(choice, kind="stable")
            block = X[np.sort(choice)]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            out = np.empty_like(block)
            out[order] = block
            return out
        block = X[choice]
        return block.toarray() if sp.issparse(block) else np.asarray(block)

    def rename_categories(self: AnnData, key: str, categories: Sequence[Any]) -> None:
        """Rename the categories of ``obs[key]`` or ``var[key]``, and in ``uns``.

        Results in ``uns`` computed with ``groupby=key`` (structured arrays whose fields are
        the old categories, e.g. ``rank_genes_groups``) get their fields renamed too.

        Parameters
        ----------
        key
            A categorical column of obs or var.
        categories
            The new categories, as many as the old ones.
        """
        if isinstance(categories, pd.Categorical | pd.Index | pd.Series | np.ndarray):
            categories = list(categories)
        if not isinstance(categories, Sequence) or isinstance(categories, str):
            raise ValueError("Only list-like `categories` is supported.")
        if key in self.obs:
            frame = self.obs
        elif key in self.var:
            frame = self.var
        else:
            raise ValueError(f"{key} is neither in `.obs` nor in `.var`.")
        old = list(frame[key].cat.categories)
        if len(old) != len(categories):
            raise ValueError(f"{key} has {len(old)} categories, got {len(categories)} new ones")
        frame[key] = frame[key].cat.rename_categories(list(categories))
        renames = {str(o): str(n) for o, n in zip(old, categories, strict=True)}
        for name, entry in self.uns.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
                continue
            if entry["params"].get("groupby") != key:
                continue
            for field, value in list(entry.items()):
                if not isinstance(value, np.ndarray) or value.dtype.names is None:
                    continue
                if set(value.dtype.names) != set(renames):
                    warnings.warn(f"Omitting {name}/{field} as old categories do not match.", stacklevel=2)
                    continue
                value.dtype.names = [renames[f] for f in value.dtype.names]

    # -- exports (services of annio.io) --------------------------------------------------
    def write_csvs(self: AnnData, dirname: Any, *, skip_data: bool = True, sep: str = ",") -> None:
        """Write obs, var, obsm, varm, uns (and X unless ``skip_data``) to ``.csv`` files in
        ``dirname`` (see :func:`annio.io.write_csvs`). The AnnData cannot be recovered from them."""
        service("write_csvs")(dirname, self, skip_data=skip_data, sep=sep)

    def write_loom(self: AnnData, filename: Any, *, write_obsm_varm: bool = False) -> None:
        """Write a ``.loom`` file (see :func:`annio.io.write_loom`)."""
        service("write_loom")(filename, self, write_obsm_varm=write_obsm_varm)
