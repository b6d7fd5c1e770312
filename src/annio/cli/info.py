"""Show the element tree of an .h5ad file or zarr store (encodings, shapes, chunks) without reading data."""

from __future__ import annotations

import argparse

from annio.io._storage.stores import open_read
from annio.io._storage.adapter import wrap
from annio.cli.tree import walk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="an .h5ad file, a zarr store (directory or .zip)")
    parser.add_argument("--depth", type=int, default=None, help="show this many levels (default: all)")


def run(args: argparse.Namespace) -> int:
    with open_read(args.path) as root:
        for entry in walk(wrap(root), max_depth=args.depth):
            print(entry.describe())
    return 0
