"""Writers of synthetic 10x Genomics outputs (Cell Ranger v2 and v3 layouts), for tests and benchmarks."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp


def counts(n_cells: int, n_genes: int, density: float = 0.05, seed: int = 0) -> sp.csc_matrix:
    """A genes × cells count matrix (CSC: one column per barcode, as Cell Ranger stores it)."""
    rng = np.random.default_rng(seed)
    m = sp.random(n_genes, n_cells, density=density, format="csc", random_state=rng, dtype=np.float64)
    m.data = rng.integers(1, 30, m.nnz).astype(np.int32)
    return m.astype(np.int32)


def features(n_genes: int, n_antibody: int = 0, genomes: tuple[str, ...] = ("GRCh38",)) -> dict[str, np.ndarray]:
    ids = [f"ENSG{i:08d}" for i in range(n_genes)] + [f"AB{i}" for i in range(n_antibody)]
    names = [f"GENE{i % max(1, n_genes - 3)}" for i in range(n_genes)] + [f"CD{i}_TotalSeq" for i in range(n_antibody)]
    types = ["Gene Expression"] * n_genes + ["Antibody Capture"] * n_antibody
    genome = [genomes[i % len(genomes)] for i in range(n_genes)] + [""] * n_antibody
    return {"id": np.array(ids), "name": np.array(names), "feature_type": np.array(types), "genome": np.array(genome)}


def barcodes(n_cells: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    letters = np.array(list("ACGT"))
    return np.array(["".join(letters[rng.integers(0, 4, 16)]) + f"-{i}" for i in range(n_cells)])


def _bytes(a: np.ndarray) -> np.ndarray:
    return np.char.encode(a.astype(str), "ascii")


def write_h5_v3(path: Path, m: sp.csc_matrix, feats: dict[str, np.ndarray], bcs: np.ndarray, extra_tags: bool = False) -> None:
    kw = {"compression": "gzip", "compression_opts": 4, "chunks": True}
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["version"] = 2
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=_bytes(bcs), **kw)
        g.create_dataset("data", data=m.data, **kw)
        g.create_dataset("indices", data=m.indices.astype(np.int64), **kw)
        g.create_dataset("indptr", data=m.indptr.astype(np.int64), **kw)
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        fg = g.create_group("features")
        tags = ["genome", "read", "pattern", "sequence"] if extra_tags else ["genome"]
        fg.create_dataset("_all_tag_keys", data=_bytes(np.array(tags)))
        for key in ("id", "name", "feature_type", "genome"):
            fg.create_dataset(key, data=_bytes(feats[key]), **kw)
        if extra_tags:
            n = len(feats["id"])
            for key, value in (("read", "R2"), ("pattern", "5PNNNNNNNNNN(BC)"), ("sequence", "ACGT")):
                fg.create_dataset(key, data=_bytes(np.array([value if t != "Gene Expression" else "" for t in feats["feature_type"]][:n])), **kw)


def write_h5_v2(path: Path, per_genome: dict[str, tuple[sp.csc_matrix, dict[str, np.ndarray]]], bcs: np.ndarray) -> None:
    kw = {"compression": "gzip", "chunks": True}
    with h5py.File(path, "w") as f:
        for genome, (m, feats) in per_genome.items():
            g = f.create_group(genome)
            g.create_dataset("barcodes", data=_bytes(bcs), **kw)
            g.create_dataset("data", data=m.data, **kw)
            g.create_dataset("indices", data=m.indices.astype(np.int64), **kw)
            g.create_dataset("indptr", data=m.indptr.astype(np.int64), **kw)
            g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
            g.create_dataset("genes", data=_bytes(feats["id"]), **kw)
            g.create_dataset("gene_names", data=_bytes(feats["name"]), **kw)


def _write_tsv(path: Path, rows: list[list[str]], gz: bool) -> None:
    text = "".join("\t".join(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


def write_mtx_v3(folder: Path, m: sp.csc_matrix, feats: dict[str, np.ndarray], bcs: np.ndarray, prefix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{prefix}matrix.mtx.gz", "wb") as f:
        scipy.io.mmwrite(f, sp.coo_matrix(m), field="integer")
    rows = [[i, n, t] for i, n, t in zip(feats["id"], feats["name"], feats["feature_type"], strict=True)]
    _write_tsv(folder / f"{prefix}features.tsv.gz", rows, gz=True)
    _write_tsv(folder / f"{prefix}barcodes.tsv.gz", [[b] for b in bcs], gz=True)


def write_mtx_v2(folder: Path, m: sp.csc_matrix, feats: dict[str, np.ndarray], bcs: np.ndarray, prefix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.mmwrite(folder / f"{prefix}matrix.mtx", sp.coo_matrix(m), field="integer")
    _write_tsv(folder / f"{prefix}genes.tsv", [[i, n] for i, n in zip(feats["id"], feats["name"], strict=True)], gz=False)
    _write_tsv(folder / f"{prefix}barcodes.tsv", [[b] for b in bcs], gz=False)
