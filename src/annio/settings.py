"""Global settings, in one place.

Every setting is validated on assignment, can be overridden temporarily with
``settings.override(name=value)`` (a context manager), and takes its start value from the
environment variable ``ANNIO_<NAME>`` (upper case) when that is set.

>>> import annio
>>> with annio.settings.override(zarr_write_format=2):
...     annio.settings.zarr_write_format
2
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

__all__ = ["Settings", "settings"]


class _Option(NamedTuple):  # not a dataclass: dataclasses imports inspect (start-up time)
    name: str
    default: Any
    validate: Callable[[Any], Any]  # returns the normalised value or raises
    doc: str


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"expected a bool, got {value!r}")


def _optional_bool(value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"none", ""}):
        return None
    return _bool(value)


def _int_at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError(f"expected an int, got {value!r}")
        number = int(value)
        if number < minimum:
            raise ValueError(f"must be >= {minimum}, got {number}")
        return number

    return check


def _optional_int_between(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in {"none", ""}):
            return None
        if isinstance(value, bool):
            raise TypeError(f"expected an int or None, got {value!r}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"must be None or between {low} and {high}, got {number}")
        return number

    return check


def _one_of(*choices: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        for choice in choices:
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError(f"must be one of {choices}, got {value!r}")

    return check


_OPTIONS = [
    _Option("zarr_write_format", 3, _one_of(3, 2),
            "zarr format (2 or 3) used when annio creates a zarr store itself."),
    _Option("auto_shard_zarr_v3", True, _bool,
            "Shard zarr v3 arrays (except scalars and rec-arrays) unless `shards` is given."),
    _Option("shard_target_bytes", 256 * 2**20, _int_at_least(2**16),
            "Uncompressed size aimed at for one zarr v3 shard."),
    _Option("chunk_target_bytes", 2**20, _int_at_least(2**12),
            "Uncompressed size aimed at for one chunk (zarr inner chunk, h5 chunk)."),
    _Option("zarr_zstd_level", None, _optional_int_between(-7, 22),
            "zstd level of the zarr v3 arrays annio writes without explicit `compressors` (None: "
            "zarr's default codec and level, files byte-identical to zarr-python's; 1 writes faster)."),
    _Option("check_uniqueness", True, _bool,
            "Warn when obs_names or var_names are not unique."),
    _Option("remove_unused_categories", True, _bool,
            "Views drop unused categories of categorical obs/var columns."),
    _Option("use_sparse_array_on_read", False, _bool,
            "Read sparse matrices as scipy `*_array` instead of `*_matrix`."),
    _Option("allow_write_nullable_strings", None, _optional_bool,
            "Write pandas string arrays as `nullable-string-array` (None: when pandas infers strings)."),
    _Option("disallow_forward_slash_in_h5ad", True, _bool,
            "Refuse '/' in obs/var/uns keys when writing h5ad (otherwise warn)."),
    _Option("write_csr_csc_indices_with_min_possible_dtype", False, _bool,
            "Write sparse `indices` with the smallest unsigned dtype that fits."),
    _Option("min_rows_for_chunked_h5_copy", 1000, _int_at_least(1),
            "Rows per block when copying dense arrays block-wise."),
    _Option("restrict_index_types", True, _bool,
            "Coerce obs/var indexes to strings."),
    _Option("use_zarrs", True, _bool,
            "Use the zarrs codec pipeline for zarr I/O when the `zarrs` package is installed."),
    _Option("io_threads", 0, _int_at_least(0),
            "Threads for parallel compression and decompression (0: one per core)."),
    _Option("copy_on_write_X", True, _bool,
            "Setting `.X` of a view copies the view (anndata 0.13); False writes the value into "
            "the parent's X at the view's positions and keeps the view (anndata 0.12)."),
    _Option("write_block_bytes", 256 * 2**20, _int_at_least(2**16),
            "Memory bound for streamed (block-wise) writes and conversions."),
    _Option("direct_write_min_bytes", 2**16, _int_at_least(0),
            "Files annio writes itself (zarr v3 shards) at least this large are written with "
            "O_DIRECT, past the page cache, where the file system allows it (0: never)."),
    _Option("io_concurrency", 64, _int_at_least(1),
            "Requests kept in flight at once by remote reads (metadata, chunks, byte ranges)."),
    _Option("remote_prefetch_bytes", 2**30, _int_at_least(0),
            "Whole remote reads fetch every object of the elements they read concurrently into "
            "memory first when the compressed total is at most this many bytes."),
]


class Settings:
    """annio's settings; see the module docstring. Use the instance ``annio.settings``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_options", {opt.name: opt for opt in _OPTIONS})
        object.__setattr__(self, "_values", {})
        for opt in _OPTIONS:
            self._values[opt.name] = self._initial(opt)

    @staticmethod
    def _initial(opt: _Option) -> Any:
        raw = os.environ.get(f"ANNIO_{opt.name.upper()}")
        if raw is None:
            return opt.default
        try:
            return opt.validate(raw)
        except (TypeError, ValueError) as err:
            raise ValueError(f"environment variable ANNIO_{opt.name.upper()}={raw!r}: {err}") from None

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"annio.settings has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        opt = self._options.get(name)
        if opt is None:
            raise AttributeError(f"annio.settings has no setting {name!r}; known: {sorted(self._options)}")
        try:
            self._values[name] = opt.validate(value)
        except (TypeError, ValueError) as err:
            raise type(err)(f"annio.settings.{name}: {err}") from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._options]

    @contextmanager
    def override(self, **values: Any) -> Iterator[Settings]:
        """Set settings temporarily, restoring the previous values on exit."""
        previous = {name: getattr(self, name) for name in values}
        try:
            for name, value in values.items():
                setattr(self, name, value)
            yield self
        finally:
            self._values.update(previous)

    def reset(self, *names: str) -> None:
        """Reset the named settings (all when none are named) to their defaults."""
        for name in names or tuple(self._options):
            if name not in self._options:
                raise AttributeError(f"annio.settings has no setting {name!r}")
            self._values[name] = self._options[name].default

    def describe(self) -> str:
        """A human-readable table of every setting, its value and its meaning."""
        return "\n".join(
            f"{name} = {self._values[name]!r}  # {opt.doc}" for name, opt in self._options.items()
        )

    def __repr__(self) -> str:
        return "annio.settings:\n" + self.describe()

    @property
    def resolved_io_threads(self) -> int:
        """``io_threads`` with 0 resolved to the number of usable cores."""
        if self.io_threads:
            return self.io_threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)


settings = Settings()
