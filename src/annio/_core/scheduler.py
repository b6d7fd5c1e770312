"""The dask scheduler annio computes lazy elements with."""

from __future__ import annotations

from typing import Any

__all__ = ["dask_scheduler"]


def dask_scheduler() -> dict[str, Any]:
    """Keyword arguments for ``dask.compute``: the threaded scheduler given directly unless
    the user chose one or dask.distributed is in use (dask otherwise imports
    ``distributed`` on the first compute just to look for a client: over a second)."""
    import sys

    import dask

    if "distributed" in sys.modules or dask.config.get("scheduler", None) is not None:
        return {}
    from dask.threaded import get

    return {"scheduler": get}
