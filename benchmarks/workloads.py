"""The benchmark workloads, written once against a library module ``lib``.

A workload's ``setup(lib, ctx)`` runs in the measurement subprocess *before* the timer
starts (loading the in-memory input, opening a lazy/backed object, applying settings)
and returns a :class:`Prepared` whose ``run`` closure is the timed part only.

Names are ``<what>-<format>`` so ``--only`` can pick families (``read-``, ``zarr3``,
``lazy-``, ``many-uns`` ...).  Workloads whose API is optional (concat) declare it in
``requires``; a library without it shows ``n/a`` instead of an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .formats import FORMATS, Format, configure, input_name, read, write

N_RANDOM_CELLS = 1_000
LAZY_FORMATS = ("h5ad", "zarr3-sharded")
MANY_FORMATS = ("h5ad", "zarr3-sharded")
LAZY_OBS_COLUMNS = ("cell_type", "total_counts")  # one categorical, one float
STREAMING_CONVERTER = "convert"  # used as lib.convert(src, dst) when present (settings apply)


@dataclass(frozen=True)
class Context:
    """Inputs of a measurement: the cached data directory and a fresh scratch directory."""

    data: Path
    scratch: Path
    manifest: dict[str, Any]
    seed: int = 42

    @property
    def n_obs(self) -> int:
        """Number of cells of the main dataset."""
        return int(self.manifest["size"]["n_obs"])

    def random_cells(self) -> np.ndarray:
        """Sorted random cell indices (deterministic)."""
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(self.n_obs, min(N_RANDOM_CELLS, self.n_obs), replace=False))

    def parts(self) -> list[Path]:
        """The h5ad inputs of the concat workloads."""
        return [self.data / f"part{i}.h5ad" for i in range(int(self.manifest["n_parts"]))]


@dataclass
class Prepared:
    """Result of a setup: the timed callable and what to report as size on disk."""

    run: Callable[[], Any]
    disk: Path | None = None  # output (or input) whose size / file count is reported
    inputs: list[Path] = field(default_factory=list)  # evicted from page cache with --cold


@dataclass(frozen=True)
class Workload:
    """One benchmark: a name, its setup, and how to interpret it."""

    name: str
    setup: Callable[[ModuleType, Context], Prepared]
    description: str
    throughput: bool = False  # report uncompressed X bytes per second
    requires: tuple[str, ...] = ()  # dotted attributes of lib; missing -> "n/a"


def has_api(lib: ModuleType, dotted: str) -> bool:
    """Whether ``lib.<dotted>`` exists (importing submodules on the way)."""
    import importlib

    obj: Any = lib
    for part in dotted.split("."):
        if not hasattr(obj, part):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{part}")
                continue
            except (ImportError, AttributeError):
                return False
        obj = getattr(obj, part)
    return True


def _input(ctx: Context, stem: str, fmt: Format) -> Path:
    return ctx.data / input_name(stem, fmt)


def _load(lib: ModuleType, ctx: Context, stem: str) -> Any:
    """In-memory object to write, read by the library itself from the plain h5ad input."""
    return lib.read_h5ad(_input(ctx, stem, FORMATS["h5ad"]))


def experimental(lib: ModuleType) -> ModuleType:
    """``lib.experimental``, imported explicitly (untimed) in case ``lib`` does not import it."""
    import importlib

    return importlib.import_module(f"{lib.__name__}.experimental")


def _lazy(lib: ModuleType, path: Path) -> Any:
    return experimental(lib).read_lazy(path)


def _materialise(column: Any) -> np.ndarray:
    """Load a (lazy) dataframe column fully into a numpy array."""
    to_numpy = getattr(column, "to_numpy", None)
    return to_numpy() if to_numpy is not None else np.asarray(column)


# ----------------------------------------------------------------- workload factories
def write_workload(stem: str, fmt_name: str, throughput: bool) -> Workload:
    """Write the in-memory ``stem`` dataset in ``fmt_name``."""
    fmt = FORMATS[fmt_name]

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        adata = _load(lib, ctx, stem)
        configure(lib, fmt)
        out = ctx.scratch / input_name(stem, fmt)
        return Prepared(lambda: write(lib, adata, out, fmt), disk=out)

    prefix = "" if stem == "base" else f"{stem}-"
    return Workload(f"{prefix}write-{fmt_name}", setup, f"write {stem} as {fmt_name}", throughput)


def read_workload(stem: str, fmt_name: str, throughput: bool) -> Workload:
    """Read the cached ``stem`` input in ``fmt_name`` fully into memory."""
    fmt = FORMATS[fmt_name]

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        path = _input(ctx, stem, fmt)
        return Prepared(lambda: read(lib, path, fmt), disk=path, inputs=[path])

    prefix = "" if stem == "base" else f"{stem}-"
    return Workload(f"{prefix}read-{fmt_name}", setup, f"read {stem} from {fmt_name}", throughput)


def lazy_open_workload(fmt_name: str) -> Workload:
    """``experimental.read_lazy`` on the cached input."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        path, read_lazy = _input(ctx, "base", FORMATS[fmt_name]), experimental(lib).read_lazy
        return Prepared(lambda: read_lazy(path), disk=path, inputs=[path])

    return Workload(f"lazy-open-{fmt_name}", setup, "read_lazy: open only")


def lazy_obs_workload(fmt_name: str) -> Workload:
    """Read one categorical and one float obs column of a lazily opened dataset."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        path = _input(ctx, "base", FORMATS[fmt_name])
        adata = _lazy(lib, path)

        def run() -> list[np.ndarray]:
            return [_materialise(adata.obs[c]) for c in LAZY_OBS_COLUMNS]

        return Prepared(run, disk=path, inputs=[path])

    return Workload(f"lazy-obs-{fmt_name}", setup, "read_lazy: load 1 categorical + 1 float obs column")


def lazy_subset_workload(fmt_name: str) -> Workload:
    """Subset a lazily opened dataset to random cells and load it into memory."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        path = _input(ctx, "base", FORMATS[fmt_name])
        adata, cells = _lazy(lib, path), ctx.random_cells()
        return Prepared(lambda: adata[cells].to_memory(), disk=path, inputs=[path])

    return Workload(
        f"lazy-subset-{fmt_name}", setup, f"read_lazy: {N_RANDOM_CELLS} random cells -> to_memory()"
    )


def backed_rows_workload() -> Workload:
    """Random sorted rows of X through ``read_h5ad(backed="r")``."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        path = _input(ctx, "base", FORMATS["h5ad"])
        adata, cells = lib.read_h5ad(path, backed="r"), ctx.random_cells()
        return Prepared(lambda: adata.X[cells], disk=path, inputs=[path])

    return Workload("backed-rows-h5ad", setup, f"backed='r': X[{N_RANDOM_CELLS} random sorted rows]")


def convert_workload(target: str = "zarr3-sharded") -> Workload:
    """h5ad -> zarr conversion: the library's streaming converter if it has one, else
    read_h5ad + write_zarr, both timed."""
    fmt = FORMATS[target]

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        src = _input(ctx, "base", FORMATS["h5ad"])
        configure(lib, fmt)
        out = ctx.scratch / input_name("base", fmt)
        if has_api(lib, STREAMING_CONVERTER):
            convert = lib.convert
            return Prepared(lambda: convert(src, out), disk=out, inputs=[src])
        return Prepared(lambda: write(lib, read(lib, src, FORMATS["h5ad"]), out, fmt), disk=out, inputs=[src])

    return Workload(f"convert-h5ad-to-{target}", setup, "read_h5ad + write_zarr", throughput=True)


def concat_memory_workload() -> Workload:
    """``concat`` of the in-memory parts."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        parts = [lib.read_h5ad(p) for p in ctx.parts()]
        return Prepared(lambda: lib.concat(parts))

    return Workload("concat-memory", setup, "concat of 4 in-memory parts", True, ("concat",))


def concat_disk_workload() -> Workload:
    """``experimental.concat_on_disk`` of the h5ad parts into one h5ad."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        out, parts, concat_on_disk = ctx.scratch / "concat.h5ad", ctx.parts(), experimental(lib).concat_on_disk
        return Prepared(lambda: concat_on_disk(parts, out), disk=out, inputs=parts)

    return Workload(
        "concat-on-disk-h5ad", setup, "concat_on_disk of 4 h5ad parts", True, ("experimental.concat_on_disk",)
    )


def concat_genes_workload() -> Workload:
    """``concat`` (outer join) of in-memory parts whose genes differ by 1% (each part lacks
    a different 1% of the genes)."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        parts = []
        for i, p in enumerate(ctx.parts()):
            part = lib.read_h5ad(p)
            n = part.n_vars
            drop = np.zeros(n, dtype=bool)
            step = max(1, n // 100)
            drop[i * step : (i + 1) * step] = True
            parts.append(part[:, ~drop].copy())
        return Prepared(lambda: lib.concat(parts, join="outer"))

    return Workload("concat-memory-genes1pct", setup, "outer concat of 4 in-memory parts, genes differ by 1%", True, ("concat",))


def concat_lazy_workload() -> Workload:
    """``concat`` of lazily opened h5ad parts, then ``to_memory()``."""

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        parts = [_lazy(lib, p) for p in ctx.parts()]
        return Prepared(lambda: lib.concat(parts).to_memory(), inputs=ctx.parts())

    return Workload("concat-lazy-to-memory", setup, "concat of 4 read_lazy parts + to_memory", True, ("concat",))


def concat_disk_zarr_workload() -> Workload:
    """``experimental.concat_on_disk`` of the h5ad parts into a sharded zarr v3 store."""
    fmt = FORMATS["zarr3-sharded"]

    def setup(lib: ModuleType, ctx: Context) -> Prepared:
        configure(lib, fmt)
        out, parts, concat_on_disk = ctx.scratch / "concat.zarr", ctx.parts(), experimental(lib).concat_on_disk
        return Prepared(lambda: concat_on_disk(parts, out), disk=out, inputs=parts)

    return Workload(
        "concat-on-disk-zarr3-sharded", setup, "concat_on_disk of 4 h5ad parts into sharded zarr v3", True, ("experimental.concat_on_disk",)
    )


def _build() -> dict[str, Workload]:
    items: list[Workload] = []
    for fmt_name in FORMATS:
        items += [write_workload("base", fmt_name, True), read_workload("base", fmt_name, True)]
    for fmt_name in LAZY_FORMATS:
        items += [lazy_open_workload(fmt_name), lazy_obs_workload(fmt_name), lazy_subset_workload(fmt_name)]
    items.append(backed_rows_workload())
    for stem in ("many-uns", "wide-obs"):
        for fmt_name in MANY_FORMATS:
            items += [write_workload(stem, fmt_name, False), read_workload(stem, fmt_name, False)]
    items += [convert_workload(), concat_memory_workload(), concat_disk_workload()]
    items += [concat_genes_workload(), concat_lazy_workload(), concat_disk_zarr_workload()]
    from .realfiles import workloads as real_and_startup

    items += real_and_startup()
    return {w.name: w for w in items}


WORKLOADS: dict[str, Workload] = _build()


def select(only: list[str] | None) -> list[Workload]:
    """Workloads whose name contains any of the ``only`` substrings (all if empty)."""
    if not only:
        return list(WORKLOADS.values())
    return [w for w in WORKLOADS.values() if any(s in w.name for s in only)]
