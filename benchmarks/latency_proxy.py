"""A latency- and bandwidth-injecting HTTP reverse proxy, for benchmarks and tests.

:class:`LatencyProxy` listens on ``127.0.0.1`` (a free port) in a thread of its own and
forwards every request to an upstream HTTP server (the wsgidav server of the remote tests,
SeaweedFS' S3 gateway, ...). Each request waits ``rtt`` seconds before it is forwarded (one
round trip, as a client in another region would see), and response bodies can be limited to
``bandwidth`` bytes per second shared by all connections. Every request is recorded
(method, path, ``Range``, start, end, bytes), so a run can report:

* ``requests`` — how many requests were made;
* ``bytes`` — response body bytes;
* ``peak_in_flight`` — the most requests being answered at one moment;
* ``chain_depth`` — the longest chain of requests each started after the previous one
  ended: the number of round trips a client waited for one after another.

The ``Host`` header is passed through unchanged, so signed S3 requests made against the
proxy's address stay valid upstream.

>>> with LatencyProxy("http://127.0.0.1:8000", rtt=0.02) as proxy:   # doctest: +SKIP
...     read_something(proxy.url)
...     print(proxy.stats())
"""

from __future__ import annotations

import asyncio
import bisect
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LatencyProxy", "ProxyRequest", "chain_depth", "RemoteProxy", "CONTROL_PREFIX"]

#: Reads up to this many bytes are made on the proxy's event loop, larger ones in a thread.
_INLINE_READ = 1 << 20

#: Requests below this path are answered by the proxy itself (``stats``, ``reset``), uncounted.
CONTROL_PREFIX = "/__proxy__/"

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                "proxy-authorization", "proxy-authenticate", "content-length", "content-encoding"}


@dataclass
class ProxyRequest:
    method: str
    path: str
    range: str | None
    start: float
    end: float = 0.0
    status: int = 0
    nbytes: int = 0


def chain_depth(requests: list[ProxyRequest]) -> int:
    """The longest chain of requests in which each one started after the previous ended."""
    done = sorted((r for r in requests if r.end), key=lambda r: r.start)
    ends: list[tuple[float, int]] = []  # (end time, depth of the chain ending there), sorted by end
    best_upto: list[int] = []  # best_upto[i] = max depth among ends[:i+1]
    deepest = 0
    for r in done:
        i = bisect.bisect_right(ends, (r.start, float("inf")))
        depth = 1 + (best_upto[i - 1] if i else 0)
        j = bisect.bisect_right(ends, (r.end, depth))
        ends.insert(j, (r.end, depth))
        best_upto = [0] * len(ends)
        running = 0
        for k, (_, d) in enumerate(ends):
            running = max(running, d)
            best_upto[k] = running
        deepest = max(deepest, depth)
    return deepest


class _Bandwidth:
    """A shared link: body bytes are released at ``rate`` bytes per second in total."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0

    async def take(self, nbytes: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + nbytes / self.rate
        delay = self._next - now
        if delay > 0:
            await asyncio.sleep(delay)


class LatencyProxy:
    """Reverse proxy to ``upstream`` adding ``rtt`` seconds per request (see module doc); with
    ``root`` instead, it serves the files below that directory itself (GET/HEAD with
    ``Range``), which keeps a slow upstream's CPU time out of benchmarks."""

    def __init__(self, upstream: str | None = None, *, rtt: float = 0.02, bandwidth: float | None = None, root: Any = None) -> None:
        if (upstream is None) == (root is None):
            raise ValueError("give exactly one of upstream (a URL to forward to) and root (a directory to serve)")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.root = None if root is None else Path(root).resolve()
        self.rtt = float(rtt)
        self._bw = _Bandwidth(bandwidth)
        self.requests: list[ProxyRequest] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0

    @property
    def bandwidth(self) -> float | None:
        return self._bw.rate

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- statistics ------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.requests = []
            self.peak_in_flight = self._in_flight

    def stats(self) -> dict[str, Any]:
        with self._lock:
            reqs = list(self.requests)
            peak = self.peak_in_flight
        return {
            "requests": len(reqs),
            "bytes": sum(r.nbytes for r in reqs),
            "peak_in_flight": peak,
            "chain_depth": chain_depth(reqs),
        }

    # -- server ----------------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        if request.path.startswith(CONTROL_PREFIX):  # statistics for a client in another process
            if request.path.endswith("/reset"):
                self.reset()
            if request.path.endswith("/log"):
                with self._lock:
                    reqs = list(self.requests)
                return web.json_response([[r.method, r.path, r.range, r.start, r.end, r.nbytes] for r in reqs])
            return web.json_response(self.stats())

        entry = ProxyRequest(request.method, request.path_qs, request.headers.get("Range"), time.monotonic())
        with self._lock:
            self.requests.append(entry)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            await asyncio.sleep(self.rtt)
            if self.root is not None:
                return await self._serve_file(request, entry)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
            body = await request.read()
            status, out_headers, payload = await self._forward(request, headers, body)
            entry.status = status
            entry.nbytes = len(payload)
            await self._bw.take(len(payload))
            return web.Response(status=entry.status, headers=out_headers, body=payload)
        finally:
            entry.end = time.monotonic()
            with self._lock:
                self._in_flight -= 1

    async def _forward(self, request: Any, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request upstream. A refused connect is retried: the upstream is a local test
        server whose accept thread can fall behind under load, which no remote store would show
        and which would otherwise reach the client as a 500 and a retry (an extra round trip)."""
        import aiohttp

        for attempt in range(5):
            try:
                async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                                 data=body or None, allow_redirects=False,
                                                 auto_decompress=False) as upstream:
                    payload = await upstream.read()
                    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
                    if request.method == "HEAD" and "Content-Length" in upstream.headers:
                        out_headers["Content-Length"] = upstream.headers["Content-Length"]
                    if upstream.headers.get("Content-Encoding"):
                        out_headers["Content-Encoding"] = upstream.headers["Content-Encoding"]
                    return upstream.status, out_headers, payload
            except aiohttp.ClientConnectorError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _serve_file(self, request: Any, entry: ProxyRequest) -> Any:
        """Answer GET/HEAD from ``root`` (single ``Range`` requests as real servers do)."""
        from aiohttp import web

        path = (self.root / request.path.lstrip("/")).resolve()
        if self.root not in path.parents and path != self.root or not path.is_file():
            entry.status = 404
            return web.Response(status=404)
        size = path.stat().st_size
        start, stop, status = 0, size, 200
        rng = request.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                entry.status = 416
                return web.Response(status=416)
            if m.group(1):
                start = int(m.group(1))
                stop = min(size, int(m.group(2)) + 1) if m.group(2) else size
            else:
                start = max(0, size - int(m.group(2)))
            if start >= size:
                entry.status = 416
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        entry.status = status
        if request.method == "HEAD":
            headers["Content-Length"] = str(stop - start)
            return web.Response(status=status, headers=headers)

        def read() -> bytes:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(stop - start)

        # small reads come from the page cache in microseconds: a hop to the executor and back
        # would cost more than the read and serialise a burst of requests behind the GIL
        payload = read() if stop - start <= _INLINE_READ else await asyncio.get_running_loop().run_in_executor(None, read)
        entry.nbytes = len(payload)
        await self._bw.take(len(payload))
        return web.Response(status=status, headers=headers, body=payload)

    async def _serve(self) -> None:
        import aiohttp
        from aiohttp import web

        self._stop = asyncio.Event()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), skip_auto_headers=("User-Agent",))
        app = web.Application(client_max_size=2**31)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock, backlog=1024)  # bursts of hundreds of connections
        await site.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()

    def start(self) -> LatencyProxy:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="annio-latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RemoteProxy:
    """Client side of a proxy running in another process (see :func:`serve_in_subprocess`):
    the same ``url``, ``reset()`` and ``stats()`` as :class:`LatencyProxy`."""

    def __init__(self, url: str, process: Any = None) -> None:
        self.url = url
        self.process = process

    def _call(self, what: str) -> dict[str, Any]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}{CONTROL_PREFIX}{what}", timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("reset")

    def stats(self) -> dict[str, Any]:
        return self._call("stats")

    def log(self) -> list[list[Any]]:
        """Every request since the last reset: ``[method, path, range, start, end, bytes]``
        (times on the proxy's monotonic clock)."""
        return self._call("log")  # type: ignore[return-value]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self) -> RemoteProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
