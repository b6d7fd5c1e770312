"""The one-pass row stacking of sparse parts (``annio._ops.concat_sparse``) against scipy:
reindexing each part's columns (``scipy`` fancy indexing of the dense equivalent) and
``scipy.sparse.vstack`` give the same matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import annio
from annio._ops.concat_sparse import stack_sparse_rows


def _reference(values, maps, lengths, n_cols):
    """Dense: each part's columns moved to their output positions (dropped: -1), stacked."""
    blocks = []
    for v, m, n in zip(values, maps, lengths, strict=True):
        out = np.zeros((n, n_cols), dtype=np.float64)
        if v is not None:
            dense = v.toarray() if sp.issparse(v) else np.asarray(v)
            cols = np.arange(dense.shape[1]) if m is None else m
            keep = cols >= 0
            out[:, cols[keep]] = dense[:, keep]
        blocks.append(out)
    return np.concatenate(blocks) if blocks else np.zeros((0, n_cols))


@st.composite
def stacks(draw):
    n_cols = draw(st.integers(1, 9))
    n_parts = draw(st.integers(1, 4))
    values, maps, lengths = [], [], []
    for _ in range(n_parts):
        n = draw(st.integers(0, 6))
        lengths.append(n)
        if draw(st.integers(0, 5)) == 0:
            values.append(None)
            maps.append(None)
            continue
        width = draw(st.integers(1, n_cols + 2))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        dense = (rng.random((n, width)) < 0.4) * rng.integers(1, 9, (n, width))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
        fmt = draw(st.sampled_from(["csr", "csc", "dense"]))
        if fmt == "dense":
            v = sp.csr_matrix(dense.astype(dtype))
        else:
            cls = draw(st.sampled_from([sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array]))
            v = cls(dense.astype(dtype)).asformat(fmt)
        if width == n_cols and draw(st.booleans()):
            m = None
        else:  # an injective map onto the output's columns, some dropped (inner join)
            targets = rng.permutation(n_cols)
            m = np.full(width, -1, dtype=np.int64)
            k = min(width, n_cols)
            keep_n = draw(st.integers(0, k))
            m[rng.permutation(width)[:keep_n]] = targets[:keep_n]
        values.append(v)
        maps.append(m)
    return values, maps, lengths, n_cols


@settings(max_examples=150, deadline=None)
@given(stacks(), st.booleans())
def test_stack_matches_reindexed_vstack(case, sparray):
    values, maps, lengths, n_cols = case
    out = stack_sparse_rows(values, maps, lengths, n_cols, sparray)
    assert isinstance(out, sp.csr_array if sparray else sp.csr_matrix)
    assert out.shape == (sum(lengths), n_cols)
    np.testing.assert_array_equal(out.toarray(), _reference(values, maps, lengths, n_cols))
    present = [v.dtype for v in values if v is not None]
    if present:
        assert out.dtype == np.result_type(*present)
    assert out.indices.dtype == out.indptr.dtype == np.int32
    out.check_format(full_check=True)  # indptr monotonic, indices in range


def test_parts_with_offset_indptr_and_threads():
    """A part whose ``data``/``indices`` are longer than its entries, and an output large
    enough to be copied on several threads."""
    rng = np.random.default_rng(0)
    big = sp.random(3000, 4000, density=0.5, format="csr", dtype=np.float64, random_state=1)
    parts = [big[1000:2500], big[:10], big[2999:]]
    parts[0] = big[:1500].copy()
    parts[0].data = np.concatenate([parts[0].data, np.ones(7)])  # trailing unused room, as scipy allows
    parts[0].indices = np.concatenate([parts[0].indices, np.zeros(7, dtype=parts[0].indices.dtype)])
    assert len(parts[0].data) > parts[0].indptr[-1]
    maps = [None, rng.permutation(4000), None]
    with annio.settings.override(io_threads=2):
        out = stack_sparse_rows(parts, maps, [1500, 10, 1], 4000, False)
    expected = _reference(parts, maps, [1500, 10, 1], 4000)
    np.testing.assert_array_equal(out.toarray(), expected)
    assert out.nnz == sum(int(p.indptr[-1]) for p in parts)


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_concat_uses_it_and_matches_scipy(join):
    """``annio.concat`` of sparse parts with different genes equals the reindex + vstack."""
    rng = np.random.default_rng(3)
    genes = [f"g{i}" for i in range(30)]
    parts = []
    for i, sel in enumerate([genes[:25], genes[5:], genes[::-1]]):
        x = sp.random(8 + i, len(sel), density=0.4, format="csr", dtype=np.float32, random_state=i)
        parts.append(annio.AnnData(X=x, obs={"k": rng.random(8 + i)}, var={"n": np.arange(len(sel))}))
        parts[-1].var_names = sel
        parts[-1].obs_names = [f"c{i}_{j}" for j in range(8 + i)]
    out = annio.concat(parts, join=join)
    names = list(out.var_names)
    dense = []
    for p in parts:
        frame = np.zeros((p.n_obs, len(names)), dtype=np.float32)
        pos = {g: j for j, g in enumerate(p.var_names)}
        for j, g in enumerate(names):
            if g in pos:
                frame[:, j] = p.X[:, pos[g]].toarray().ravel()
        dense.append(frame)
    np.testing.assert_array_equal(out.X.toarray(), np.concatenate(dense))
    assert sp.isspmatrix_csr(out.X) and out.X.dtype == np.float32
