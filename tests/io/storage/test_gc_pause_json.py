"""The collector pause around whole-object reads and writes, and the optional orjson
parser of zarr metadata (which must give exactly what the json module gives)."""

from __future__ import annotations

import gc
import json
import threading

import numpy as np
import pytest

import annio
from annio.io._storage import attrs
from annio.io._storage.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_enabled():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_pause_nests_and_restores() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()


def test_pause_keeps_a_disabled_collector_disabled_and_survives_errors() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_pauses_in_threads_end_enabled() -> None:
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    with gc_paused():
        release.set()
        thread.join(10)
        assert not gc.isenabled()  # the other thread's pause ended, this one has not
    assert gc.isenabled()


def test_reads_and_writes_leave_the_collector_as_it_was(tmp_path) -> None:
    adata = annio.AnnData(X=np.ones((3, 2), dtype=np.float32), uns={"a": {"b": 1}})
    adata.write_h5ad(tmp_path / "a.h5ad")
    adata.write_zarr(tmp_path / "a.zarr")
    annio.read_h5ad(tmp_path / "a.h5ad")
    annio.read_zarr(tmp_path / "a.zarr")
    assert gc.isenabled()
    with pytest.raises(Exception):
        annio.read_zarr(tmp_path / "missing.zarr")
    assert gc.isenabled()


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, "x", null, true]}', '{"f": NaN, "g": -Infinity}', '{"big": 123456789012345678901234567890}', '{"k": 1, "k": 2}', '"\\u00e9"', '["\\ud800"]',
     '[18446744073709551615, 18446744073709551616, -9223372036854775809, 1.5e300]'],
)
def test_loads_json_matches_the_json_module(text: str) -> None:
    got, expected = attrs.loads_json(text.encode()), json.loads(text)
    assert json.dumps(got, allow_nan=True) == json.dumps(expected, allow_nan=True)
    with pytest.raises(ValueError):
        attrs.loads_json(b"{not json")
