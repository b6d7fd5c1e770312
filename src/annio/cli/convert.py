"""Convert between .h5ad, zarr (v2, v3, sharded v3) and loom; read 10x h5/mtx and .mtx too; re-compress (streamed: memory stays bounded)."""

from __future__ import annotations

import argparse
import time

from annio.cli.options import add_storage_arguments, storage_options


def _name(path: str) -> str:
    """The last part of a path or URL (what the progress bar shows)."""
    return str(path).rstrip("/").rsplit("/", 1)[-1] or str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="input: .h5ad, zarr store, URL of either, .loom, 10x .h5, 10x matrix folder, .mtx(.gz)")
    parser.add_argument("target", help="output path: *.h5ad for HDF5, *.loom for loom, anything else (or *.zip) for zarr")
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=None, help="zarr format of the output (default: settings.zarr_write_format)")
    parser.add_argument("--compression", default=None, help="h5ad output compression, e.g. gzip or lzf")
    add_storage_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from annio._ops.convert import convert
    from annio.cli.progress import progress_bar

    start = time.perf_counter()
    with progress_bar(f"converting {_name(args.source)}", quiet=args.quiet) as update:
        convert(args.source, args.target, zarr_format=args.zarr_format, compression=args.compression,
                storage_options=storage_options(args), progress=update)
    if not args.quiet:
        print(f"wrote {args.target} in {time.perf_counter() - start:.2f} s")
    return 0
