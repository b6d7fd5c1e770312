"""One measurement in a fresh process: ``python -m benchmarks.child SPEC.json``.

The spec names the library, the workload and the directories; the result (JSON) is
written to ``spec["result"]``.  Order of events: import the library and load what it loads
lazily, check optional API, run the workload's setup, (optionally evict inputs from the page cache), reset the
kernel's peak-RSS counter, time the workload, read the peak RSS, flush the outputs to
disk (``fsync``, untimed, so dirty pages do not leak into the next measurement) and
measure the size on disk of the output.  Any exception becomes ``status: error`` with a short
reason instead of a crash.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from .workloads import WORKLOADS, Context, has_api

_STATUS = Path("/proc/self/status")


def short_reason(exc: BaseException, limit: int = 90) -> str:
    """``ExcType: first line of message``, truncated."""
    text = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def _status_kib(key: str, source: Path | None = None) -> int | None:
    try:
        for line in (source or _STATUS).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0, ``echo 5 > /proc/self/clear_refs``); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def process_maxrss() -> int:
    """Peak RSS of this whole process in bytes (``getrusage``, kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def files_under(path: Path) -> list[Path]:
    """``path`` itself when it is a file, else every file in its tree."""
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def evict(paths: list[Path]) -> None:
    """Ask the kernel to drop cached pages of every file under ``paths`` (no root needed)."""
    for f in (f for top in paths for f in files_under(top)):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cache(paths: list[Path]) -> None:
    """Read every file under ``paths`` once, so that a warm run finds its inputs in the page
    cache whichever library ran before it (the large inputs do not all fit beside the
    outputs of earlier runs: the first run of a workload read them from disk)."""
    for f in (f for top in paths for f in files_under(top)):
        with open(f, "rb", buffering=0) as fh:
            while fh.read(8 << 20):
                pass


def flush(path: Path | None) -> None:
    """fsync every file under ``path`` so dirty pages do not leak into the next measurement."""
    if path is None or not path.exists():
        return
    for f in files_under(path):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def disk_usage(path: Path | None) -> tuple[int | None, int | None]:
    """(apparent bytes, file count) of a file or directory tree."""
    if path is None or not path.exists():
        return None, None
    files = files_under(path)
    return sum(p.stat().st_size for p in files), len(files)


# What ``import anndata`` loads; annio loads these (and its own modules) on first use.
_DEPENDENCIES = ("numpy", "pandas", "scipy.sparse", "h5py", "zarr", "numcodecs", "dask.array")


def load_everything(lib: Any) -> None:
    """Load the library's dependencies and resolve every public name of its faces before
    the timer, so no library pays start-up inside a timed region (start-up has workloads of
    its own: ``startup-*``, each in a fresh interpreter)."""
    for name in _DEPENDENCIES:
        importlib.import_module(name)
    for face in (lib, getattr(lib, "io", None), getattr(lib, "experimental", None)):
        for name in getattr(face, "__all__", ()):
            getattr(face, name, None)


def prewarm(nbytes: int) -> None:
    """Write and free ``nbytes`` of memory just before the timer.

    This machine is a VM whose guest hands free memory back to its host (free page
    reporting, ~2 s after it is freed); the first touch of such memory costs 1-2.5 s per GB,
    and whether a workload's output lands in such memory or in memory its process just freed
    is luck (identical runs of one workload varied 0.1-4 s). Freeing a buffer at least the
    size of the output right before the timer gives every library the same start: memory
    the kernel holds, as on a machine without a balloon.
    """
    import numpy as np

    available = (_status_kib("MemAvailable", Path("/proc/meminfo")) or 0) * 1024
    n = min(nbytes, available // 4)
    if n > 0:
        buf = np.ones(n // 8)
        del buf


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by ``spec``; never raises."""
    stage = "import"
    try:
        lib_name, _, config = spec["lib"].partition("+")
        workload = WORKLOADS[spec["workload"]]
        if config == "zarrs" and "zarr" not in workload.name:
            return {"status": "n/a", "reason": "the zarrs pipeline only changes zarr workloads"}
        lib = importlib.import_module(lib_name)
        if config == "zarrs":
            import zarr

            zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"})
        elif config:
            raise ValueError(f"unknown library configuration {config!r}")
        load_everything(lib)
        missing = [r for r in workload.requires if not has_api(lib, r)]
        if missing:
            return {"status": "n/a", "reason": f"no {spec['lib']}.{missing[0]}"}
        stage = "setup"
        ctx = Context(Path(spec["data"]), Path(spec["scratch"]), spec["manifest"])
        ctx.scratch.mkdir(parents=True, exist_ok=True)
        prepared = workload.setup(lib, ctx)
        gc.collect()
        if spec.get("cold"):
            evict(prepared.inputs)
        else:
            cache(prepared.inputs)
        if spec.get("prewarm") and workload.throughput:  # small workloads: the freeing costs more
            prewarm(4 * int(ctx.manifest["x_nbytes"]))
        stage = "run"
        rss_before = (_status_kib("VmRSS") or 0) * 1024
        exact_peak = reset_peak_rss()
        t0 = time.perf_counter()
        result = prepared.run()
        seconds = time.perf_counter() - t0
        hwm = _status_kib("VmHWM")
        peak = hwm * 1024 if exact_peak and hwm else process_maxrss()
        del result
        stage = "measure"
        if prepared.disk is not None and ctx.scratch in prepared.disk.parents:
            flush(prepared.disk)
        disk_bytes, n_files = disk_usage(prepared.disk)
    except Exception as exc:
        if spec.get("verbose"):
            traceback.print_exc()
        reason = short_reason(exc)
        return {"status": "error", "reason": reason if stage == "run" else f"{stage}: {reason}"}
    return {
        "status": "ok",
        "seconds": seconds,
        "peak_rss": peak,
        "rss_before": rss_before,
        "peak_exact": exact_peak,
        "process_maxrss": process_maxrss(),
        "disk_bytes": disk_bytes,
        "n_files": n_files,
    }


def main(argv: list[str]) -> int:
    """Entry point: read the spec, measure, write the result file."""
    spec = json.loads(Path(argv[0]).read_text())
    if not spec.get("verbose"):
        warnings.simplefilter("ignore")
    result = measure(spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
