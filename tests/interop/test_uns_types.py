"""uns values read by annio have the Python types anndata 0.12 gives them (h5ad and zarr):
numeric scalars as int/float/bool/complex, strings as str, structured arrays as ndarray."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import annio

ad = pytest.importorskip("anndata")
pytestmark = pytest.mark.interop

REC = np.array([(1, 2.0, "a"), (3, 4.0, "bcd")], dtype=[("i", "i8"), ("f", "f8"), ("s", "U3")])
UNS = {
    "int": 1, "float": 2.5, "bool": True, "np_bool": np.bool_(False), "i8": np.int8(-3), "u64": np.uint64(2**63 + 5),
    "f32": np.float32(1.5), "f16": np.float16(0.5), "complex": np.complex128(1 + 2j), "str": "s", "np_str": np.str_("t"),
    "none": None, "rec": REC, "recarray": REC.view(np.recarray), "zero_d": np.array(3.0), "arr": np.arange(3),
    "nested": {"x": np.int64(4), "y": {"z": np.float64(0.25)}},
}


def _describe(value):
    return type(value).__name__, getattr(value, "dtype", None)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3"])
def test_uns_types_match_anndata(tmp_path, fmt):
    path = tmp_path / ("u.h5ad" if fmt == "h5ad" else "u.zarr")
    adata = ad.AnnData(X=np.zeros((2, 2)), uns=UNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "h5ad":
            adata.write_h5ad(path)
            ours, theirs = annio.read_h5ad(path), ad.read_h5ad(path)
        else:
            with ad.settings.override(zarr_write_format=int(fmt[-1])):
                adata.write_zarr(path)
            ours, theirs = annio.read_zarr(path), ad.read_zarr(path)

    def compare(a, b, where):
        assert a.keys() == b.keys(), where
        for key in a:
            if isinstance(b[key], dict):
                compare(a[key], b[key], f"{where}/{key}")
                continue
            assert _describe(a[key]) == _describe(b[key]), f"{where}/{key}"
            if isinstance(b[key], np.ndarray):
                assert type(a[key]) is np.ndarray
                np.testing.assert_array_equal(a[key], b[key])
            else:
                assert a[key] == b[key], f"{where}/{key}"

    compare(ours.uns, theirs.uns, "uns")
    scalars = {k: v for k, v in ours.uns.items() if k not in ("rec", "recarray", "arr", "complex")}
    json.dumps(scalars)  # works with anndata's types, failed with numpy scalars
    assert type(ours.uns["u64"]) is int and ours.uns["u64"] == 2**63 + 5
    assert ours.uns["rec"]["s"].tolist() == ["a", "bcd"]
