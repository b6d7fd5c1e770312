"""Files written past the page cache (``O_DIRECT``) hold exactly the bytes given; file
systems that refuse ``O_DIRECT`` get an ordinary write."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import annio
from annio.io._storage import direct_write
from annio.io._storage.direct_write import write_file

_SHM = Path("/dev/shm")


def _accepts_direct(folder: Path) -> bool:
    """Whether the file system under ``folder`` takes an aligned O_DIRECT write (checked
    with plain os calls, independently of the module under test)."""
    probe = folder / f".annio-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        import mmap

        buf = mmap.mmap(-1, 4096)
        os.write(fd, buf)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def _parts(sizes: list[int], seed: int) -> list[bytes]:
    return [bytes((seed + i + j) % 251 for j in range(n)) if n < 4096 else os.urandom(n) for i, n in enumerate(sizes)]


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 30_000), min_size=0, max_size=6), seed=st.integers(0, 250))
def test_bytes_round_trip(tmp_path: Path, sizes: list[int], seed: int) -> None:
    """Any split into parts, any tail length (aligned or not), small or large."""
    parts = _parts(sizes, seed)
    path = tmp_path / "f.bin"
    with annio.settings.override(direct_write_min_bytes=4096):
        direct = write_file(path, parts)
    assert path.read_bytes() == b"".join(parts)
    total = sum(sizes)
    if total < 4096:
        assert not direct
    elif _accepts_direct(tmp_path):
        assert direct


def test_crossing_the_staging_buffer(tmp_path: Path) -> None:
    """Parts larger than the staging buffer, and a tail that is not a whole block."""
    parts = [os.urandom(direct_write._BUFFER_BYTES + 5), os.urandom(3), os.urandom(direct_write._BUFFER_BYTES - 1)]
    path = tmp_path / "big.bin"
    write_file(path, parts)
    assert path.read_bytes() == b"".join(parts)


def test_overwrite_truncates(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 500_000)
    new = os.urandom(200_001)
    write_file(path, [new])
    assert path.read_bytes() == new


def test_setting_zero_writes_buffered(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(1 << 20)
    with annio.settings.override(direct_write_min_bytes=0):
        assert not write_file(path, [data])
    assert path.read_bytes() == data


@pytest.mark.skipif(not _SHM.is_dir() or _accepts_direct(_SHM), reason="needs a file system that refuses O_DIRECT (tmpfs)")
def test_refusing_file_system_gets_ordinary_write() -> None:
    path = _SHM / f"annio-direct-{os.getpid()}.bin"
    data = os.urandom(300_001)
    try:
        assert not write_file(path, [data])
        assert path.read_bytes() == data
        assert not write_file(path, [data[:1000], data])  # remembered: no second try
        assert path.read_bytes() == data[:1000] + data
    finally:
        path.unlink(missing_ok=True)
