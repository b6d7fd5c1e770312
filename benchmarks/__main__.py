"""Command line: ``python -m benchmarks {run,gen,report,list,machine}``.

Examples::

    python -m benchmarks run --size medium                 # what `make bench` runs
    python -m benchmarks run --size tiny                   # smoke run (< 2 minutes)
    python -m benchmarks run --size small --libs anndata --only read-,write-
    python -m benchmarks gen --size large                  # pre-generate cached inputs
    python -m benchmarks report benchmarks/out/results-medium-*.json   # re-render RESULTS.md
    python -m benchmarks remote --rtt 5,20,50          # remote reads behind a latency proxy
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

from . import BENCH_DIR, LIBS, OUT_DIR
from .datagen import SIZES, ensure


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workloads on both libraries and write RESULTS.md")
    run.add_argument("--size", choices=list(SIZES), default="medium")
    run.add_argument("--repeats", type=int, default=None,
                     help="runs per library and workload, median reported (default: 1 for tiny, else 3)")
    run.add_argument("--only", type=_csv, default=None, help="comma-separated substrings of workload names")
    run.add_argument("--libs", type=_csv, default=list(LIBS), help="comma-separated, default annio,anndata")
    run.add_argument("--output", default=str(BENCH_DIR / "RESULTS.md"), help="markdown file to write")
    run.add_argument("--budget", type=float, default=120.0,
                     help="stop repeating a (workload, lib) after this many timed seconds")
    run.add_argument("--timeout", type=float, default=1800.0, help="kill a measurement after this many seconds")
    run.add_argument("--cold", action="store_true", help="evict inputs from the page cache before each read")
    run.add_argument("--no-prewarm", dest="prewarm", action="store_false",
                     help="do not write and free a buffer (4x X) before the timer of throughput workloads (child.prewarm)")
    run.add_argument("--machine", choices=["full", "quick", "skip"], default=None,
                     help="machine-limit probes (default: quick for tiny, full otherwise)")
    run.add_argument("--verbose", action="store_true", help="tracebacks in benchmarks/out/logs/")
    gen = sub.add_parser("gen", help="generate the cached inputs of one size")
    gen.add_argument("--size", choices=list(SIZES), required=True)
    rep = sub.add_parser("report", help="re-render RESULTS.md from a raw benchmarks/out/results-*.json")
    rep.add_argument("raw")
    rep.add_argument("--output", default=str(BENCH_DIR / "RESULTS.md"))
    sub.add_parser("list", help="list the workloads")
    machine = sub.add_parser("machine", help="measure the machine limits only")
    machine.add_argument("--quick", action="store_true")
    return parser


def _run(args: argparse.Namespace) -> int:
    from . import machine, report
    from .runner import Options, ensure_data, run_suite
    from .workloads import select

    unknown = set(args.libs) - set(LIBS)
    if unknown:
        print(f"unknown libraries: {sorted(unknown)}", file=sys.stderr)
        return 2
    workloads = select(args.only)
    if not workloads:
        print(f"no workload matches {args.only}", file=sys.stderr)
        return 2
    repeats = args.repeats or (1 if args.size == "tiny" else 3)
    opts = Options(args.size, args.libs, repeats, args.budget, args.timeout, args.cold, args.verbose, args.prewarm)
    start = time.perf_counter()
    manifest = ensure_data(args.size, print)
    mode = args.machine or ("quick" if args.size == "tiny" else "full")
    limits = None if mode == "skip" else machine.measure_limits(quick=mode == "quick")
    results = run_suite(opts, workloads)
    env = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python -m benchmarks " + shlex.join(sys.argv[1:]),
        "machine": machine.describe(),
        "versions": machine.versions(),
        "limits": limits,
        "wall_seconds": time.perf_counter() - start,
    }
    raw = OUT_DIR / f"results-{args.size}-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    report.save_raw(raw, results, opts, manifest, env)
    print("\n" + report.table(results, opts, manifest["x_nbytes"]) + "\n")
    report.write_results(Path(args.output), report.results_markdown(results, opts, manifest, env))
    print(f"wrote {args.output} and {raw} in {env['wall_seconds'] / 60:.1f} min")
    return 0


def _report(args: argparse.Namespace) -> int:
    from . import report

    results, opts, manifest, env = report.load_raw(Path(args.raw))
    report.write_results(Path(args.output), report.results_markdown(results, opts, manifest, env))
    print(f"wrote {args.output}")
    return 0


def compile_libraries(names: tuple[str, ...] = ("annio", "anndata")) -> None:
    """Byte-compile the measured libraries once, as a wheel install does.

    An editable install leaves no ``.pyc`` files, and with ``PYTHONDONTWRITEBYTECODE`` set
    (as on this machine) every child process would compile each module it imports, inside
    the timed region for the modules a workload imports on first use.
    """
    import compileall
    import importlib.util

    for name in names:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Dispatch the sub-command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["run"], ["remote"]):
        compile_libraries()
    if argv[:1] == ["remote"]:  # its own options: see benchmarks/remote.py
        from .remote import main as remote_main

        return remote_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "report":
        return _report(args)
    if args.command == "gen":
        ensure(args.size)
        return 0
    if args.command == "list":
        from .workloads import WORKLOADS

        for w in WORKLOADS.values():
            print(f"{w.name:<32} {w.description}")
        return 0
    from . import machine, report

    limits = machine.measure_limits(quick=args.quick)
    print(report.machine_section(machine.describe(), machine.versions(), limits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
