"""anndata's ``experimental`` names, kept for compatibility; each has a real home elsewhere
(:mod:`annio.io.registry` for dispatched I/O, :mod:`annio.lazy` for lazy access)."""

from __future__ import annotations

from types import SimpleNamespace

from ..io.registry import IOSpec, read_dispatched, write_dispatched
from ..lazy import Dataset2D, read_elem_lazy, read_lazy

#: ``anndata.experimental.backed.Dataset2D`` lives here in anndata.
backed = SimpleNamespace(Dataset2D=Dataset2D)

__all__ = ["IOSpec", "read_dispatched", "write_dispatched", "read_lazy", "read_elem_lazy", "Dataset2D", "backed"]
