"""Options several commands share: ``--storage-option`` (and ``ANNIO_STORAGE_OPTIONS``)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["add_storage_arguments", "storage_options"]

ENV = "ANNIO_STORAGE_OPTIONS"


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--storage-option", action="append", default=[], metavar="KEY=VALUE",
        help=f"for URLs: a storage option (JSON values allowed, e.g. anon=true); also read from ${ENV} (a JSON object)",
    )


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The storage options of the environment, overridden by the flags; None when empty."""
    options: dict[str, Any] = {}
    raw = os.environ.get(ENV)
    if raw:
        try:
            env = json.loads(raw)
        except ValueError as err:
            raise ValueError(f"${ENV} is not a JSON object: {err}") from None
        if not isinstance(env, dict):
            raise ValueError(f"${ENV} is not a JSON object")
        options.update(env)
    for item in getattr(args, "storage_option", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option {item!r}: expected KEY=VALUE")
        options[key] = _value(value)
    return options or None
