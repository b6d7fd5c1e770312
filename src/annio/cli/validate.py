"""Read every element of an .h5ad file or zarr store and report each one that breaks the format."""

from __future__ import annotations

import argparse
import warnings

from annio.errors import AnnioError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="an .h5ad file or a zarr store")


def run(args: argparse.Namespace) -> int:
    from annio.io._files import read_h5ad, read_zarr
    from annio.io._storage.stores import is_h5ad

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adata = read_h5ad(args.path) if is_h5ad(args.path) else read_zarr(args.path)
    except (AnnioError, OSError, ValueError, KeyError, TypeError) as err:
        print(f"INVALID {args.path}")
        print(f"  {err}")
        for note in getattr(err, "__notes__", []):
            print(f"  {note}")
        return 1
    for w in caught:
        print(f"warning: {w.category.__name__}: {w.message}")
    print(f"OK {args.path}: {adata.n_obs} × {adata.n_vars}")
    return 0
