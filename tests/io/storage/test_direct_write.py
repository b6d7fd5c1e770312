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


# ----------------------------------------------------------------------------- DirectSink
_write_ops = st.lists(
    st.tuples(st.integers(0, 9000), st.integers(1, 20_000), st.booleans()),  # gap before, length, from a file
    min_size=1,
    max_size=8,
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_write_ops, start=st.integers(0, 5000))
def test_sink_writes_exactly_its_bytes(tmp_path: Path, ops: list[tuple[int, int, bool]], start: int) -> None:
    """Writes in increasing order with gaps (aligned or not, contiguous or not), from memory
    and copied from another file: the file holds them and nothing else changed."""
    size = start + sum(g + n for g, n, _ in ops) + 5000
    before = bytes(i % 239 for i in range(size))
    path, source_path = tmp_path / "t.bin", tmp_path / "s.bin"
    path.write_bytes(before)
    source = os.urandom(30_000)
    source_path.write_bytes(source)
    expected = bytearray(before)
    fallback = os.open(path, os.O_WRONLY)
    src = os.open(source_path, os.O_RDONLY)
    try:
        sink = direct_write.DirectSink.open(path, fallback)
        if _accepts_direct(tmp_path):
            assert sink is not None
        if sink is None:
            pytest.skip("this file system refuses O_DIRECT")
        offset = start
        for gap, n, from_file in ops:
            offset += gap
            if from_file:
                at = n % 7000
                sink.copy_from(src, at, offset, n if at + n <= len(source) else len(source) - at)
                n = min(n, len(source) - at)
                expected[offset : offset + n] = source[at : at + n]
            else:
                data = os.urandom(n)
                sink.write(offset, memoryview(data))
                expected[offset : offset + n] = data
            offset += n
        sink.close()
    finally:
        os.close(fallback)
        os.close(src)
    assert path.read_bytes() == bytes(expected)


def test_sink_crosses_its_buffer(tmp_path: Path) -> None:
    n = 2 * direct_write._BUFFER_BYTES + 12_345
    path = tmp_path / "t.bin"
    path.write_bytes(b"\0" * (n + 10_000))
    data = os.urandom(n)
    fallback = os.open(path, os.O_WRONLY)
    try:
        sink = direct_write.DirectSink.open(path, fallback)
        if sink is None:
            pytest.skip("this file system refuses O_DIRECT")
        sink.write(777, memoryview(data)[:1000])
        sink.write(1777, memoryview(data)[1000:])
        sink.close()
    finally:
        os.close(fallback)
    got = path.read_bytes()
    assert got[777 : 777 + n] == data and got[:777] == b"\0" * 777 and got[777 + n :] == b"\0" * (len(got) - 777 - n)


def test_sink_is_off_with_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_WRONLY)
    try:
        with annio.settings.override(direct_write_min_bytes=0):
            assert direct_write.DirectSink.open(path, fd) is None
    finally:
        os.close(fd)


def test_h5ad_files_align_large_objects(tmp_path: Path) -> None:
    """annio's h5ad files start objects of 1 MiB or more on 4 KiB boundaries (what lets
    their uncompressed chunks be written direct); small ones stay packed."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    adata = annio.AnnData(X=rng.random((700, 500), dtype=np.float32), obsm={"small": rng.random((700, 3))})
    annio.io.write_h5ad(tmp_path / "a.h5ad", adata)
    with h5py.File(tmp_path / "a.h5ad", "r") as f:
        assert f["X"].id.get_offset() % 4096 == 0
        np.testing.assert_array_equal(f["X"][...], adata.X)
    back = annio.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm["small"], adata.obsm["small"])
