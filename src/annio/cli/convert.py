"""Convert between .h5ad and zarr (v2, v3, sharded v3), or re-compress a file (streamed: memory stays bounded)."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="input .h5ad file or zarr store")
    parser.add_argument("target", help="output path: *.h5ad for HDF5, anything else (or *.zip) for zarr")
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=None, help="zarr format of the output (default: settings.zarr_write_format)")
    parser.add_argument("--compression", default=None, help="h5ad output compression, e.g. gzip or lzf")


def run(args: argparse.Namespace) -> int:
    from annio._ops.convert import convert

    start = time.perf_counter()
    convert(args.source, args.target, zarr_format=args.zarr_format, compression=args.compression)
    print(f"wrote {args.target} in {time.perf_counter() - start:.2f} s")
    return 0
