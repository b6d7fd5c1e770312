"""Telling URLs from local paths, without importing any backend (the command line's fast
path decides with it whether to touch h5py or zarr at all)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["is_url"]


def is_url(x: Any) -> bool:
    """Whether ``x`` is a string (or ``os.PathLike``) naming a remote location
    (``scheme://...`` with a scheme other than ``file``)."""
    if isinstance(x, os.PathLike):
        x = os.fspath(x)
    if not isinstance(x, str) or "://" not in x:
        return False
    scheme = x.split("://", 1)[0].lower()
    return bool(scheme) and scheme != "file" and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()
