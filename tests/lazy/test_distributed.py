"""Lazy arrays computed on a dask.distributed cluster with worker processes."""

from __future__ import annotations

import sys

import cloudpickle
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from lazy_helpers import make_adata, write  # noqa: E402

from annio._lazy import read_lazy  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _block_sums(block):
    return np.asarray(block.sum(axis=0)).reshape(1, -1)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr3-sharded"])
def test_gene_means(client, tmp_path, fmt):
    adata = make_adata(2500, 30)
    path = write(adata, tmp_path / "d", fmt)
    lazy = read_lazy(path)
    X = lazy.X
    sums = X.map_blocks(_block_sums, chunks=((1,) * X.numblocks[0], (X.shape[1],)), dtype=np.float64)
    means = client.compute(sums.sum(axis=0)).result() / X.shape[0]
    np.testing.assert_allclose(means, np.asarray(adata.X.mean(axis=0)).ravel(), rtol=1e-5)
    dense_means = client.compute(lazy.layers["dense"].mean(axis=0)).result()
    np.testing.assert_allclose(dense_means, adata.layers["dense"].mean(axis=0), rtol=1e-5)
    lazy.file.close()
