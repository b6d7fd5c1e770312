"""In-memory HDF5 file images (a remote file fetched whole): each image is its own file
whatever its name, and plain datasets are copied straight from the image's bytes."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest

from annio.io._storage import h5_pread
from annio.io._storage.adapter import wrap
from annio.io._storage.h5_remote import close_h5_image, open_h5_image


def _image(write) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        write(f)
    return buf.getvalue()


def test_images_with_the_same_name_keep_their_own_data():
    """HDF5 took the second core-driver file of a name for the first: two remote files
    called data.h5ad read at once both gave the first one's values (regression)."""
    images = [_image(lambda f, v=v: f.create_dataset("x", data=np.full(10, v))) for v in (1, 2)]
    files = [open_h5_image(data, "data.h5ad") for data in images]
    try:
        assert [int(f["x"][0]) for f in files] == [1, 2]
    finally:
        for f in files:
            close_h5_image(f)
    assert not h5_pread._IMAGES


@pytest.mark.parametrize("layout", ["contiguous", "chunked", "chunked-unwritten", "2d", "gzip"])
def test_whole_datasets_read_from_the_image_equal_h5py(layout):
    rng = np.random.default_rng(0)
    values = rng.random(300_000).astype(np.float32) if layout != "2d" else rng.integers(0, 99, (4000, 50))

    def write(f):
        if layout == "contiguous" or layout == "2d":
            f.create_dataset("x", data=values)
        elif layout == "gzip":
            f.create_dataset("x", data=values, chunks=(10_000,), compression="gzip")
        else:
            ds = f.create_dataset("x", shape=values.shape, dtype=values.dtype, chunks=(7_000,), fillvalue=-1)
            if layout == "chunked":
                ds[...] = values
            else:
                ds[:70_000] = values[:70_000]
                ds[140_000:] = values[140_000:]

    f = open_h5_image(_image(write), "x.h5")
    try:
        expected = f["x"][...]
        out = np.empty(expected.shape, expected.dtype)
        assert (h5_pread._image_of(f["x"], out) is not None) == (layout != "gzip")
        got = wrap(f["x"]).read()
        np.testing.assert_array_equal(got, expected)
        if layout == "chunked-unwritten":
            assert (got[70_000:140_000] == -1).all()
    finally:
        close_h5_image(f)


def test_values_beyond_the_image_are_a_format_error():
    data = _image(lambda f: f.create_dataset("x", data=np.arange(100_000, dtype=np.int64)))
    f = open_h5_image(data, "x.h5")
    try:
        ds = f["x"]
        out = np.empty(ds.shape, ds.dtype)
        offset = ds.id.get_offset()
        h5_pread.register_image(f.filename, data[: offset + 1000])  # the values cut short
        with pytest.raises(Exception, match="beyond the end of the file"):
            h5_pread.read_into(ds, out)
    finally:
        close_h5_image(f)
