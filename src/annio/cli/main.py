"""Entry point of the ``annio`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from annio.cli import concat, convert, demo, info, validate

_COMMANDS = {"info": info, "convert": convert, "validate": validate, "demo": demo, "concat": concat}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annio", description="Inspect, convert and validate .h5ad files and zarr stores.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in _COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.strip().splitlines()[0]))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command].run(args) or 0)
    except (OSError, ValueError, TypeError) as err:
        print(f"annio {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
