"""Convert between .h5ad and zarr (v2, v3, sharded v3), or re-compress a file."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="input .h5ad file or zarr store")
    parser.add_argument("target", help="output path: *.h5ad for HDF5, anything else (or *.zip) for zarr")
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=None, help="zarr format of the output (default: settings.zarr_write_format)")
    parser.add_argument("--compression", default=None, help="h5ad output compression, e.g. gzip or lzf")


def run(args: argparse.Namespace) -> int:
    from ..io.files import read_h5ad, read_zarr, write_h5ad, write_zarr
    from ..io.stores import is_h5ad

    start = time.perf_counter()
    adata = read_h5ad(args.source) if is_h5ad(args.source) else read_zarr(args.source)
    if str(args.target).endswith(".h5ad"):
        write_h5ad(args.target, adata, compression=args.compression)
    else:
        write_zarr(args.target, adata, zarr_format=args.zarr_format)
    print(f"wrote {args.target} ({adata.n_obs} × {adata.n_vars}) in {time.perf_counter() - start:.2f} s")
    return 0
