"""Helpers for the bridge tests: which buffers an element holds, and a full test object."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse


def buffers(value: Any) -> list[np.ndarray]:
    """The numpy buffers that carry the data of an element (arrays, sparse parts, the arrays
    under each DataFrame column: values, categorical codes, nullable values and mask)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [value]
    if sparse.issparse(value):
        return [value.data, value.indices, value.indptr]
    if isinstance(value, pd.DataFrame):
        out: list[np.ndarray] = []
        for col in value.columns:
            arr = value[col].array
            if isinstance(arr, pd.Categorical):
                out.append(arr.codes)
            elif hasattr(arr, "_data") and hasattr(arr, "_mask"):
                out.extend([arr._data, arr._mask])
            elif hasattr(arr, "_ndarray"):
                out.append(arr._ndarray)
            else:
                out.append(np.asarray(arr))
        return out
    return []


def assert_shares(a: Any, b: Any, path: str) -> None:
    """Every data buffer of ``a`` is shared with the corresponding one of ``b``."""
    if not (sparse.issparse(a) or isinstance(a, (np.ndarray, pd.DataFrame))):
        assert a is b, f"{path}: not the same object ({type(a).__name__})"
        return
    bufs_a, bufs_b = buffers(a), buffers(b)
    assert len(bufs_a) == len(bufs_b) > 0 or isinstance(a, pd.DataFrame), path
    for i, (x, y) in enumerate(zip(bufs_a, bufs_b, strict=True)):
        assert x.size == 0 or np.shares_memory(x, y), f"{path}[{i}]: copied"


def assert_all_shared(a: Any, b: Any) -> None:
    """``a`` and ``b`` (annio or anndata objects, either way round) share every buffer."""
    assert_shares(a.X, b.X, "/X")
    for attr in ("obs", "var"):
        assert_shares(getattr(a, attr), getattr(b, attr), f"/{attr}")
    for attr in ("obsm", "varm", "obsp", "varp", "layers"):
        ma, mb = getattr(a, attr), getattr(b, attr)
        keys = [k for k in ma.keys() if k is not None]
        assert keys == [k for k in mb.keys() if k is not None], attr
        for key in keys:
            assert_shares(ma[key], mb[key], f"/{attr}/{key}")
    if a.raw is not None:
        assert_shares(a.raw.X, b.raw.X, "/raw/X")
        assert_shares(a.raw.var, b.raw.var, "/raw/var")
        for key in a.raw.varm.keys():
            assert_shares(a.raw.varm[key], b.raw.varm[key], f"/raw/varm/{key}")
    for key, value in a.uns.items():
        if isinstance(value, (np.ndarray, pd.DataFrame)) or sparse.issparse(value):
            assert_shares(value, b.uns[key], f"/uns/{key}")


def full_adata(cls: type | None = None, *, X_type: str = "csr", seed: int = 0, shape=(30, 20)) -> Any:
    """A gen_adata object with raw and an awkward array in obsm (annio's or ``cls``)."""
    import awkward as ak

    from annio.testing import gen_adata

    adata = gen_adata(shape, X_type=X_type, seed=seed, raw=True, anndata_class=cls)
    rng = np.random.default_rng(seed)
    adata.obsm["awk"] = ak.Array([list(range(int(n))) for n in rng.integers(0, 4, adata.n_obs)])
    return adata
