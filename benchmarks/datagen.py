"""Deterministic synthetic single-cell inputs, generated fast and cached on disk.

Everything is vectorised numpy: the CSR matrices are built directly from a random
``indptr`` (cells with log-normally varying gene counts) and strictly increasing column
indices drawn as uniform order statistics (exponential spacings), so no per-cell loop.

Inputs are written with the *real* anndata so both libraries read identical files; they
live in ``benchmarks/data/<size>-v<GENERATOR_VERSION>/`` and ``manifest.json`` (written
last) marks a complete cache.  Bump :data:`GENERATOR_VERSION` whenever the data changes.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import DATA_DIR
from .formats import FORMATS, configure, input_name, write

GENERATOR_VERSION = 1
N_PARTS = 4  # inputs for the concat workloads
_BLOCK_NNZ = 8_000_000  # rows are generated in blocks of about this many non-zeros


@dataclass(frozen=True)
class Size:
    """Shape and density of one benchmark dataset."""

    name: str
    n_obs: int
    n_vars: int
    density: float
    many_uns: int = 20_000  # entries of the "many elements" uns dict
    wide_columns: int = 2_000  # columns of the "many elements" dataframe


SIZES: dict[str, Size] = {
    s.name: s
    for s in (
        Size("tiny", 2_000, 1_000, 0.05, many_uns=200, wide_columns=100),
        Size("small", 20_000, 5_000, 0.05),
        Size("medium", 100_000, 20_000, 0.03),
        Size("large", 300_000, 30_000, 0.02),
    )
}


def data_dir(size: str) -> Path:
    """Cache directory of one size."""
    return DATA_DIR / f"{size}-v{GENERATOR_VERSION}"


# --------------------------------------------------------------------------- matrices
def sorted_unique_columns(rng: np.random.Generator, row_nnz: np.ndarray, n_cols: int) -> np.ndarray:
    """Strictly increasing column indices per row (``row_nnz[i] <= n_cols`` each).

    Row ``i`` gets ``k`` sorted uniforms ``u`` from ``k + 1`` exponential spacings; the
    column is ``floor(u * (n_cols - k)) + rank``, which is strictly increasing and < n_cols.
    """
    n_rows, nnz = len(row_nnz), int(row_nnz.sum())
    starts = np.cumsum(row_nnz) - row_nnz
    row_of = np.repeat(np.arange(n_rows), row_nnz)
    rank = np.arange(nnz) - starts[row_of]
    spacing = np.cumsum(rng.standard_exponential(nnz + n_rows) + 1e-12)
    first = starts + np.arange(n_rows)  # slot of each row's first spacing
    base = np.where(first > 0, spacing[first - 1], 0.0)
    total = spacing[first + row_nnz] - base
    u = (spacing[np.arange(nnz) + row_of] - base[row_of]) / total[row_of]
    cols = np.floor(u * (n_cols - row_nnz)[row_of]).astype(np.int64) + rank
    return cols.astype(np.int32)


def make_counts(size: Size, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Raw counts and log-normalised X (float32 CSR with identical structure)."""
    rng = np.random.default_rng(seed)
    sigma = 0.35
    mean = size.density * size.n_vars
    raw = rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, size.n_obs)
    row_nnz = np.clip(np.rint(raw), 1, size.n_vars).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(row_nnz)])
    indices = np.empty(indptr[-1], dtype=np.int32)
    counts = np.empty(indptr[-1], dtype=np.float32)
    lognorm = np.empty(indptr[-1], dtype=np.float32)
    block_rows = max(1, int(_BLOCK_NNZ // max(mean, 1)))
    for lo in range(0, size.n_obs, block_rows):
        hi = min(lo + block_rows, size.n_obs)
        sl = slice(indptr[lo], indptr[hi])
        nnz_blk = row_nnz[lo:hi]
        indices[sl] = sorted_unique_columns(rng, nnz_blk, size.n_vars)
        c = rng.geometric(0.45, int(nnz_blk.sum())).astype(np.float32)
        totals = np.add.reduceat(c, indptr[lo:hi] - indptr[lo])
        counts[sl] = c
        lognorm[sl] = np.log1p(c / np.repeat(totals, nnz_blk) * 1e4)
    shape = (size.n_obs, size.n_vars)
    idx = indptr.astype(np.int64)
    return sp.csr_matrix((counts, indices, idx), shape), sp.csr_matrix((lognorm, indices, idx), shape)


def knn_graph(rng: np.random.Generator, n: int, k: int = 15) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Connectivities and distances of a random k-nearest-neighbour graph."""
    k = min(k, n)
    row_nnz = np.full(n, k, dtype=np.int64)
    indices = sorted_unique_columns(rng, row_nnz, n)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    conn = rng.random(n * k, dtype=np.float32)
    dist = rng.random(n * k, dtype=np.float32) * 10
    return (sp.csr_matrix((conn, indices, indptr), (n, n)), sp.csr_matrix((dist, indices, indptr), (n, n)))


# ---------------------------------------------------------------------- annotations
def _categorical(rng: np.random.Generator, n: int, categories: list[str], skew: float = 1.0) -> pd.Categorical:
    p = rng.random(len(categories)) ** skew
    codes = rng.choice(len(categories), n, p=p / p.sum())
    return pd.Categorical.from_codes(codes, categories=categories)


def barcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique 10x-style barcodes: 10 bases encode the row number, 6 are random."""
    digits = (np.arange(n)[:, None] // 4 ** np.arange(10)) % 4
    codes = np.concatenate([digits, rng.integers(0, 4, (n, 6))], axis=1)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[codes]
    return np.char.add(np.ascontiguousarray(letters).view("S16").ravel().astype(str), "-1")


def make_obs(rng: np.random.Generator, n: int, counts: sp.csr_matrix) -> pd.DataFrame:
    """Cell annotations: categoricals, floats, ints, bools and a unique string column."""
    n_genes = np.diff(counts.indptr).astype(np.int32)
    total = np.asarray(counts.sum(axis=1)).ravel().astype(np.float32)
    names = barcodes(rng, n)
    return pd.DataFrame(
        {
            "cell_type": _categorical(rng, n, [f"type_{i}" for i in range(30)], skew=3),
            "sample": _categorical(rng, n, [f"sample_{i:02d}" for i in range(12)]),
            "batch": _categorical(rng, n, ["b1", "b2", "b3", "b4"]),
            "leiden": _categorical(rng, n, [str(i) for i in range(40)], skew=2),
            "n_genes_by_counts": n_genes,
            "total_counts": total,
            "pct_counts_mt": rng.gamma(2.0, 2.0, n).astype(np.float32),
            "doublet_score": rng.beta(1, 8, n),
            "predicted_doublet": rng.random(n) < 0.05,
            "passed_qc": rng.random(n) > 0.1,
            "cell_uid": np.char.add("cell:", names).astype(object),
        },
        index=pd.Index(names.astype(object), name=None),
    )


def make_var(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Gene annotations with Ensembl-like unique ids as index."""
    ids = np.char.add("ENSG", np.char.zfill(np.arange(n).astype(str), 11))
    chroms = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
    return pd.DataFrame(
        {
            "gene_symbol": np.char.add("GENE", np.arange(n).astype(str)).astype(object),
            "feature_types": pd.Categorical(["Gene Expression"] * n),
            "chromosome": _categorical(rng, n, chroms),
            "highly_variable": rng.random(n) < 0.1,
            "mt": rng.random(n) < 0.005,
            "means": rng.gamma(1.0, 0.5, n).astype(np.float32),
            "dispersions": rng.normal(0, 1, n),
            "n_cells_by_counts": rng.integers(0, 10_000, n),
        },
        index=pd.Index(ids.astype(object)),
    )


def make_uns(rng: np.random.Generator) -> dict[str, Any]:
    """A nested uns like scanpy leaves behind."""
    var = np.sort(rng.random(50))[::-1]
    return {
        "neighbors": {
            "connectivities_key": "connectivities",
            "distances_key": "distances",
            "params": {"n_neighbors": 15, "method": "umap", "metric": "euclidean"},
        },
        "pca": {"variance": var, "variance_ratio": var / var.sum(), "params": {"zero_center": True}},
        "umap": {"params": {"a": 0.583, "b": 1.334}},
        "leiden": {"params": {"resolution": 1.0, "n_iterations": -1}},
        "cell_type_colors": np.array([f"#{i * 123457 % 0xFFFFFF:06x}" for i in range(30)], dtype=object),
        "title": "synthetic benchmark data",
    }


def make_adata(size: Size, seed: int = 0) -> Any:
    """The main benchmark AnnData (real anndata object)."""
    import anndata as ad

    rng = np.random.default_rng(seed + 1)
    counts, x = make_counts(size, seed)
    conn, dist = knn_graph(rng, size.n_obs)
    return ad.AnnData(
        X=x,
        obs=make_obs(rng, size.n_obs, counts),
        var=make_var(rng, size.n_vars),
        obsm={
            "X_pca": rng.standard_normal((size.n_obs, 50), dtype=np.float32),
            "X_umap": rng.standard_normal((size.n_obs, 2), dtype=np.float32),
        },
        varm={"PCs": rng.standard_normal((size.n_vars, 50), dtype=np.float32)},
        obsp={"connectivities": conn, "distances": dist},
        layers={"counts": counts},
        uns=make_uns(rng),
    )


def make_many_uns(size: Size, seed: int = 0) -> Any:
    """A small AnnData whose uns holds ``size.many_uns`` small entries."""
    import anndata as ad

    rng = np.random.default_rng(seed + 2)
    kinds = (lambda i: i, lambda i: i * 0.5, lambda i: f"value {i}", lambda i: rng.random(4))
    entries = {f"entry_{i:05d}": kinds[i % len(kinds)](i) for i in range(size.many_uns)}
    return ad.AnnData(X=np.zeros((100, 10), dtype=np.float32), uns={"many": entries})


def make_wide_obs(size: Size, seed: int = 0) -> Any:
    """An AnnData without X whose obs has ``size.wide_columns`` columns of mixed dtypes."""
    import anndata as ad

    rng = np.random.default_rng(seed + 3)
    n = min(size.n_obs, 10_000)
    cats = [f"c{i}" for i in range(8)]
    cols: dict[str, Any] = {}
    for i in range(size.wide_columns):
        kind = i % 10
        if kind < 5:
            cols[f"f{i}"] = rng.random(n, dtype=np.float32)
        elif kind < 7:
            cols[f"i{i}"] = rng.integers(0, 1000, n, dtype=np.int32)
        elif kind < 9:
            cols[f"c{i}"] = pd.Categorical.from_codes(rng.integers(0, 8, n), categories=cats)
        else:
            cols[f"b{i}"] = rng.random(n) < 0.5
    obs = pd.DataFrame(cols, index=pd.Index([f"cell{i}" for i in range(n)]))
    return ad.AnnData(obs=obs)


# ----------------------------------------------------------------------------- cache
def _write_all(adata: Any, out: Path, stem: str, formats: list[str]) -> None:
    import anndata as ad

    for name in formats:
        fmt = FORMATS[name]
        configure(ad, fmt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write(ad, adata, out / input_name(stem, fmt), fmt)


def manifest_path(size: str) -> Path:
    """Path of the completion marker / metadata of one size's cache."""
    return data_dir(size) / "manifest.json"


def load_manifest(size: str) -> dict[str, Any] | None:
    """The manifest of a complete, up-to-date cache (same generator and size spec), or None."""
    path = manifest_path(size)
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    current = {"generator_version": GENERATOR_VERSION, "size": asdict(SIZES[size])}
    return manifest if all(manifest.get(k) == v for k, v in current.items()) else None


def ensure(size_name: str, log: Any = print) -> dict[str, Any]:
    """Generate (if needed) every cached input of ``size_name`` and return its manifest."""
    manifest = load_manifest(size_name)
    if manifest is not None:
        return manifest
    size = SIZES[size_name]
    out = data_dir(size_name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    log(f"generating {size_name} inputs in {out} ...")
    adata = make_adata(size)
    _write_all(adata, out, "base", list(FORMATS))
    bounds = np.linspace(0, size.n_obs, N_PARTS + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        adata[lo:hi].copy().write_h5ad(out / f"part{i}.h5ad")
    x = adata.X
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "size": asdict(size),
        "nnz": int(x.nnz),
        "x_nbytes": int(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes),
        "n_parts": N_PARTS,
    }
    del adata, x
    _write_all(make_many_uns(size), out, "many-uns", ["h5ad", "zarr3-sharded"])
    _write_all(make_wide_obs(size), out, "wide-obs", ["h5ad", "zarr3-sharded"])
    manifest_path(size_name).write_text(json.dumps(manifest, indent=2))
    log(f"generated {size_name} inputs ({manifest['nnz']:,} non-zeros) in {time.perf_counter() - t0:.0f} s")
    return manifest
