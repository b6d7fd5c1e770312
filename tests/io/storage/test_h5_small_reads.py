"""Small HDF5 reads without h5py's high-level overhead: gzip datasets below the parallel
threshold decoded with libdeflate on the calling thread (h5_chunks.read_mode "serial"), and
scalar string attributes read through the low-level API (h5_small.read_string_attr). Values
must be exactly what h5py reads."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from annio.io import read_elem
from annio.io._storage import adapter, h5_chunks, h5_small


@pytest.mark.parametrize(
    ("shape", "chunks", "dtype"),
    [((700, 765), (44, 96), "f4"), ((10_000,), (2725,), "i4"), ((33, 17), (8, 16), "f8"), ((5000,), (1024,), "u1")],
)
def test_small_gzip_datasets_read_serially_and_exactly(tmp_path, shape, chunks, dtype) -> None:
    rng = np.random.default_rng(0)
    data = rng.poisson(1.5, size=shape).astype(dtype)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("x", data=data, chunks=chunks, compression="gzip")
        f.create_dataset("partial", shape=shape, dtype=dtype, chunks=chunks, compression="gzip", fillvalue=3)
        f["partial"][: chunks[0]] = data[: chunks[0]]
    expected_mode = "serial" if h5_chunks._libdeflate is not None and np.prod(chunks) * np.dtype(dtype).itemsize >= 4096 else None
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert h5_chunks.read_mode(f["x"]) == expected_mode
        np.testing.assert_array_equal(read_elem(f["x"]), f["x"][...])
        np.testing.assert_array_equal(read_elem(f["partial"]), f["partial"][...])  # unwritten chunks: fill value


def test_read_mode_leaves_other_layouts_to_hdf5(tmp_path) -> None:
    data = np.arange(20_000, dtype="f4")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("plain", data=data)
        f.create_dataset("shuffled", data=data, chunks=(4096,), compression="gzip", shuffle=True)
        f.create_dataset("lzf", data=data, chunks=(4096,), compression="lzf")
        f.create_dataset("big_endian", data=data.astype(">f4"), chunks=(4096,), compression="gzip")
        f.create_dataset("tiny_chunks", data=data, chunks=(16,), compression="gzip")
        f.create_dataset("strings", data=np.array([b"a", b"bc"] * 100), chunks=(100,), compression="gzip")
        for name in ("plain", "shuffled", "lzf", "big_endian", "tiny_chunks", "strings"):
            assert h5_chunks.read_mode(f[name]) is None, name
            expected = np.array(["a", "bc"] * 100, dtype=object) if name == "strings" else f[name][...]
            np.testing.assert_array_equal(adapter.wrap(f[name]).read(), expected)


def test_string_attributes_read_like_h5py(tmp_path) -> None:
    with h5py.File(tmp_path / "x.h5", "w") as f:
        g = f.create_group("g")
        g.attrs["utf8"] = "héllo"
        g.attrs.create("ascii", "plain", dtype=h5py.string_dtype("ascii"))
        g.attrs["fixed"] = np.bytes_("fixed")
        g.attrs["list"] = np.array(["a", "b"], dtype=h5py.string_dtype())
        g.attrs["number"] = 3
        g.attrs["empty"] = ""
    with h5py.File(tmp_path / "x.h5", "r") as f:
        g = f["g"]
        assert h5_small.read_string_attr(g, "utf8") == "héllo"
        assert h5_small.read_string_attr(g, "ascii") == "plain"
        assert h5_small.read_string_attr(g, "empty") == ""
        for name in ("fixed", "list", "number"):
            assert h5_small.read_string_attr(g, name) is h5_small.NOT_A_STRING
        with pytest.raises(KeyError):
            h5_small.read_string_attr(g, "missing")
        attrs = adapter.wrap(g).attrs
        assert attrs["utf8"] == "héllo" and attrs["fixed"] == "fixed" and attrs["list"] == ["a", "b"] and attrs["number"] == 3
        assert "utf8" in attrs and "missing" not in attrs and attrs.get("missing") is None
        with pytest.raises(KeyError, match="/g"):
            attrs["missing"]
