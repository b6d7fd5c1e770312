"""Helpers for the lazy tests: a rich AnnData written to h5ad, zarr v2 and sharded zarr v3
with small chunks (so that subsets touch few of many chunks), and a zarr store wrapper that
records every read."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from zarr.storage import LocalStore, WrapperStore

import annio

FORMATS = ["h5ad", "zarr2", "zarr3-sharded"]
SMALL_LAYOUT = {"chunk_target_bytes": 4096, "shard_target_bytes": 65536}


def make_adata(n_obs: int = 600, n_vars: int = 40, seed: int = 0) -> annio.AnnData:
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, n_vars, density=0.05, format="csr", dtype=np.float32, random_state=seed)
    cats = pd.Categorical(rng.choice(["b", "a", "c"], n_obs), categories=["c", "b", "a", "unused"])
    ints = pd.array(rng.integers(0, 100, n_obs), dtype="Int32")
    ints[::7] = pd.NA
    bools = pd.array(rng.random(n_obs) > 0.5, dtype="boolean")
    bools[::5] = pd.NA
    strs = pd.array([f"s{i % 13}" for i in range(n_obs)], dtype=pd.StringDtype())
    strs[::11] = pd.NA
    obs = pd.DataFrame(
        {
            "zeta": np.arange(n_obs, dtype=np.int64),
            "alpha": rng.random(n_obs),
            "cell_type": cats,
            "flag": rng.random(n_obs) > 0.3,
            "count": ints,
            "ok": bools,
            "label": strs,
            "name": np.array([f"cell-{i}" for i in range(n_obs)], dtype=object),
        },
        index=pd.Index([f"c{i}" for i in range(n_obs)], name="cell_id"),
    )
    var = pd.DataFrame(
        {"gene_kind": pd.Categorical(rng.choice(["x", "y"], n_vars)), "mean": rng.random(n_vars)},
        index=[f"g{i}" for i in range(n_vars)],
    )
    return annio.AnnData(
        X=X,
        obs=obs,
        var=var,
        layers={"dense": rng.random((n_obs, n_vars)).astype(np.float32)},
        obsm={"X_pca": rng.random((n_obs, 5))},
        uns={"note": "hello", "nested": {"v": np.arange(3)}},
    )


def write(adata: annio.AnnData, path: Path, fmt: str, **kwargs: Any) -> Path:
    with annio.settings.override(**SMALL_LAYOUT, auto_shard_zarr_v3=fmt == "zarr3-sharded"):
        if fmt == "h5ad":
            path = path.with_suffix(".h5ad")
            annio.io.write_h5ad(path, adata, compression="gzip", **kwargs)
        else:
            path = path.with_suffix(".zarr")
            annio.io.write_zarr(path, adata, zarr_format=2 if fmt == "zarr2" else 3, **kwargs)
    return path


class CountingStore(WrapperStore):
    """Wraps a store and records ``(key, byte_range)`` of every read."""

    def __init__(self, store: Any, log: list | None = None) -> None:
        super().__init__(store)
        self.log: list[tuple[str, Any]] = [] if log is None else log
        self._lock = threading.Lock()

    def _with_store(self, store: Any) -> CountingStore:
        return type(self)(store, self.log)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        with self._lock:
            self.log.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list:
        key_ranges = list(key_ranges)
        with self._lock:
            self.log.extend(key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)

    def keys_read(self) -> list[str]:
        return [k for k, _ in self.log]

    def reset(self) -> None:
        self.log.clear()


def counting_store(path: Path) -> CountingStore:
    return CountingStore(LocalStore(path, read_only=True))


def open_group(fmt: str, path: Path) -> Any:
    """An opened h5py File or zarr Group for ``path``."""
    if fmt == "h5ad":
        import h5py

        return h5py.File(path, "r")
    return zarr.open_group(path, mode="r")


def read_eager(fmt: str, path: Path) -> annio.AnnData:
    return annio.io.read_h5ad(path) if fmt == "h5ad" else annio.io.read_zarr(path)
