"""The machine and its limits: CPU, RAM, versions, memcpy, disk and codec throughput.

These numbers put the workload timings in context: a read of uncompressed h5ad cannot
beat the disk (or page-cache) read bandwidth, a gzip write cannot beat single-core zlib
times the number of cores, and so on.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import OUT_DIR

VERSIONED = ("annio", "anndata", "numpy", "scipy", "pandas", "zarr", "h5py", "numcodecs", "zarrs", "dask", "xarray")
_BLOCK = 64 * 2**20


def _best(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Best wall-clock time of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, Any]:
    """CPU, cores, RAM, OS."""
    import psutil

    return {
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_bytes": psutil.virtual_memory().total,
        "os": f"{platform.system()} {platform.release()}",
    }


def versions() -> dict[str, str]:
    """Versions of python and the relevant packages (without importing them)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def memcpy_bandwidth(nbytes: int) -> float:
    """Bytes per second of ``np.copyto`` between two preallocated arrays."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    return src.nbytes / _best(lambda: np.copyto(dst, src))


def first_touch_rates(nbytes: int, samples: int = 3) -> dict[str, float]:
    """Bytes per second of writing ``nbytes`` of freshly allocated memory, fresh (a new
    process each sample, after a pause) and reused (freed and allocated again at once).

    On a virtual machine whose guest returns free pages to the host (Linux free page
    reporting), fresh memory is backed by the host on first touch, which can cost far more
    than the kernel's page zeroing: every workload that allocates its output pays it, and
    the same workload varies with how much recently freed memory its process can reuse.
    """
    import subprocess
    import sys

    code = (
        f"import numpy as np, time; n = {nbytes} // 4\n"
        "t = time.perf_counter(); a = np.ones(n, np.float32); f = time.perf_counter() - t; del a\n"
        "t = time.perf_counter(); a = np.ones(n, np.float32); r = time.perf_counter() - t\n"
        "print(f, r)"
    )
    fresh, reused = [], []
    for _ in range(samples):
        time.sleep(3)  # past the guest's reporting delay (2 s in Linux)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        fresh.append(nbytes / float(out[0]))
        reused.append(nbytes / float(out[1]))
    return {"fresh_best": max(fresh), "fresh_worst": min(fresh), "reused_best": max(reused)}


def disk_bandwidth(nbytes: int, directory: Path = OUT_DIR) -> dict[str, float]:
    """Write+fsync, read after POSIX_FADV_DONTNEED (may still hit cache) and warm read."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "_disk_probe.bin"
    block = np.random.default_rng(0).integers(0, 255, _BLOCK, dtype=np.uint8).tobytes()
    buf = bytearray(_BLOCK)

    def read() -> None:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buf):
                pass

    try:
        t0 = time.perf_counter()
        with path.open("wb", buffering=0) as f:
            for _ in range(max(1, nbytes // _BLOCK)):
                f.write(block)
            os.fsync(f.fileno())
        write_s = time.perf_counter() - t0
        size = path.stat().st_size
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        t0 = time.perf_counter()
        read()
        cold_s = time.perf_counter() - t0
        warm_s = _best(read, 2)
    finally:
        path.unlink(missing_ok=True)
    return {"write_fsync": size / write_s, "read_evicted": size / cold_s, "read_cached": size / warm_s}


def codec_sample(nbytes: int) -> dict[str, np.ndarray]:
    """Realistic CSR ``data`` arrays (log-normalised X and raw counts), about nbytes each."""
    from .datagen import Size, make_counts

    n_obs = max(1000, nbytes // 4 // 250)
    counts, x = make_counts(Size("codec-sample", n_obs, 5000, 0.05), seed=7)
    return {"X (log1p float32)": x.data, "counts (float32)": counts.data}


def codec_throughput(data: np.ndarray, chunk: int = 2**20) -> list[dict[str, Any]]:
    """Single-core compress/decompress throughput (uncompressed bytes/s) per codec.

    The array is cut into ``chunk``-byte pieces, like a chunked store would.
    """
    from numcodecs import Zlib, Zstd

    raw = data.tobytes()
    pieces = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    rows = []
    for label, codec in (("zstd 0 (=3)", Zstd(level=0)), ("zstd 1", Zstd(level=1)), ("zlib/gzip 4", Zlib(level=4))):
        encoded = [codec.encode(p) for p in pieces]
        comp_s = _best(lambda c=codec: [c.encode(p) for p in pieces])
        dec_s = _best(lambda c=codec, e=encoded: [c.decode(x) for x in e])
        ratio = len(raw) / sum(len(e) for e in encoded)
        rows.append({"codec": label, "ratio": ratio, "compress": len(raw) / comp_s, "decompress": len(raw) / dec_s})
    return rows


def measure_limits(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """All machine limits; ``quick`` uses smaller buffers (smoke runs)."""
    scale = 8 if quick else 1
    log("measuring machine limits (memcpy, disk, codecs) ...")
    limits: dict[str, Any] = {"memcpy": memcpy_bandwidth(2**30 // scale), "memcpy_bytes": 2**30 // scale}
    limits["first_touch"] = first_touch_rates(2**30 // scale)
    limits["disk"] = disk_bandwidth(2 * 2**30 // scale)
    limits["disk_bytes"] = 2 * 2**30 // scale
    limits["codecs"] = {name: codec_throughput(arr) for name, arr in codec_sample(64 * 2**20 // scale).items()}
    return limits
