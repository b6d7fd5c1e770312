"""obstore stores are reused per (URL, options): reopening a URL keeps its client and open
connections; other options get their own store; the cache is bounded; bad options still
raise every time."""

from __future__ import annotations

import pytest

pytest.importorskip("obstore")

from annio.io._storage import remote


def test_same_url_and_options_reuse_the_store() -> None:
    a = remote._obstore_store("http://127.0.0.1:9/a.zarr", {})
    b = remote._obstore_store("http://127.0.0.1:9/a.zarr", {})
    c = remote._obstore_store("http://127.0.0.1:9/a.zarr", {"client_options": {"timeout": "5s"}})
    d = remote._obstore_store("http://127.0.0.1:9/b.zarr", {})
    assert a is b
    assert c is not a and d is not a


def test_options_are_consumed_and_bad_ones_raise_every_time() -> None:
    options = {"client_options": {"timeout": "5s"}}
    remote._obstore_store("http://127.0.0.1:9/c.zarr", options)
    assert options == {}
    for _ in range(2):
        with pytest.raises(TypeError, match="not understood"):
            remote._obstore_store("http://127.0.0.1:9/c.zarr", {"bogus": 1})


def test_the_cache_is_bounded() -> None:
    for i in range(remote._MAX_STORES + 5):
        remote._obstore_store(f"http://127.0.0.1:9/many-{i}.zarr", {})
    assert len(remote._STORES) <= remote._MAX_STORES
