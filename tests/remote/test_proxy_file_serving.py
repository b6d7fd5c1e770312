"""The benchmark proxy's own file server (``LatencyProxy(root=...)``): whole files, byte
ranges and suffixes of small files (read on its event loop) and large ones (read in a
thread) are what the file holds; bad paths and ranges get 404 and 416."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.latency_proxy import _INLINE_READ, LatencyProxy


def _get(url: str, rng: str | None = None, method: str = "GET") -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, method=method, headers={"Range": rng} if rng else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, b"", dict(err.headers)


@pytest.fixture()
def served(tmp_path: Path):
    rng = np.random.default_rng(0)
    files = {"small.bin": rng.bytes(1000), "large.bin": rng.bytes(_INLINE_READ + 12345)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proxy = LatencyProxy(root=tmp_path, rtt=0.0).start()
    try:
        yield proxy, files
    finally:
        proxy.stop()


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_whole_files_and_ranges(served, name: str) -> None:
    proxy, files = served
    data, url = files[name], f"{proxy.url}/{name}"
    assert _get(url)[:2] == (200, data)
    status, body, headers = _get(url, "bytes=10-999")
    assert (status, body) == (206, data[10:1000]) and headers["Content-Range"] == f"bytes 10-999/{len(data)}"
    assert _get(url, "bytes=-100")[:2] == (206, data[-100:])
    assert _get(url, f"bytes={len(data) - 5}-")[:2] == (206, data[-5:])
    status, body, headers = _get(url, method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == len(data)
    assert proxy.stats()["bytes"] == len(data) + 990 + 100 + 5


def test_bad_paths_and_ranges(served) -> None:
    proxy, files = served
    assert _get(f"{proxy.url}/missing.bin")[0] == 404
    assert _get(f"{proxy.url}/../etc/passwd")[0] == 404
    assert _get(f"{proxy.url}/small.bin", "bytes=5000-")[0] == 416
    assert _get(f"{proxy.url}/small.bin", "lines=1-2")[0] == 416
