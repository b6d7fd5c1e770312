"""Workloads on real small files and on start-up: what people feel most often.

* ``real-*``: files shipped inside scverse packages (read in place, never copied into the
  repository), read and written in every format. Today: scanpy's ``pbmc68k_reduced``
  (700 cells, dense X, raw, obsm, obsp, uns). The zarr copies are written by anndata in the
  untimed setup, so both libraries read the same files.
* ``startup-import``: a fresh interpreter importing the library.
* ``startup-info-h5ad`` / ``startup-info-zarr``: a fresh process printing a summary of the
  input (the h5ad file, the sharded zarr v3 store) — annio's ``annio info FILE`` command; for
  anndata, what its users run instead: ``print(anndata.read_h5ad(FILE, backed="r"))``, and
  ``print(anndata.experimental.read_lazy(STORE))`` for zarr.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from .formats import FORMATS, configure, read, write


def _scanpy_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    return path if path.exists() else None


REAL_FILES = {"pbmc68k": lambda: _scanpy_file("10x_pbmc68k_reduced.h5ad")}


def _real_input(name: str, fmt_name: str, scratch: Path) -> Path:
    """The real file in ``fmt_name``: the shipped h5ad itself, or a copy written by anndata."""
    source = REAL_FILES[name]()
    if source is None:
        raise FileNotFoundError(f"real file {name!r} not installed (pip install scanpy)")
    if fmt_name == "h5ad":
        return source
    import anndata

    fmt = FORMATS[fmt_name]
    configure(anndata, fmt)
    out = scratch / f"real-{name}-{fmt_name}{fmt.suffix}"
    if not out.exists():
        write(anndata, anndata.read_h5ad(source), out, fmt)
    return out


def real_read_workload(name: str, fmt_name: str):
    from .workloads import Prepared, Workload

    fmt = FORMATS[fmt_name]

    def setup(lib: ModuleType, ctx) -> Prepared:
        path = _real_input(name, fmt_name, ctx.scratch)
        return Prepared(lambda: read(lib, path, fmt), disk=path, inputs=[path])

    return Workload(f"real-read-{fmt_name}-{name}", setup, f"read the real file {name} ({fmt_name})")


def real_write_workload(name: str, fmt_name: str):
    from .workloads import Prepared, Workload

    fmt = FORMATS[fmt_name]

    def setup(lib: ModuleType, ctx) -> Prepared:
        adata = lib.read_h5ad(_real_input(name, "h5ad", ctx.scratch))
        configure(lib, fmt)
        out = ctx.scratch / f"out-{name}.{fmt_name}"
        return Prepared(lambda: write(lib, adata, out, fmt), disk=out)

    return Workload(f"real-write-{fmt_name}-{name}", setup, f"write the real file {name} as {fmt_name}")


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def startup_import_workload():
    from .workloads import Prepared, Workload

    def setup(lib: ModuleType, ctx) -> Prepared:
        cmd = [sys.executable, "-c", f"import {lib.__name__}"]
        return Prepared(lambda: _run(cmd))

    return Workload("startup-import", setup, "fresh interpreter: import the library")


def _annio_command() -> list[str]:
    """The installed ``annio`` script next to this interpreter (what users run), else ``-m``."""
    script = Path(sys.executable).with_name("annio")
    return [str(script)] if script.exists() else [sys.executable, "-m", "annio.cli.main"]


def startup_info_workload(fmt_name: str = "h5ad"):
    """``annio info FILE`` vs anndata's cheapest summary of the same file: the backed
    ``read_h5ad`` for h5ad, ``experimental.read_lazy`` for zarr (anndata has no backed zarr)."""
    from .workloads import Prepared, Workload, _input

    fmt = FORMATS[fmt_name]

    def setup(lib: ModuleType, ctx) -> Prepared:
        path = _input(ctx, "base", fmt)
        if lib.__name__ == "annio":
            cmd = [*_annio_command(), "info", str(path)]
        elif fmt.suffix == ".h5ad":
            code = f"import {lib.__name__} as a; print(a.read_h5ad({str(path)!r}, backed='r'))"
            cmd = [sys.executable, "-c", code]
        else:
            code = f"import {lib.__name__}.experimental as e; print(e.read_lazy({str(path)!r}))"
            cmd = [sys.executable, "-c", code]
        return Prepared(lambda: _run(cmd), disk=path)

    label = "h5ad" if fmt_name == "h5ad" else "zarr"
    return Workload(f"startup-info-{label}", setup, f"fresh process: print a summary of the input file ({fmt_name})")


def workloads() -> list:
    """Every workload of this module."""
    items = []
    for name in REAL_FILES:
        for fmt_name in FORMATS:
            items += [real_read_workload(name, fmt_name), real_write_workload(name, fmt_name)]
    items += [startup_import_workload(), startup_info_workload("h5ad"), startup_info_workload("zarr3-sharded")]
    return items
