"""Workloads on real small files and on start-up: what people feel most often.

* ``real-*``: files shipped inside scverse packages (read in place, never copied into the
  repository), read and written in every format: scanpy's ``pbmc68k_reduced`` h5ad and the
  ``krumsiek11`` / ``toggleswitch`` text data sets it ships (see :data:`REAL_FILES`; a file
  whose package is not installed is skipped, with a note on stderr). Copies in the other
  formats are written by anndata in the untimed setup, so both libraries read the same
  files. (Checked and found without data files in their wheels: scvelo, muon, ehrapy,
  pegasusio.)
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .formats import FORMATS, configure, read, write


def _scanpy_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    return path if path.exists() else None


def _scanpy_loader(function: str):
    """``anndata.AnnData`` built by ``scanpy.datasets.<function>()`` (which reads the text
    file scanpy ships, in place)."""

    def load(_path: Path):
        import scanpy

        adata = getattr(scanpy.datasets, function)()
        adata.uns = _str_keys(adata.uns)  # krumsiek11's uns["highlights"] has int keys anndata cannot write
        return adata

    return load


def _str_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _str_keys(v) for k, v in value.items()}
    return value


def _h5ad_loader(path: Path):
    import anndata

    return anndata.read_h5ad(path)


@dataclass(frozen=True)
class RealFile:
    """A small real data file shipped inside a package, and how anndata loads it."""

    find: Callable[[], Path | None]  # where the installed file is (None: not installed)
    load: Callable[[Path], Any]  # anndata.AnnData from it
    install: str  # what to install to get it

    @property
    def is_h5ad(self) -> bool:
        return self.load is _h5ad_loader


#: pbmc68k: scanpy's 10x_pbmc68k_reduced.h5ad (700 cells, dense X, raw, obsm, obsp, uns;
#: an old-style h5ad, read as shipped). krumsiek11 (640 x 11, simulated myeloid
#: differentiation, categorical obs) and toggleswitch (200 x 2): the text files scanpy
#: ships, loaded by scanpy and written by anndata — files whose every element is tiny.
REAL_FILES = {
    "pbmc68k": RealFile(lambda: _scanpy_file("10x_pbmc68k_reduced.h5ad"), _h5ad_loader, "scanpy"),
    "krumsiek11": RealFile(lambda: _scanpy_file("krumsiek11.txt"), _scanpy_loader("krumsiek11"), "scanpy"),
    "toggleswitch": RealFile(lambda: _scanpy_file("toggleswitch.txt"), _scanpy_loader("toggleswitch"), "scanpy"),
}


def _real_input(name: str, fmt_name: str, scratch: Path) -> Path:
    """The real file in ``fmt_name``: a shipped h5ad itself, or a copy written by anndata."""
    real = REAL_FILES[name]
    source = real.find()
    if source is None:
        raise FileNotFoundError(f"real file {name!r} not installed (pip install {real.install})")
    if fmt_name == "h5ad" and real.is_h5ad:
        return source
    import anndata

    fmt = FORMATS[fmt_name]
    configure(anndata, fmt)
    out = scratch / f"real-{name}-{fmt_name}{fmt.suffix}"
    if not out.exists():
        write(anndata, real.load(source), out, fmt)
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
    for name, real in REAL_FILES.items():
        if real.find() is None:
            print(f"skipping the real-file workloads of {name!r}: not installed (pip install {real.install})", file=sys.stderr)
            continue
        for fmt_name in FORMATS:
            items += [real_read_workload(name, fmt_name), real_write_workload(name, fmt_name)]
    items += [startup_import_workload(), startup_info_workload("h5ad"), startup_info_workload("zarr3-sharded")]
    return items
