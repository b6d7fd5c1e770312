"""Concatenate .h5ad files and zarr stores into one (streamed through concat_on_disk: memory stays bounded)."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output path: *.h5ad for HDF5, anything else for zarr")
    parser.add_argument("inputs", nargs="+", help="input .h5ad files or zarr stores")
    parser.add_argument("--axis", choices=("obs", "var"), default="obs", help="axis to concatenate along (default: obs)")
    parser.add_argument("--join", choices=("inner", "outer"), default="inner", help="join of the other axis (default: inner)")
    parser.add_argument("--merge", choices=("same", "unique", "first", "only"), default=None, help="merge strategy for the other axis' elements")
    parser.add_argument("--uns-merge", choices=("same", "unique", "first", "only"), default=None, help="merge strategy for uns")
    parser.add_argument("--label", default=None, help="add a categorical obs (var) column of this name naming each row's input")
    parser.add_argument("--keys", default=None, help="comma-separated names of the inputs (default: 0,1,...)")
    parser.add_argument("--index-unique", default=None, help="separator: append it and the input's key to each name")
    parser.add_argument("--pairwise", action="store_true", help="also concatenate obsp/varp block-diagonally")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from annio._ops.concat_on_disk import concat_on_disk
    from annio.cli.progress import progress_bar

    keys = args.keys.split(",") if args.keys else None
    start = time.perf_counter()
    with progress_bar(f"concatenating {len(args.inputs)} inputs", quiet=args.quiet, unit="blocks") as update:
        concat_on_disk(
            args.inputs, args.out, axis=args.axis, join=args.join, merge=args.merge, uns_merge=args.uns_merge,
            label=args.label, keys=keys, index_unique=args.index_unique, pairwise=args.pairwise, progress=update,
        )
    if args.quiet:
        return 0
    print(f"wrote {args.out} from {len(args.inputs)} inputs in {time.perf_counter() - start:.2f} s")
    return 0
