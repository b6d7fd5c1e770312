"""On-disk formats exercised by the benchmarks, and how to read/write them with ``lib``.

``lib`` is a library module, either :mod:`anndata` or :mod:`annio`; both expose the same
API (``read_h5ad``, ``read_zarr``, ``AnnData.write_h5ad``, ``AnnData.write_zarr`` and the
``settings.zarr_write_format`` / ``settings.auto_shard_zarr_v3`` options), so the same code
runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Format:
    """One on-disk layout: h5ad (optionally compressed) or zarr v2/v3 (optionally sharded)."""

    name: str
    suffix: str
    compression: str | None = None
    zarr_format: int | None = None
    sharded: bool = False

    @property
    def is_h5ad(self) -> bool:
        """True for HDF5 based formats."""
        return self.zarr_format is None


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("h5ad", ".h5ad"),
        Format("h5ad-gzip", ".h5ad", compression="gzip"),
        Format("zarr2", ".zarr", zarr_format=2),
        Format("zarr3", ".zarr", zarr_format=3),
        Format("zarr3-sharded", ".zarr", zarr_format=3, sharded=True),
    )
}


def _set_setting(lib: ModuleType, name: str, value: Any) -> None:
    """Set ``lib.settings.<name>``; refuse silently creating a setting that does not exist."""
    settings = getattr(lib, "settings", None)
    if settings is None or not hasattr(settings, name):
        raise NotImplementedError(f"{lib.__name__}.settings.{name} missing")
    setattr(settings, name, value)


def configure(lib: ModuleType, fmt: Format) -> None:
    """Apply the library settings needed to write ``fmt`` (zarr format, sharding)."""
    if fmt.is_h5ad:
        return
    _set_setting(lib, "zarr_write_format", fmt.zarr_format)
    if fmt.zarr_format == 3:
        _set_setting(lib, "auto_shard_zarr_v3", fmt.sharded)


def write(lib: ModuleType, adata: Any, path: Path, fmt: Format) -> None:
    """Write ``adata`` to ``path`` in ``fmt`` (call :func:`configure` first)."""
    if fmt.is_h5ad:
        adata.write_h5ad(path, compression=fmt.compression)
    else:
        adata.write_zarr(path)


def read(lib: ModuleType, path: Path, fmt: Format) -> Any:
    """Read ``path`` fully into memory."""
    return lib.read_h5ad(path) if fmt.is_h5ad else lib.read_zarr(path)


def input_name(stem: str, fmt: Format) -> str:
    """File name of a cached input, e.g. ``base-zarr3-sharded.zarr``."""
    return f"{stem}-{fmt.name}{fmt.suffix}"
