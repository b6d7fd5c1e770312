"""Schedule measurements: fresh subprocess each, interleaved A/B, repeats, medians.

For every workload the libraries alternate (annio, anndata, annio, anndata, ...) so slow
drifts of the machine (thermal, page cache, noisy neighbours) hit both alike.  A library
that fails (error or ``n/a``) is not retried for that workload; a library whose cumulative
time on a workload exceeds ``budget`` seconds stops repeating (at least one run is kept).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import BENCH_DIR, OUT_DIR
from .datagen import data_dir, load_manifest
from .workloads import Workload

REPO_ROOT = BENCH_DIR.parent
Log = Callable[[str], None]


@dataclass
class Cell:
    """All measurements of one (workload, library) pair."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"  # ok | error | n/a
    reason: str = ""
    total_seconds: float = 0.0

    def add(self, result: dict[str, Any]) -> None:
        """Record one child result."""
        if result["status"] != "ok":
            self.status, self.reason = result["status"], result.get("reason", "")
            return
        self.runs.append(result)
        self.total_seconds += result["seconds"]

    def finished(self, budget: float) -> bool:
        """Whether further repeats should be skipped."""
        return self.status != "ok" or (bool(self.runs) and self.total_seconds > budget)

    def median(self, key: str) -> float | None:
        """Median of ``key`` over successful runs (None if no run or no value)."""
        values = [r[key] for r in self.runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (raw runs included)."""
        return {"status": self.status, "reason": self.reason, "runs": self.runs}


@dataclass
class Options:
    """What to run."""

    size: str
    libs: list[str]
    repeats: int = 3
    budget: float = 120.0
    timeout: float = 1800.0
    cold: bool = False
    verbose: bool = False
    prewarm: bool = True


def ensure_data(size: str, log: Log) -> dict[str, Any]:
    """Generate the inputs in a subprocess (keeps this process small) and load the manifest."""
    manifest = load_manifest(size)
    if manifest is None:
        subprocess.run([sys.executable, "-m", "benchmarks", "gen", "--size", size], cwd=REPO_ROOT, check=True)
        manifest = load_manifest(size)
    if manifest is None:
        raise RuntimeError(f"data generation for {size!r} did not complete")
    return manifest


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


def _failure_reason(code: int, log_path: Path) -> str:
    """A short reason for a child that died without writing a result."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    return f"exit {code}: {lines[-1][:80]}" if lines else f"exit {code}"


def run_child(spec: dict[str, Any], timeout: float, log_path: Path) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its result dict."""
    with tempfile.TemporaryDirectory(prefix="annio-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
        with log_path.open("w") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.child", str(spec_path)],
                cwd=REPO_ROOT, env=_child_env(), stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"status": "error", "reason": f"timeout after {timeout:.3g} s"}
        if result_path.exists():
            return json.loads(result_path.read_text())
        return {"status": "error", "reason": _failure_reason(code, log_path)}


def _describe(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return f"{result['status']}: {result.get('reason', '')}"
    return f"{result['seconds']:.3f} s, peak {result['peak_rss'] / 2**20:.0f} MiB"


#: Outputs with more files than this are deleted at the end of the suite, not between runs.
#: ext4 skips inodes freed in the last 60-300 s when it allocates new ones, one inode-table
#: lookup each (``recently_deleted`` in its allocator): right after a 40,000-file output is
#: deleted, every file the next run creates pays for that scan. Measured here: the
#: wide-obs write (5,212 files) took 1.2 s in a fresh tree and 9 s right after deletions,
#: nearly all of it kernel time, on a machine where the same write to tmpfs takes 1.0 s.
_DEFER_FILES = 1000


def _discard(scratch: Path, deferred: Path) -> None:
    """Delete a run's outputs, or set them aside for the end when they are many small files."""
    if not scratch.exists():
        return
    n_files = sum(len(files) for _, _, files in os.walk(scratch))
    if n_files > _DEFER_FILES:
        deferred.mkdir(parents=True, exist_ok=True)
        scratch.rename(deferred / scratch.name)
    else:
        shutil.rmtree(scratch, ignore_errors=True)


def run_suite(opts: Options, workloads: list[Workload], log: Log = print) -> dict[str, dict[str, Cell]]:
    """Measure every workload for every library; returns ``{workload: {lib: Cell}}``."""
    manifest = ensure_data(opts.size, log)
    scratch_root = OUT_DIR / "scratch"
    logs = OUT_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Cell]] = {}
    for i, w in enumerate(workloads, 1):
        cells = {lib: Cell() for lib in opts.libs}
        results[w.name] = cells
        for rep in range(opts.repeats):
            for lib in opts.libs:
                if cells[lib].finished(opts.budget):
                    continue
                scratch = scratch_root / f"{lib}-{w.name}-{rep}"
                shutil.rmtree(scratch, ignore_errors=True)
                spec = {
                    "lib": lib, "workload": w.name, "data": str(data_dir(opts.size)),
                    "scratch": str(scratch), "manifest": manifest, "cold": opts.cold,
                    "verbose": opts.verbose, "prewarm": opts.prewarm,
                }
                t0 = time.perf_counter()
                result = run_child(spec, opts.timeout, logs / f"{lib}-{w.name}-{rep}.log")
                _discard(scratch, scratch_root / "deferred")
                cells[lib].add(result)
                wall = time.perf_counter() - t0
                log(f"[{i}/{len(workloads)}] {w.name:<30} {lib:<8} #{rep + 1}: {_describe(result)} [{wall:.1f} s wall]")
    shutil.rmtree(scratch_root, ignore_errors=True)
    return results
