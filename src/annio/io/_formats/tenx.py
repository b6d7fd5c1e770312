"""10x Genomics Cell Ranger outputs: ``read_10x_h5`` (v2 and v3 layouts) and
``read_10x_mtx`` (v2 ``genes.tsv`` and v3 ``features.tsv.gz`` folders).

Cell Ranger stores genes × cells in CSC, i.e. one compressed column per barcode — which is
exactly CSR of cells × genes, so the h5 arrays become X without any reordering; the gzip
chunks are decoded in parallel by the storage adapter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from annio._core import AnnData
from annio.errors import FormatError
from annio.io._formats.common import to_str_index
from annio.io._formats.mtx import read_mtx_csr
from annio.io._storage.adapter import wrap

__all__ = ["read_10x_h5", "read_10x_mtx", "open_10x_h5"]

_GEX = "Gene Expression"


def _strings(group: h5py.Group, key: str) -> np.ndarray:
    if key not in group:
        raise FormatError(f"{group.name}/{key}", "missing from the 10x file")
    return wrap(group[key]).read()


def _csr(group: h5py.Group) -> sp.csr_matrix:
    for key in ("data", "indices", "indptr", "shape"):
        if key not in group:
            raise FormatError(f"{group.name}/{key}", "missing from the 10x matrix")
    n_genes, n_cells = (int(x) for x in group["shape"][()])
    data = wrap(group["data"]).read()
    indices = wrap(group["indices"]).read()
    indptr = wrap(group["indptr"]).read()
    if len(indptr) != n_cells + 1 or len(indices) != len(data) or (len(indptr) and indptr[-1] != len(data)):
        raise FormatError(group.name, f"inconsistent matrix: shape {(n_genes, n_cells)}, {len(indptr)} indptr, {len(data)} values")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_genes):
        raise FormatError(f"{group.name}/indices", f"gene indices out of range [0, {n_genes})")
    index_dtype = np.int32 if max(n_genes, len(data)) < 2**31 else np.int64
    return sp.csr_matrix(
        (data.astype(np.float32, copy=False), indices.astype(index_dtype, copy=False), indptr.astype(index_dtype, copy=False)),
        shape=(n_cells, n_genes),
    )


def _subset_var(adata: AnnData, mask: np.ndarray) -> AnnData:
    if mask.all():
        return adata
    if not sp.issparse(adata.X):  # a streamed (dask) X: select the columns lazily, block by block
        keep = np.flatnonzero(mask)
        # a range (features are grouped by type) as a slice: no index array copied into every block's task
        cols = slice(int(keep[0]), int(keep[-1]) + 1) if len(keep) and keep[-1] - keep[0] + 1 == len(keep) else keep
        return AnnData(adata.X[:, cols], obs=adata.obs, var=adata.var.iloc[keep])
    return adata[:, mask].copy()


def _read_v3(f: h5py.File, genome: str | None, gex_only: bool, matrix: Any = _csr) -> AnnData:
    g = f["matrix"]
    X = matrix(g)
    feats = g["features"] if "features" in g else None
    if feats is None:
        raise FormatError(f"{g.name}/features", "missing from the 10x file")
    var = {"gene_ids": _strings(feats, "id"), "feature_types": _strings(feats, "feature_type")}
    if "genome" in feats:
        var["genome"] = _strings(feats, "genome")
    for tag in sorted(wrap(feats["_all_tag_keys"]).read() if "_all_tag_keys" in feats else []):
        if tag not in var and tag in feats and tag != "genome":
            var[tag] = _strings(feats, tag)
    names = to_str_index(_strings(feats, "name"))
    obs = pd.DataFrame(index=to_str_index(_strings(g, "barcodes")))
    adata = AnnData(X, obs=obs, var=pd.DataFrame({k: np.asarray(v, dtype=object) for k, v in var.items()}, index=names))
    mask = np.ones(adata.n_vars, dtype=bool)
    if genome is not None:
        if "genome" not in var:
            raise ValueError(f"{f.filename} has no genome annotation; cannot select genome {genome!r}")
        mask &= var["genome"] == genome
        if not mask.any():
            raise ValueError(f"Could not find data corresponding to genome {genome!r} in {f.filename}. "
                             f"Available genomes are: {sorted(set(var['genome']) - {''})}.")
    if gex_only:
        mask &= var["feature_types"] == _GEX
    return _subset_var(adata, mask)


def _read_v2(f: h5py.File, genome: str | None, matrix: Any = _csr) -> AnnData:
    genomes = [k for k in f.keys() if isinstance(f[k], h5py.Group)]
    if genome is None:
        if len(genomes) != 1:
            raise ValueError(f"{f.filename} contains more than one genome. For legacy 10x h5 files you must "
                             f"specify the genome if more than one is present. Available genomes are: {genomes}")
        genome = genomes[0]
    elif genome not in genomes:
        raise ValueError(f"Could not find genome {genome!r} in {f.filename}. Available genomes are: {genomes}")
    g = f[genome]
    X = matrix(g)
    var = pd.DataFrame({"gene_ids": np.asarray(_strings(g, "genes"), dtype=object)}, index=to_str_index(_strings(g, "gene_names")))
    obs = pd.DataFrame(index=to_str_index(_strings(g, "barcodes")))
    return AnnData(X, obs=obs, var=var)


def read_10x_h5(filename: str | os.PathLike, *, genome: str | None = None, gex_only: bool = True, backup_url: str | None = None) -> AnnData:
    """Read a Cell Ranger ``.h5`` count matrix (v3 ``/matrix`` layout or v2 per-genome groups).

    Parameters
    ----------
    filename
        ``filtered_feature_bc_matrix.h5`` or ``raw_feature_bc_matrix.h5`` (v3),
        ``filtered_gene_bc_matrices_h5.h5`` (v2).
    genome
        Keep only the features of this genome (v3) / read this genome's group (v2; required
        when the file holds several).
    gex_only
        v3: keep only features of type ``Gene Expression``.
    backup_url
        Not supported (annio downloads nothing); must be None unless the file exists.

    Returns
    -------
    An AnnData with a float32 CSR X (cells × features), barcodes as obs names, gene symbols
    as var names and var columns ``gene_ids``, ``feature_types``, ``genome`` (v3).
    """
    return open_10x_h5(filename, _csr, genome=genome, gex_only=gex_only, backup_url=backup_url)


def open_10x_h5(filename: str | os.PathLike, matrix: Any, *, genome: str | None = None, gex_only: bool = True, backup_url: str | None = None) -> AnnData:
    """:func:`read_10x_h5` with X made by ``matrix(group)`` from the matrix group (in
    memory, or streamed by :mod:`annio.io._formats.streamed`)."""
    path = Path(filename)
    if not path.exists():
        hint = " (annio does not download backup_url)" if backup_url else ""
        raise FileNotFoundError(f"No such file: {str(path)!r}{hint}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise FormatError("/", f"{path} is not a readable HDF5 file: {err}") from err
    with f:
        if "matrix" in f:
            return _read_v3(f, genome, gex_only, matrix)
        return _read_v2(f, genome, matrix)


def _find(folder: Path, prefix: str, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / f"{prefix}{name}").exists():
            return folder / f"{prefix}{name}"
    return None


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=3)


def read_10x_mtx(
    path: str | os.PathLike,
    *,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
    cache: bool = False,
    cache_compression: Any = None,
    gex_only: bool = True,
    prefix: str | None = None,
) -> AnnData:
    """Read a Cell Ranger matrix folder: ``matrix.mtx.gz`` + ``features.tsv.gz`` +
    ``barcodes.tsv.gz`` (v3) or ``matrix.mtx`` + ``genes.tsv`` + ``barcodes.tsv`` (v2).

    Parameters
    ----------
    path
        The folder (e.g. ``filtered_feature_bc_matrix/``).
    var_names
        Index var by gene symbols or by gene ids (the other becomes a column).
    make_unique
        Make the var names unique (appending ``-1``, ``-2``, …), as anndata does.
    cache, cache_compression
        Also read/write an ``.h5ad`` copy in ``./cache/`` keyed by the folder path.
    gex_only
        v3: keep only features of type ``Gene Expression``.
    prefix
        A prefix of the file names (``"sample1_"`` for ``sample1_matrix.mtx.gz``).

    Returns
    -------
    An AnnData with a float32 CSR X (cells × features).
    """
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ValueError(f"var_names must be 'gene_symbols' or 'gene_ids', not {var_names!r}")
    folder = Path(path)
    prefix = prefix or ""
    cache_file = Path("cache") / (str(folder.resolve()).strip("/").replace("/", "-") + f"-{prefix}{var_names}{int(gex_only)}.h5ad")
    if cache and cache_file.exists():
        from annio.io._files import read_h5ad

        return read_h5ad(cache_file)
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder: {str(folder)!r}")
    feats_path = _find(folder, prefix, ("features.tsv.gz", "features.tsv"))
    v3 = feats_path is not None
    if not v3:
        feats_path = _find(folder, prefix, ("genes.tsv", "genes.tsv.gz"))
    matrix_path = _find(folder, prefix, ("matrix.mtx.gz", "matrix.mtx"))
    barcodes_path = _find(folder, prefix, ("barcodes.tsv.gz", "barcodes.tsv"))
    for what, p in (("features.tsv.gz / genes.tsv", feats_path), ("matrix.mtx(.gz)", matrix_path), ("barcodes.tsv(.gz)", barcodes_path)):
        if p is None:
            raise FileNotFoundError(f"{folder}: no {prefix}{what}")
    X = read_mtx_csr(matrix_path, "float32", transpose=True)
    feats = _read_table(feats_path)
    barcodes = _read_table(barcodes_path)
    if feats.shape[0] != X.shape[1] or barcodes.shape[0] != X.shape[0]:
        raise FormatError(None, f"{folder}: matrix is {X.shape[1]} features × {X.shape[0]} barcodes, "
                                f"but {feats_path.name} has {feats.shape[0]} rows and {barcodes_path.name} {barcodes.shape[0]}")
    if feats.shape[1] < 2:
        raise FormatError(None, f"{feats_path}: expected gene ids and symbols (2+ columns), found {feats.shape[1]}")
    ids, symbols = feats[0].to_numpy(dtype=object), feats[1].to_numpy(dtype=object)
    index, other = (symbols, ("gene_ids", ids)) if var_names == "gene_symbols" else (ids, ("gene_symbols", symbols))
    columns = {other[0]: other[1]}
    if v3 and feats.shape[1] > 2:
        columns["feature_types"] = feats[2].to_numpy(dtype=object)
    var = pd.DataFrame(columns, index=pd.Index(index, dtype=object))
    obs = pd.DataFrame(index=pd.Index(barcodes[0].to_numpy(dtype=object), dtype=object))
    adata = AnnData(X, obs=obs, var=var)
    if make_unique:
        adata.var_names_make_unique()
    if v3 and gex_only and "feature_types" in columns:
        adata = _subset_var(adata, columns["feature_types"] == _GEX)
    if cache:
        from annio.io._files import write_h5ad

        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_h5ad(cache_file, adata, compression=cache_compression)
    return adata
