"""Read every element of an .h5ad file or zarr store and report each one that breaks the format (exit code 1)."""

from __future__ import annotations

import argparse
import warnings

from annio.cli.options import add_storage_arguments, storage_options


def _name(path: str) -> str:
    """The last part of a path or URL (what the progress bar shows)."""
    return str(path).rstrip("/").rsplit("/", 1)[-1] or str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="an .h5ad file or a zarr store (or a URL of either)")
    add_storage_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from annio.cli.progress import progress_bar
    from annio.errors import AnnioError
    from annio.io._root import build_adata, read_root
    from annio.io._storage.stores import open_read

    try:
        with warnings.catch_warnings(record=True) as caught, progress_bar(f"validating {_name(args.path)}", quiet=args.quiet, unit="elements") as update:
            warnings.simplefilter("always")
            with open_read(args.path, storage_options=storage_options(args)) as root:
                parts = read_root(root, on_part=lambda key, done, total: update(done, total))
                n = len(list(root.keys()))
                update(n, n)
            adata = build_adata(parts)
    except (AnnioError, OSError, ValueError, KeyError, TypeError) as err:
        print(f"INVALID {args.path}")
        print(f"  {' '.join(str(err).split())}")
        for note in getattr(err, "__notes__", []):
            print(f"  {note}")
        return 1
    for w in caught:
        print(f"warning: {w.category.__name__}: {w.message}")
    print(f"OK {args.path}: {adata.n_obs} × {adata.n_vars}")
    return 0
