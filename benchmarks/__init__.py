"""Benchmark suite comparing annio with scverse anndata (not part of the test suite).

Run ``python -m benchmarks run --size medium`` (see ``python -m benchmarks --help``).

Layout:

- :mod:`benchmarks.datagen`   deterministic synthetic inputs, cached under ``benchmarks/data/``
- :mod:`benchmarks.workloads` the timed workloads, written against a library module ``lib``
- :mod:`benchmarks.child`     runs one measurement in a fresh subprocess
- :mod:`benchmarks.runner`    interleaved A/B scheduling, repeats, medians
- :mod:`benchmarks.machine`   machine description and limits (memcpy, disk, codecs)
- :mod:`benchmarks.report`    console table and ``RESULTS.md``
"""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out"
#: library configurations: ``name`` or ``name+config``; ``anndata+zarrs`` is anndata with
#: zarr's codec pipeline set to zarrs (anndata's docs recommend it), run on zarr workloads
LIBS = ("annio", "anndata", "anndata+zarrs")
