"""The async API (:mod:`annio.aio`): same objects as the sync API, usable inside a running
event loop and gatherable; the sync API keeps working inside a running loop too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import annio
import annio.aio
from annio.experimental import read_dispatched, read_lazy
from annio.testing import assert_equal, gen_adata


@pytest.fixture(scope="module")
def adata() -> Any:
    return gen_adata((50, 20), X_type="csr", seed=21)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, adata: Any) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("aio")
    out = {"v3": root / "a3.zarr", "v2": root / "a2.zarr", "h5": root / "a.h5ad"}
    annio.write_zarr(out["v3"], adata, zarr_format=3)
    annio.write_zarr(out["v2"], adata, zarr_format=2)
    annio.write_h5ad(out["h5"], adata)
    return out


def test_public_face() -> None:
    assert set(annio.aio.__all__) >= {"read_zarr", "read_h5ad", "read_lazy", "read_elem", "write_elem", "write_zarr"}
    for name in annio.aio.__all__:
        assert asyncio.iscoroutinefunction(getattr(annio.aio, name)), name


def test_reads_gathered_equal_sync(files: dict[str, Path], adata: Any) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            annio.aio.read_zarr(files["v3"]), annio.aio.read_zarr(files["v2"]), annio.aio.read_h5ad(files["h5"])
        )

    got = asyncio.run(main())
    for key, obj in zip(("v3", "v2", "h5"), got, strict=True):
        sync = annio.read_h5ad(files[key]) if key == "h5" else annio.read_zarr(files[key])
        assert_equal(obj, sync)


def test_sync_api_inside_running_loop(files: dict[str, Path]) -> None:
    async def main() -> Any:
        return annio.read_zarr(files["v3"])  # blocking call from a coroutine (as in Jupyter)

    assert_equal(asyncio.run(main()), annio.read_zarr(files["v3"]))


def test_loop_not_blocked_while_reading(files: dict[str, Path]) -> None:
    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await annio.aio.read_h5ad(files["h5"])
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 1


def test_lazy_and_to_memory_async(files: dict[str, Path], adata: Any) -> None:
    async def main() -> tuple[Any, Any, Any]:
        lazy = await annio.aio.read_lazy(files["v3"])
        sub = await lazy[10:30].to_memory_async()
        obs = await lazy.obs.to_memory_async()
        whole = await annio.aio.to_memory(lazy)
        return sub, obs, whole

    sub, obs, whole = asyncio.run(main())
    sync = annio.read_zarr(files["v3"])
    assert_equal(sub, sync[10:30].to_memory())
    assert_equal(obs, read_lazy(files["v3"]).obs.to_memory())
    assert_equal(whole, sync)


def test_elem_round_trip(tmp_path: Path, adata: Any) -> None:
    group = zarr.open_group(tmp_path / "e.zarr", mode="w")
    value = {"a": np.arange(5), "b": {"c": "text"}}

    async def main() -> Any:
        await annio.aio.write_elem(group, "uns", value)
        await annio.aio.write_zarr(tmp_path / "w.zarr", adata)
        return await annio.aio.read_elem(group["uns"])

    got = asyncio.run(main())
    assert_equal(got, annio.io.read_elem(group["uns"]))
    written = tmp_path / "w-sync.zarr"
    annio.write_zarr(written, adata)
    assert_equal(annio.read_zarr(tmp_path / "w.zarr"), annio.read_zarr(written))


def test_read_dispatched_still_works(files: dict[str, Path]) -> None:
    seen: list[str] = []

    def callback(read_func: Any, elem_name: str, elem: Any, *, iospec: Any) -> Any:
        seen.append(elem_name)
        return read_func(elem)

    group = zarr.open_group(files["v3"], mode="r")
    assert_equal(read_dispatched(group["obs"], callback), annio.read_zarr(files["v3"]).obs)
    assert "/obs" in seen
