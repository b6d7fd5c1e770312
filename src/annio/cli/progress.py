"""Progress display for long commands: a rich bar on a terminal, nothing otherwise.

Commands create one with :func:`progress_bar` and hand its callback ``update(done, total)``
to the operation (``convert``, ``concat``, …). The bar shows only when stderr is a terminal
and ``--quiet`` was not given; without the ``rich`` extra it is silent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_bar", "interactive", "Update"]

Update = Callable[[int, int], None]
_MAX_DESCRIPTION = 40


def interactive(quiet: bool = False) -> bool:
    """Whether to show progress: not quiet, stderr is a terminal, and TERM is not ``dumb``."""
    if quiet or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _noop(done: int, total: int) -> None:
    return None


@contextmanager
def progress_bar(description: str, *, quiet: bool = False, unit: str = "values") -> Iterator[Update]:
    """Yield ``update(done, total)``; draws a rich progress bar on stderr when interactive.

    Parameters
    ----------
    description
        Shown left of the bar (e.g. ``"converting a.h5ad"``; cut at 40 characters).
    quiet
        Never draw (``--quiet``).
    unit
        What ``done``/``total`` count, shown after the numbers.
    """
    if not interactive(quiet):
        yield _noop
        return
    if len(description) > _MAX_DESCRIPTION:  # leave the bar room on narrow terminals
        description = description[: _MAX_DESCRIPTION - 1] + "…"
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    except ImportError:  # pragma: no cover - the cli extra is missing
        yield _noop
        return
    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False, refresh_per_second=10) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1) if total or done else None)

        yield update
