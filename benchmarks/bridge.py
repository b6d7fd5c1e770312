"""Time of the anndata bridge next to the read it follows.

``python -m benchmarks.bridge --size medium`` generates the benchmark dataset (not kept in
git; cached under ``benchmarks/data``), then reports: annio's ``read_h5ad``, the
``.to_anndata()`` conversion of the result, ``AnnData.from_anndata`` back, anndata's own
``read_h5ad`` of the same file and annio's ``write_h5ad`` given the anndata object.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.datagen import SIZES, data_dir, make_adata


def _timed(func, repeat: int = 1):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="medium", choices=sorted(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import anndata as ad

    import annio

    path = Path(data_dir(args.size)) / "bridge.h5ad"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        source = make_adata(SIZES[args.size])
        t_write, _ = _timed(lambda: annio.write_h5ad(path, source))
        print(f"annio.write_h5ad(anndata object)   {t_write:8.3f} s")
        del source
    t_read, adata = _timed(lambda: annio.read_h5ad(path), args.repeat)
    t_to, converted = _timed(adata.to_anndata, args.repeat)
    t_from, _ = _timed(lambda: annio.AnnData.from_anndata(converted), args.repeat)
    t_ad_read, _ = _timed(lambda: ad.read_h5ad(path), args.repeat)
    nnz = adata.X.nnz
    print(f"dataset: {args.size} {adata.n_obs} x {adata.n_vars}, X nnz {nnz:,} (+ layers/obsp)")
    print(f"annio.read_h5ad                    {t_read:8.3f} s")
    print(f"  .to_anndata()                    {t_to * 1e3:8.3f} ms  ({t_to / t_read:.2e} of the read)")
    print(f"annio.AnnData.from_anndata         {t_from * 1e3:8.3f} ms")
    print(f"anndata.read_h5ad                  {t_ad_read:8.3f} s  (anndata time / (annio read + "
          f"conversion) = {t_ad_read / (t_read + t_to):.2f})")


if __name__ == "__main__":
    main()
