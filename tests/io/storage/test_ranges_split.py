"""split_at_chunks cuts row ranges at chunk boundaries exactly as a plain loop does."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from annio.io._storage.ranges import split_at_chunks


def _reference(
    starts: list[int], stops: list[int], chunk: int
) -> list[tuple[int, int, int, int]]:
    pieces, out = [], 0
    for start, stop in zip(starts, stops, strict=True):
        row = start
        while row < stop:
            c = row // chunk
            end = min(stop, (c + 1) * chunk)
            pieces.append((c, row, end, out))
            out += end - row
            row = end
    return pieces


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    chunk = draw(st.integers(1, 17))
    cuts = sorted(set(draw(st.lists(st.integers(0, 300), max_size=20))))
    starts, stops = [], []
    for a, b in zip(
        cuts[::2], cuts[1::2], strict=False
    ):  # pairs of distinct sorted cuts: non-empty, disjoint
        starts.append(a)
        stops.append(b)
    return starts, stops, chunk


@given(_ranges())
def test_split_at_chunks_matches_a_plain_loop(
    case: tuple[list[int], list[int], int],
) -> None:
    starts, stops, chunk = case
    got = split_at_chunks(np.array(starts, np.int64), np.array(stops, np.int64), chunk)
    assert all(a.dtype == np.int64 for a in got)
    assert list(zip(*(a.tolist() for a in got), strict=True)) == _reference(
        starts, stops, chunk
    )
