"""The low-level HDF5 fast path creates the same objects h5py's high-level API would."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from annio.io._storage import h5_small


@pytest.mark.parametrize("value", [np.int64(3), np.float32(1.5), np.bool_(True), np.complex128(1 + 2j), np.arange(5, dtype="u2"), np.zeros((2, 3), dtype="f8")])
def test_plain_dataset_matches_high_level(tmp_path, value):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        ours = h5_small.create_plain_dataset(f, "ours", np.asarray(value), strings=False)
        theirs = f.create_dataset("theirs", data=value)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.chunks is None and ours.compression is None
        np.testing.assert_array_equal(ours[()], theirs[()])


def test_string_dataset_and_attributes(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = h5_small.create_plain_dataset(f, "s", np.array(["a", "βγ", ""], dtype=object), strings=True)
        assert h5py.check_string_dtype(d.dtype).encoding == "utf-8"
        assert list(d.asstr()[()]) == ["a", "βγ", ""]
        h5_small.set_string_attrs(d, {"encoding-type": "string-array", "x": "1"}, fresh=True)
        h5_small.set_string_attrs(d, {"x": "2"})  # replaces an existing attribute
        assert dict(d.attrs) == {"encoding-type": "string-array", "x": "2"}
        assert h5py.check_string_dtype(d.attrs.get_id("x").dtype).length is None  # variable length
