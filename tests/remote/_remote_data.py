"""Local zarr stores and an HDF5 file written with plain zarr-python / h5py, and helpers to
predict which keys and byte ranges a read must touch."""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import zarr

N_ROWS, N_COLS = 200, 16
CHUNK_ROWS = 20
SHARD_ROWS = 100


@dataclass(frozen=True)
class StoreSpec:
    name: str
    zarr_format: int
    sharded: bool

    @property
    def dirname(self) -> str:
        return f"{self.name}.zarr"


SPECS = [
    StoreSpec("v3", 3, False),
    StoreSpec("v3-sharded", 3, True),
    StoreSpec("v2", 2, False),
]


def expected_x() -> np.ndarray:
    return np.arange(N_ROWS * N_COLS, dtype="float32").reshape(N_ROWS, N_COLS) / 7


def expected_obs() -> np.ndarray:
    return np.arange(N_ROWS, dtype="int64") * 3


def write_store(path: Path, spec: StoreSpec) -> None:
    if path.exists():
        shutil.rmtree(path)
    root = zarr.open_group(path, mode="w", zarr_format=spec.zarr_format)
    root.attrs.update({"title": "remote test", "n": N_ROWS, "nested": {"a": [1, 2, 3]}})
    kwargs = {"shards": (SHARD_ROWS, N_COLS)} if spec.sharded else {}
    x = root.create_array("X", shape=(N_ROWS, N_COLS), dtype="float32", chunks=(CHUNK_ROWS, N_COLS), **kwargs)
    x[:] = expected_x()
    x.attrs["encoding-type"] = "array"
    obs = root.create_group("obs")
    obs.attrs["kind"] = "frame"
    idx = obs.create_array("idx", shape=(N_ROWS,), dtype="int64", chunks=(50,))
    idx[:] = expected_obs()
    zarr.consolidate_metadata(path)


def write_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "remote test"
        f.create_dataset("X", data=expected_x(), chunks=(CHUNK_ROWS, N_COLS), compression="gzip")
        f.create_dataset("big", data=np.arange(1_000_000, dtype="float64"), chunks=(50_000,), compression="gzip")
        g = f.create_group("obs")
        for i in range(30):  # plenty of small objects: HDF5 metadata scattered over the file
            g.create_dataset(f"col{i}", data=np.arange(N_ROWS) * i)


def chunk_key(spec: StoreSpec, array: str, index: tuple[int, ...]) -> str:
    if spec.zarr_format == 2:
        return f"{array}/" + ".".join(map(str, index))
    return f"{array}/c/" + "/".join(map(str, index))


def row_chunks(start: int, stop: int, rows_per_chunk: int) -> list[int]:
    return list(range(start // rows_per_chunk, (stop - 1) // rows_per_chunk + 1))


def shard_index(shard_file: Path, n_chunks: int) -> list[tuple[int, int]]:
    """``(offset, nbytes)`` for each inner chunk, read from the index at the end of a shard
    (sharding codec defaults: index at the end, uint64 little endian, crc32c appended)."""
    raw = shard_file.read_bytes()
    index_size = 16 * n_chunks + 4
    table = raw[-index_size:-4]
    pairs = struct.unpack(f"<{2 * n_chunks}Q", table)
    return [(pairs[2 * i], pairs[2 * i + 1]) for i in range(n_chunks)]


def consolidated_keys(path: Path, spec: StoreSpec) -> list[str]:
    """The member names (``X``, ``obs``, ``obs/idx``) the consolidated metadata lists."""
    if spec.zarr_format == 2:
        keys = json.loads((path / ".zmetadata").read_text())["metadata"]
        return sorted({k.rsplit("/", 1)[0] for k in keys if "/" in k})
    return list(json.loads((path / "zarr.json").read_text())["consolidated_metadata"]["metadata"])
