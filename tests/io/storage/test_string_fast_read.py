"""The StringDType fast path for whole HDF5 variable-length UTF-8 string arrays
(``dtypes._read_h5_utf8_whole``, used by ``read_strings`` for whole reads) gives exactly what
the per-element decode gives, and the adapter's read of every string layout stays right."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from annio.io._storage.adapter import wrap
from annio.io._storage.dtypes import _read_h5_utf8_whole, decode_utf8_strings, read_strings

VALUES = ["", "a", "ü-zelle", "日本語", "x" * 300, "tab\tand space ", ""]


@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_fast_read_matches_plain_decode(tmp_path, shape):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("s", data=np.array(VALUES, dtype=object).reshape(shape), dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("empty", shape=(0,), dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        fast = _read_h5_utf8_whole(f["s"])
        slow = decode_utf8_strings(f["s"][...])
        assert fast is not None
        assert fast.dtype == slow.dtype == np.dtype(object)
        assert fast.shape == shape
        assert all(type(v) is str for v in fast.reshape(-1))
        np.testing.assert_array_equal(fast, slow)
        np.testing.assert_array_equal(wrap(f["s"]).read(), slow)
        np.testing.assert_array_equal(wrap(f["s"]).read(np.s_[2:4]), slow[2:4])
        empty = _read_h5_utf8_whole(f["empty"])
        assert empty is not None and empty.shape == (0,) and empty.dtype == np.dtype(object)


def test_other_string_layouts_take_the_plain_paths(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ascii", data=np.array([b"a", b"b"], dtype=object), dtype=h5py.string_dtype("ascii"))
        f.create_dataset("fixed", data=np.array([b"a", b"bc"], dtype="S2"))
        f.create_dataset("scalar", data="one", dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        assert _read_h5_utf8_whole(f["scalar"]) is None
        assert read_strings(f["scalar"], ()) == "one"
        assert read_strings(f["ascii"], ...).tolist() == ["a", "b"]
        assert read_strings(f["fixed"], ...).tolist() == ["a", "bc"]


def test_bad_utf8_is_a_format_error_naming_the_path(tmp_path):
    from annio.errors import FormatError

    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("bad", data=np.array([b"ok", b"\xff\xfe"], dtype=object), dtype=h5py.string_dtype("utf-8"))
    with h5py.File(path, "r") as f:
        with pytest.raises(FormatError, match="bad"):
            wrap(f["bad"]).read()
