"""Index arithmetic for reading ranges of 1-D arrays (pure numpy; :func:`read_merged` reads
plain slices of a backend array), and for planning remote reads: which chunks rows fall in
(:func:`wanted_units`), byte ranges merged across small gaps (:func:`coalesce`)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["runs", "gather_index", "read_merged", "wanted_units", "split_at_chunks", "coalesce", "MAX_GAP"]

#: Byte ranges of a remote object at most this far apart are fetched as one request.
MAX_GAP = 64 * 1024


def runs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` of the maximal runs of consecutive values in sorted unique
    ``positions`` (``[3, 4, 5, 9]`` → ``([3, 9], [6, 10])``)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return positions[:0], positions[:0]
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = positions[np.concatenate(([0], breaks + 1))]
    stops = positions[np.concatenate((breaks, [positions.size - 1]))] + 1
    return starts, stops


def gather_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def read_merged(raw: Any, starts: np.ndarray, stops: np.ndarray, gap: int) -> np.ndarray:
    """One slice of ``raw`` per group of ranges closer than ``gap``, gathered in memory."""
    new_group = np.concatenate(([True], starts[1:] - stops[:-1] > gap))
    group_id = np.cumsum(new_group) - 1
    g_starts = starts[new_group]
    g_stops = np.maximum.reduceat(stops, np.flatnonzero(new_group))
    blocks = [raw[a:b] for a, b in zip(g_starts.tolist(), g_stops.tolist(), strict=True)]
    buf = np.concatenate(blocks)
    if len(blocks) == len(starts):
        return buf
    buf_offsets = np.cumsum(g_stops - g_starts) - (g_stops - g_starts)
    local = buf_offsets[group_id] + (starts - g_starts[group_id])
    return buf[gather_index(local, stops - starts)]


def wanted_units(starts: np.ndarray, stops: np.ndarray, unit: int, n_units: int) -> np.ndarray:
    """Mask of the ``n_units`` chunks (``unit`` rows each) holding any row of the ranges
    ``starts[i]:stops[i]``."""
    starts, stops = np.atleast_1d(np.asarray(starts, np.int64)), np.atleast_1d(np.asarray(stops, np.int64))
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    marks = np.zeros(n_units + 1, dtype=np.int64)
    if starts.size:
        np.add.at(marks, np.clip(starts // unit, 0, n_units), 1)
        np.add.at(marks, np.clip((stops - 1) // unit + 1, 0, n_units), -1)
    return np.cumsum(marks[:-1]) > 0


def split_at_chunks(starts: np.ndarray, stops: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sorted, non-overlapping, non-empty row ranges ``starts[i]:stops[i]`` cut at every
    multiple of ``chunk`` into pieces, each inside one chunk.

    Returns
    -------
    ``(chunk_of, piece_starts, piece_stops, out_offsets)``: per piece, in range order, the
    chunk it lies in, its rows, and where it goes in the concatenation of the ranges.
    """
    starts, stops = np.asarray(starts, np.int64), np.asarray(stops, np.int64)
    lengths = stops - starts
    c_first = starts // chunk
    n_pieces = (stops - 1) // chunk - c_first + 1
    p_range = np.repeat(np.arange(starts.size), n_pieces)
    p_chunk = c_first[p_range] + (np.arange(int(n_pieces.sum())) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces))
    p_start = np.maximum(starts[p_range], p_chunk * chunk)
    p_stop = np.minimum(stops[p_range], (p_chunk + 1) * chunk)
    p_out = (np.cumsum(lengths) - lengths)[p_range] + (p_start - starts[p_range])
    return p_chunk, p_start, p_stop, p_out


def coalesce(starts: Any, stops: Any, gap: int = MAX_GAP) -> list[tuple[int, int]]:
    """Byte ranges, sorted, merged where they overlap or are at most ``gap`` apart."""
    starts, stops = np.asarray(starts, np.int64), np.asarray(stops, np.int64)
    order = np.argsort(starts, kind="stable")
    out: list[tuple[int, int]] = []
    for s, e in zip(starts[order].tolist(), stops[order].tolist(), strict=True):
        if out and s <= out[-1][1] + gap:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out
