"""Loom files (HDF5, genes × cells): ``read_loom`` and ``write_loom``, with h5py directly
(no loompy needed). Matrices are streamed in blocks of cells, straight into CSR when
``sparse=True``; written files are replaced atomically."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import decode_strings, names_index

__all__ = ["read_loom", "write_loom", "open_loom"]

_BLOCK_BYTES = 64 << 20
_STR = h5py.string_dtype("utf-8")


def _block_cells(n_genes: int, itemsize: int, chunk: int) -> int:
    k = max(1, _BLOCK_BYTES // max(1, n_genes * itemsize))
    return max(chunk, k // chunk * chunk)


def _read_matrix(ds: h5py.Dataset, sparse: bool, dtype: Any) -> Any:
    if ds.ndim != 2:
        raise FormatError(ds.name, f"expected a 2-D genes × cells matrix, found shape {ds.shape}")
    n_genes, n_cells = ds.shape
    if not sparse:
        return np.ascontiguousarray(ds[()].T, dtype=dtype)
    chunk = ds.chunks[1] if ds.chunks else 64
    step = _block_cells(n_genes, ds.dtype.itemsize, chunk)
    blocks = [sp.csr_matrix(ds[:, c : c + step].T.astype(dtype, copy=False)) for c in range(0, n_cells, step)]
    if not blocks:
        return sp.csr_matrix((0, n_genes), dtype=dtype)
    return sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]


def _read_attrs(group: h5py.Group | None, n: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in [] if group is None else group:
        values = decode_strings(np.asarray(group[key][()]))
        if values.ndim == 0 or values.shape[0] != n:
            raise FormatError(group[key].name, f"expected {n} values, found shape {values.shape}")
        out[key] = values
    return out


def _read_graphs(group: h5py.Group | None, n: int) -> dict[str, sp.csr_matrix]:
    out = {}
    for key in [] if group is None else group:
        g = group[key]
        if not all(k in g for k in ("a", "b", "w")):
            continue
        out[key] = sp.csr_matrix((g["w"][()], (g["a"][()], g["b"][()])), shape=(n, n))
    return out


def _split(cols: dict[str, np.ndarray], names_key: str, mapping: Mapping[str, Iterable[str]], n: int):
    names = cols.pop(names_key, None)
    index = names_index(names, n)
    index.name = names_key if names is not None else None
    matrices = {k: v for k, v in cols.items() if v.ndim > 1}
    for key, columns in mapping.items():
        columns = list(columns)
        missing = [c for c in columns if c not in cols]
        if missing:
            raise KeyError(f"cannot build {key!r}: no attribute(s) {missing}")
        matrices[key] = np.column_stack([cols.pop(c) for c in columns])
    flat = {k: v for k, v in cols.items() if v.ndim == 1}
    return pd.DataFrame(flat, index=index), matrices


def _cleanup(df: pd.DataFrame) -> dict[str, Any]:
    constant = {}
    for col in list(df.columns):
        values = df[col].to_numpy()
        if len(values) and len(pd.unique(values)) == 1:
            constant[col] = values[0]
            del df[col]
    return constant


def read_loom(
    filename: str | os.PathLike,
    *,
    sparse: bool = True,
    cleanup: bool = False,
    X_name: str = "spliced",
    obs_names: str = "CellID",
    obsm_names: Mapping[str, Iterable[str]] | None = None,
    var_names: str = "Gene",
    varm_names: Mapping[str, Iterable[str]] | None = None,
    dtype: str = "float32",
    obsm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    varm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    **kwargs: Any,
) -> AnnData:
    """Read a ``.loom`` file into memory.

    Parameters
    ----------
    filename
        The loom file.
    sparse
        Read the matrices as CSR (streamed in blocks of cells) instead of dense arrays.
    cleanup
        Move obs/var columns holding a single value into ``uns['loom-obs'|'loom-var']``.
    X_name
        The layer X is taken from (the main matrix when there is no such layer).
    obs_names, var_names
        Column attributes / row attributes holding the cell / gene names.
    obsm_mapping, varm_mapping
        ``{key: [attribute, ...]}``: attributes combined into ``obsm[key]``/``varm[key]``
        (``obsm_names``/``varm_names`` are older names of these). 2-D attributes become
        obsm/varm entries of their own; column/row graphs become obsp/varp.
    dtype
        Numpy dtype of the matrices.
    **kwargs
        Accepted for compatibility with ``loompy.connect`` arguments; ignored.
    """
    return _read_loom(
        filename,
        lambda ds, dtype_: _read_matrix(ds, sparse, dtype_),
        cleanup=cleanup,
        X_name=X_name,
        obs_names=obs_names,
        obsm_names=obsm_names,
        var_names=var_names,
        varm_names=varm_names,
        dtype=dtype,
        obsm_mapping=obsm_mapping,
        varm_mapping=varm_mapping,
    )


def _read_loom(
    filename: str | os.PathLike,
    read_matrix: Callable[[h5py.Dataset, Any], Any],
    *,
    cleanup: bool,
    X_name: str,
    obs_names: str,
    obsm_names: Mapping[str, Iterable[str]] | None,
    var_names: str,
    varm_names: Mapping[str, Iterable[str]] | None,
    dtype: str,
    obsm_mapping: Mapping[str, Iterable[str]],
    varm_mapping: Mapping[str, Iterable[str]],
) -> AnnData:
    """:func:`read_loom` with each matrix made by ``read_matrix(dataset, dtype)``."""
    obsm_mapping = dict(obsm_names if obsm_names is not None else obsm_mapping)
    varm_mapping = dict(varm_names if varm_names is not None else varm_mapping)
    with h5py.File(filename, "r") as f:
        if "matrix" not in f:
            raise FormatError("/matrix", f"{filename} is not a loom file (no /matrix)")
        n_genes, n_cells = f["matrix"].shape
        layers = {"matrix": read_matrix(f["matrix"], dtype)}
        for key in f.get("layers", {}):
            layers[key] = read_matrix(f["layers"][key], dtype)
        obs, obsm = _split(_read_attrs(f.get("col_attrs"), n_cells), obs_names, obsm_mapping, n_cells)
        var, varm = _split(_read_attrs(f.get("row_attrs"), n_genes), var_names, varm_mapping, n_genes)
        obsp = _read_graphs(f.get("col_graphs"), n_cells)
        varp = _read_graphs(f.get("row_graphs"), n_genes)
    X = layers.get(X_name, layers["matrix"]).copy()
    uns = {}
    if cleanup:
        for key, df in (("loom-obs", obs), ("loom-var", var)):
            constant = _cleanup(df)
            if constant:
                uns[key] = constant
    return AnnData(X, obs=obs, var=var, uns=uns, obsm=obsm, varm=varm, layers=layers, obsp=obsp, varp=varp)


def open_loom(filename: str | os.PathLike, read_matrix: Callable[[h5py.Dataset, Any], Any], **options: Any) -> AnnData:
    """:func:`read_loom` (``options`` are its keyword arguments; ``sparse`` is the matrix
    reader's business) with each matrix made by ``read_matrix(dataset, dtype)`` (in memory,
    or streamed by :mod:`annio.io._formats.streamed`)."""
    sig = inspect.signature(read_loom)
    bound = sig.bind(filename, **options)
    bound.apply_defaults()
    args = {k: v for k, v in bound.arguments.items() if k not in ("filename", "sparse", "kwargs")}
    return _read_loom(filename, read_matrix, **args)


# ----------------------------------------------------------------------------- writing
def _attr_values(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            return np.asarray(values.astype(str), dtype=object)
        if pd.api.types.is_extension_array_dtype(values.dtype):
            values = values.astype(float if values.dtype.kind in "iuf" else object)
        values = values.to_numpy()
    arr = values.toarray() if sp.issparse(values) else np.asarray(values)
    return arr.astype(object).astype(str).astype(object) if arr.dtype.kind in "OUS" else arr


def _write_attrs(group: h5py.Group, columns: dict[str, Any]) -> None:
    for key, values in columns.items():
        arr = _attr_values(values)
        group.create_dataset(key, data=arr, dtype=_STR if arr.dtype == object else arr.dtype)


def _write_matrix(group: h5py.Group, key: str, M: Any, n_obs: int, n_vars: int) -> None:
    dtype = np.dtype(M.dtype)
    chunks = (max(1, min(64, n_vars)), max(1, min(64, n_obs)))
    ds = group.create_dataset(key, shape=(n_vars, n_obs), dtype=dtype, chunks=chunks, compression="gzip", compression_opts=2)
    step = _block_cells(n_vars, dtype.itemsize, chunks[1])
    for r in range(0, n_obs, step):
        block = M[r : r + step]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        ds[:, r : r + block.shape[0]] = block.T


def _write_graphs(group: h5py.Group, graphs: Mapping[str, Any]) -> None:
    for key, value in graphs.items():
        coo = sp.coo_matrix(value)
        g = group.create_group(key)
        g["a"], g["b"], g["w"] = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data


def write_loom(filename: str | os.PathLike, adata: AnnData, write_obsm_varm: bool = False) -> None:
    """Write ``adata`` as a loom file (X and layers transposed to genes × cells).

    Cell names go to the column attribute ``obs_names``, gene names to the row attribute
    ``var_names``; obs/var columns become column/row attributes, obsp/varp column/row graphs.

    Parameters
    ----------
    filename
        The ``.loom`` file; an existing file is replaced only once the new one is complete.
    adata
        The object to write (X must be set).
    write_obsm_varm
        Also write obsm/varm matrices as 2-D attributes.
    """
    if adata.X is None:
        raise ValueError("write_loom needs X (the loom main matrix)")
    target = Path(filename)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            attrs = f.create_group("attrs")
            attrs.create_dataset("LOOM_SPEC_VERSION", data="3.0.0", dtype=_STR)
            attrs.create_dataset("CreationDate", data=time.strftime("%Y%m%dT%H%M%S.000000Z", time.gmtime()), dtype=_STR)
            n_obs, n_vars = adata.shape
            _write_matrix(f, "matrix", adata.X, n_obs, n_vars)
            layers = f.create_group("layers")
            for key, value in adata.layers.items():
                _write_matrix(layers, key, value, n_obs, n_vars)
            col = {"obs_names": adata.obs_names, **{str(k): adata.obs[k] for k in adata.obs.columns}}
            row = {"var_names": adata.var_names, **{str(k): adata.var[k] for k in adata.var.columns}}
            if write_obsm_varm:
                col.update({k: v for k, v in adata.obsm.items() if not isinstance(v, pd.DataFrame)})
                row.update({k: v for k, v in adata.varm.items() if not isinstance(v, pd.DataFrame)})
            _write_attrs(f.create_group("col_attrs"), col)
            _write_attrs(f.create_group("row_attrs"), row)
            _write_graphs(f.create_group("col_graphs"), adata.obsp)
            _write_graphs(f.create_group("row_graphs"), adata.varp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
