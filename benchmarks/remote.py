"""Remote-read benchmark: annio vs anndata over HTTP behind a latency-injecting proxy.

``python -m benchmarks remote [--rtt 5,20,50] [--only lazy-open,full-zarr] [--libs annio]``

A store like a typical atlas slice (50,000 cells × 8,000 genes, sparse X and a ``counts``
layer, 40 obs columns, obsm, a few dozen uns entries) is generated once into
``benchmarks/data/remote-v1`` (zarr v3 sharded + consolidated, zarr v2, h5ad; written by
the real anndata), served read-only by wsgidav (Range-capable) on 127.0.0.1 and reached
through :class:`~benchmarks.latency_proxy.LatencyProxy`, which adds ``rtt`` per request and
shares ``--bandwidth`` bytes/s between all connections. Each workload reports time, request
count, body bytes, peak in-flight requests and the request chain depth, for each library,
and the floor: ``floor_depth × rtt + bytes needed / bandwidth`` (bytes needed: the fewest
bytes either library fetched).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import BENCH_DIR, DATA_DIR
from .latency_proxy import LatencyProxy, RemoteProxy

REMOTE_DIR = DATA_DIR / "remote-v1"
N_OBS, N_VARS, DENSITY = 50_000, 8_000, 0.01


# ----------------------------------------------------------------------------- data
def make_remote_adata() -> Any:
    import anndata as ad
    import pandas as pd

    from .datagen import Size, make_counts, make_obs, make_uns, make_var

    size = Size("remote", N_OBS, N_VARS, DENSITY)
    rng = np.random.default_rng(7)
    counts, x = make_counts(size, 7)
    obs = make_obs(rng, N_OBS, counts)
    for i in range(40 - obs.shape[1]):
        obs[f"qc_{i}"] = rng.random(N_OBS, dtype=np.float32) if i % 3 else pd.Categorical.from_codes(
            rng.integers(0, 6, N_OBS), categories=[f"g{j}" for j in range(6)])
    uns = make_uns(rng)
    for i in range(30):
        uns[f"param_{i}"] = {"value": float(i), "name": f"p{i}"} if i % 2 else rng.random(8)
    return ad.AnnData(X=x, obs=obs, var=make_var(rng, N_VARS), layers={"counts": counts},
                      obsm={"X_pca": rng.standard_normal((N_OBS, 50), dtype=np.float32),
                            "X_umap": rng.standard_normal((N_OBS, 2), dtype=np.float32)},
                      uns=uns)


def ensure_remote_data(log: Callable[[str], None] = print) -> Path:
    import anndata as ad

    marker = REMOTE_DIR / "done"
    if marker.exists():
        return REMOTE_DIR
    REMOTE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"generating {N_OBS} x {N_VARS} into {REMOTE_DIR}")
    adata = make_remote_adata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(REMOTE_DIR / "data.h5ad")
        ad.settings.zarr_write_format = 2
        adata.write_zarr(REMOTE_DIR / "v2.zarr")
        ad.settings.zarr_write_format = 3
        ad.settings.auto_shard_zarr_v3 = True
        adata.write_zarr(REMOTE_DIR / "v3.zarr")
    marker.write_text("ok")
    return REMOTE_DIR


# ----------------------------------------------------------------------------- server
class FileServer:
    """wsgidav on cheroot serving ``root`` read-only on a free port (a daemon thread)."""

    def __init__(self, root: Path) -> None:
        import logging

        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp

        config = {
            "host": "127.0.0.1", "port": 0,
            "provider_mapping": {"/": {"root": str(root), "readonly": True}},
            "simple_dc": {"user_mapping": {"*": True}},
            "http_authenticator": {"accept_basic": False, "accept_digest": False, "default_to_digest": False},
            "dir_browser": {"enable": False}, "verbose": 1,
            "logging": {"enable": False, "enable_loggers": []},
            "property_manager": None, "lock_storage": None,
        }  # fmt: skip
        logging.getLogger("wsgidav").setLevel(logging.WARNING)
        self.server = wsgi.Server(("127.0.0.1", 0), WsgiDAVApp(config), numthreads=32,
                                   request_queue_size=1024)  # default backlog 5: bursts of connects refused
        self.server.prepare()
        self.url = f"http://127.0.0.1:{self.server.bind_addr[1]}"
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------------------- workloads
RANDOM_CELLS = np.sort(np.random.default_rng(1).choice(N_OBS, 1000, replace=False))


def _anndata_zarr(url: str) -> Any:
    import zarr
    from obstore.store import HTTPStore
    from zarr.storage import ObjectStore

    return zarr.open_group(ObjectStore(HTTPStore.from_url(url, client_options={"allow_http": True}), read_only=True), mode="r")


def _lazy(lib: Any, url: str) -> Any:
    if lib.__name__ == "annio":
        return lib.experimental.read_lazy(url)
    return lib.experimental.read_lazy(_anndata_zarr(url))


def _lazy_h5ad(lib: Any, url: str) -> Any:
    if lib.__name__ == "annio":
        return lib.experimental.read_lazy(url)
    import fsspec
    import h5py

    # anndata reads a remote h5ad lazily from an h5py file over an fsspec file object
    return lib.experimental.read_lazy(h5py.File(fsspec.filesystem("http").open(url, "rb"), "r"))


def _full_zarr(lib: Any, url: str) -> Any:
    return lib.read_zarr(url) if lib.__name__ == "annio" else lib.read_zarr(_anndata_zarr(url))


def _full_h5ad(lib: Any, url: str) -> Any:
    if lib.__name__ == "annio":
        return lib.read_h5ad(url)
    import fsspec

    with fsspec.open(url, "rb") as f:
        return lib.read_h5ad(f)


def _to_memory(obj: Any) -> Any:
    return obj.to_memory()


#: name → (store file, function(lib, url), floor depth in round trips)
WORKLOADS: dict[str, tuple[str, Callable[[Any, str], Any], int]] = {
    "lazy-open": ("v3.zarr", _lazy, 2),
    "lazy-obs": ("v3.zarr", lambda lib, url: _to_memory(_lazy(lib, url).obs), 3),
    "lazy-1000-random": ("v3.zarr", lambda lib, url: _to_memory(_lazy(lib, url)[RANDOM_CELLS]), 4),
    "lazy-5000-slice": ("v3.zarr", lambda lib, url: _to_memory(_lazy(lib, url)[20_000:25_000]), 4),
    "lazy-open-h5ad": ("data.h5ad", _lazy_h5ad, 3),
    "lazy-5000-slice-h5ad": ("data.h5ad", lambda lib, url: _to_memory(_lazy_h5ad(lib, url)[20_000:25_000]), 5),
    "full-zarr3": ("v3.zarr", _full_zarr, 3),
    "full-zarr2": ("v2.zarr", _full_zarr, 2),
    "full-h5ad": ("data.h5ad", _full_h5ad, 3),
}


def serve_forever(root: Path, rtt: float, bandwidth: float | None) -> None:
    """Serve ``root`` behind a proxy; print the proxy URL; stop when stdin closes."""
    import sys

    with LatencyProxy(root=root, rtt=rtt, bandwidth=bandwidth) as proxy:
        print(proxy.url, flush=True)
        sys.stdin.read()


def start_proxy_process(root: Path, rtt: float, bandwidth: float | None) -> RemoteProxy:
    """File server + proxy in a subprocess, so that their CPU work (and GIL) does not slow
    the client being measured."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.remote", "serve", str(root), str(rtt), str(bandwidth or 0)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(BENCH_DIR.parent), text=True)
    url = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError("proxy subprocess did not start")
    return RemoteProxy(url, proc)


#: Modules annio imports on first use; ``import anndata`` loads them all up front, so they
#: are imported before anything is timed (else the first annio workload pays ~1 s of imports).
WARM_IMPORTS = ("zarr", "zarr.storage", "obstore", "fsspec", "aiohttp", "h5py", "pandas", "scipy.sparse", "dask.array")


def warm_library(libname: str) -> None:
    """Import every module of ``libname`` before anything is timed, as ``import anndata``
    does for anndata: annio imports its own modules on first use, and where bytecode is not
    cached (``PYTHONDONTWRITEBYTECODE``, a fresh checkout) the first workload would otherwise
    pay ~0.2 s compiling them."""
    import contextlib
    import importlib
    import pkgutil

    lib = importlib.import_module(libname)
    for info in pkgutil.walk_packages(lib.__path__, f"{libname}."):
        if ".tests" in info.name or info.name.endswith("__main__"):
            continue
        with contextlib.suppress(ImportError):  # an optional extra that is not installed
            importlib.import_module(info.name)


def _measure(func: Callable[[Any, str], Any], lib: Any, url: str, proxy: Any, timeout: float) -> dict[str, Any]:
    """Time ``func(lib, url)`` with the proxy's statistics; an error or a run longer than
    ``timeout`` seconds is reported instead. A run that hangs is left behind in its daemon
    thread, so the other workloads are still measured.

    The cyclic collector is paused during each run, for both libraries, and run between
    them. A collection in fsspec's event-loop thread that frees an h5py object waits for
    h5py's global lock, held by the thread reading through fsspec, which waits for that loop:
    anndata's remote lazy h5ad open hung so for good (seen with py-spy). annio pauses the
    collector around its own fetches; here neither library meets it."""
    import gc
    import threading

    outcome: dict[str, Any] = {}

    def call() -> None:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                func(lib, url)
            outcome["time"] = time.perf_counter() - t0
        except Exception as err:  # reported, not fatal
            outcome["error"] = f"{type(err).__name__}: {err}"[:200]

    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    worker = threading.Thread(target=call, name="remote-workload", daemon=True)
    try:
        worker.start()
        worker.join(timeout)
    finally:
        if enabled:
            gc.enable()
    if worker.is_alive():
        return {"error": f"timeout: still running after {timeout:.0f} s"}
    return outcome if "error" in outcome else {"time": outcome["time"], **proxy.stats()}


def run(rtts: list[float], only: list[str] | None, libs: list[str], bandwidth: float, log: Callable[[str], None] = print,
        timeout: float = 300.0) -> list[dict[str, Any]]:
    import importlib

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    for libname in libs:
        warm_library(libname)
    root = ensure_remote_data(log)
    results: list[dict[str, Any]] = []
    if True:
        for rtt in rtts:
            with start_proxy_process(root, rtt, bandwidth) as proxy:
                for name, (target, func, depth) in WORKLOADS.items():
                    if only and not any(o in name for o in only):
                        continue
                    row: dict[str, Any] = {"workload": name, "rtt_ms": rtt * 1000, "floor_depth": depth}
                    for libname in libs:
                        lib = importlib.import_module(libname)
                        importlib.import_module(f"{libname}.experimental")
                        proxy.reset()
                        row[libname] = _measure(func, lib, f"{proxy.url}/{target}", proxy, timeout)
                        log(f"{name} rtt={rtt * 1000:.0f}ms {libname}: {row[libname]}")
                    fetched = [row[lib]["bytes"] for lib in libs if "bytes" in row[lib]]
                    row["floor"] = depth * rtt + (min(fetched) if fetched else 0) / bandwidth
                    results.append(row)
    return results


def render(results: list[dict[str, Any]], libs: list[str], bandwidth: float) -> str:
    lines = [f"Remote reads over HTTP through the latency proxy (bandwidth {bandwidth / 1e6:.0f} MB/s shared). "
             "time s / requests / MiB / peak in flight / chain depth.", ""]
    head = "| workload | RTT ms | " + " | ".join(libs) + " | floor s |" + (" annio/anndata |" if len(libs) == 2 else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for row in results:
        cells = []
        for lib in libs:
            r = row.get(lib, {})
            cells.append(r["error"][:40] if "error" in r else
                         f"{r['time']:.2f} / {r['requests']} / {r['bytes'] / 2**20:.1f} / {r['peak_in_flight']} / {r['chain_depth']}")
        ratio = ""
        if len(libs) == 2 and all("time" in row.get(lib, {}) for lib in libs):
            ratio = f" {row[libs[0]]['time'] / row[libs[1]]['time']:.2f} |"
        lines.append(f"| {row['workload']} | {row['rtt_ms']:.0f} | " + " | ".join(cells) + f" | {row['floor']:.2f} |" + ratio)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve_forever(Path(argv[1]), float(argv[2]), float(argv[3]) or None)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks remote")
    parser.add_argument("--rtt", default="20", help="comma-separated round trips in ms (e.g. 5,20,50)")
    parser.add_argument("--only", default="", help="comma-separated substrings of workload names")
    parser.add_argument("--libs", default="annio,anndata")
    parser.add_argument("--bandwidth", type=float, default=125e6, help="bytes/s shared by all connections")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a hung workload is reported and skipped")
    parser.add_argument("--json", default=str(BENCH_DIR / "out" / "remote.json"))
    args = parser.parse_args(argv)
    libs = [x for x in args.libs.split(",") if x]
    only = [x for x in args.only.split(",") if x] or None
    results = run([float(x) / 1000 for x in args.rtt.split(",")], only, libs, args.bandwidth, timeout=args.timeout)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(render(results, libs, args.bandwidth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
