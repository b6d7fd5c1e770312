"""annio vs scanpy on 10x Genomics inputs, and ``annio info`` wall time.

``python -m benchmarks.tenx [--cells 100000] [--genes 20000] [--density 0.01]`` generates a
Cell Ranger v3 ``.h5`` and matrix folder under ``benchmarks/data/tenx-*`` (never committed),
times ``read_10x_h5``/``read_10x_mtx`` of both libraries (best of ``--repeats``), then writes the
matrix as h5ad and zarr and times the ``annio info`` command end to end (new process).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io" / "formats"))
import tenx_files as tenx

DATA = Path(__file__).resolve().parent / "data"


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    folder = DATA / f"tenx-{a.cells}x{a.genes}-{a.density}"
    folder.mkdir(parents=True, exist_ok=True)
    h5, mtx = folder / "filtered_feature_bc_matrix.h5", folder / "filtered_feature_bc_matrix"
    if not h5.exists() or not (mtx / "matrix.mtx.gz").exists():
        t = time.perf_counter()
        m, feats, bcs = tenx.counts(a.cells, a.genes, a.density), tenx.features(a.genes), tenx.barcodes(a.cells)
        tenx.write_h5_v3(h5, m, feats, bcs)
        tenx.write_mtx_v3(mtx, m, feats, bcs)
        print(f"generated {a.cells}×{a.genes}, nnz {m.nnz:,} in {time.perf_counter() - t:.1f} s")
    import scanpy as sc

    import annio

    warnings.simplefilter("ignore")
    rows = []
    for name, ours, theirs in (
        ("read_10x_h5", lambda: annio.io.read_10x_h5(h5), lambda: sc.read_10x_h5(h5)),
        ("read_10x_mtx", lambda: annio.io.read_10x_mtx(mtx), lambda: sc.read_10x_mtx(mtx)),
    ):
        t_ours, t_theirs = _best(ours, a.repeats), _best(theirs, a.repeats)
        rows.append((name, t_ours, t_theirs))
        print(f"{name:<14} annio {t_ours:7.2f} s   scanpy {t_theirs:7.2f} s   ratio {t_ours / t_theirs:.2f}")
    adata = annio.io.read_10x_h5(h5)
    adata.var_names_make_unique()
    for store, write in ((folder / "m.h5ad", lambda s: adata.write_h5ad(s, compression="gzip")), (folder / "m.zarr", adata.write_zarr)):
        if not store.exists():
            write(store)
        cmd = [sys.executable, "-m", "annio.cli.main", "info", str(store)]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        imp = min(_best(lambda: subprocess.run([sys.executable, "-c", "import annio"], check=True), 1) for _ in range(3))
        print(f"annio info {store.name:<8} {min(times):.2f} s end to end (of which `import annio` {imp:.2f} s)")


if __name__ == "__main__":
    main()
