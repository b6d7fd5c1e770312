"""The StringDType fast path for whole HDF5 variable-length UTF-8 string arrays gives
exactly what the storage adapter's read gives."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from annio.io._encodings.arrays import _read_h5_utf8
from annio.io._storage.adapter import wrap

VALUES = ["", "a", "ü-zelle", "日本語", "x" * 300, "tab\tand space ", ""]


@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_fast_read_matches_adapter(tmp_path, shape):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("s", data=np.array(VALUES, dtype=object).reshape(shape), dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("empty", shape=(0,), dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        fast = _read_h5_utf8(wrap(f["s"]))
        slow = wrap(f["s"]).read()
        assert fast is not None
        assert fast.dtype == slow.dtype == np.dtype(object)
        assert fast.shape == shape
        assert all(type(v) is str for v in fast.reshape(-1))
        np.testing.assert_array_equal(fast, slow)
        empty = _read_h5_utf8(wrap(f["empty"]))
        assert empty is not None and empty.shape == (0,) and empty.dtype == np.dtype(object)


def test_fast_read_skips_ascii_and_fixed_length(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ascii", data=np.array([b"a", b"b"], dtype=object), dtype=h5py.string_dtype("ascii"))
        f.create_dataset("fixed", data=np.array([b"a", b"bc"], dtype="S2"))
        f.create_dataset("scalar", data="one", dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        for key in ("ascii", "fixed", "scalar"):
            assert _read_h5_utf8(wrap(f[key])) is None
