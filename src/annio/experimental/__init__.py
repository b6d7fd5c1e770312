"""anndata's ``experimental`` names, kept for compatibility; each has a real home elsewhere."""

from __future__ import annotations

from ..io.registry import IOSpec, read_dispatched, write_dispatched

__all__ = ["IOSpec", "read_dispatched", "write_dispatched"]
