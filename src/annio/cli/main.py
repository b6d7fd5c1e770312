"""Entry point of the ``annio`` command.

Each command is a module with ``add_arguments(parser)`` and ``run(args) -> int`` listed in
``_COMMANDS``. Every command gets ``-q/--quiet``. Exit codes: 0 ok, 1 invalid file
(``validate``), 2 usage or I/O error — reported on one line naming the file and element.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from annio._version import __version__
from annio.cli import concat, convert, demo, info, validate

_COMMANDS = {"info": info, "convert": convert, "validate": validate, "demo": demo, "concat": concat}

_FILE_ARGS = ("path", "source", "target")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annio", description="Inspect, convert and validate .h5ad files and zarr stores.")
    parser.add_argument("--version", action="version", version=f"annio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in _COMMANDS.items():
        command = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0])
        module.add_arguments(command)
        if "--quiet" not in command._option_string_actions:  # a command may define its own
            command.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors (argparse already printed them) and --help
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    from annio.errors import AnnioError

    try:
        return int(_COMMANDS[args.command].run(args) or 0)
    except BrokenPipeError:  # `annio info x | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (AnnioError, OSError, ValueError, TypeError, KeyError) as err:
        message = _one_line(err)
        files = [str(getattr(args, a)) for a in _FILE_ARGS if getattr(args, a, None) is not None]
        if files and not any(f in message for f in files):
            message = f"{files[0]}: {message}"
        print(f"annio {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"annio {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
