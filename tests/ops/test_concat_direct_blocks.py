"""The direct on-disk concat serves only the blocks it planned: any other slice is an error,
never an all-zero block written silently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import annio
from annio._ops.concat_direct import ConcatenatedSparse
from annio.experimental import read_lazy


def test_unplanned_slice_is_refused(tmp_path):
    X = sparse.random(20, 6, density=0.5, format="csr", random_state=0, dtype=np.float32)
    annio.AnnData(X).write_zarr(tmp_path / "a.zarr")
    lazy = read_lazy(tmp_path / "a.zarr")
    source = lazy.X._annio_origin.source
    stacked = ConcatenatedSparse([source, source], [20, 20], [None, None], "csr", 6, np.dtype("float32"))
    sizes = stacked.chunks[0]
    block = stacked[slice(0, sizes[0])]
    np.testing.assert_array_equal(block.toarray(), X[: sizes[0]].toarray())
    with pytest.raises(ValueError, match="planned blocks"):
        stacked[slice(1, 5)]
