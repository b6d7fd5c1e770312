"""Render results: the console/markdown table and ``RESULTS.md``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .runner import Cell, Options
from .workloads import WORKLOADS

NOTES = """\
- **time**: median wall-clock seconds of the timed region only (setup such as loading the
  in-memory object for writes, or opening a lazy/backed object, is excluded); every
  measurement runs in a fresh Python process, libraries interleaved A/B/A/B.
  `(n=k)` marks cells with fewer runs than requested (per-cell time budget).
{ratio}- **peak**: peak RSS of the measuring process during the timed region (kernel `VmHWM`
  reset just before the timer), so it includes what setup holds (e.g. the in-memory
  object being written).
- **disk / files**: apparent size and file count of the output (write, convert, concat)
  or of the input (read, lazy, backed); `a / b` when the libraries differ.
- **X MB/s**: uncompressed bytes of X (data + indices + indptr) per second, for workloads
  that process all of X.
- Page cache: inputs were {cache}.
"""


def fmt_bytes(n: float | None) -> str:
    """Human readable binary size."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_rate(bytes_per_s: float | None) -> str:
    """MB/s (decimal, like disk vendors) or GB/s."""
    if bytes_per_s is None:
        return "-"
    return f"{bytes_per_s / 1e9:.2f} GB/s" if bytes_per_s >= 1e9 else f"{bytes_per_s / 1e6:.0f} MB/s"


def _seconds(cell: Cell, repeats: int) -> str:
    if cell.status != "ok":
        return "n/a" if cell.status == "n/a" else f"error: {cell.reason}"
    s = cell.median("seconds")
    text = f"{s:.3g}" if s is not None and s >= 0.001 else f"{s:.2g}"
    return text + (f" (n={len(cell.runs)})" if len(cell.runs) < repeats else "")


def _joined(values: list[str]) -> str:
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def table(results: dict[str, dict[str, Cell]], opts: Options, x_nbytes: int) -> str:
    """The markdown results table."""
    libs = opts.libs
    ratio = len(libs) >= 2
    head = ["workload", *(f"{lib} s" for lib in libs)] + (["ratio"] if ratio else [])
    head += [f"{lib} peak" for lib in libs] + ["disk", "files"] + [f"{lib} X MB/s" for lib in libs]
    rows = [head, ["---"] * len(head)]
    for name, cells in results.items():
        cs = [cells[lib] for lib in libs]
        row = [name] + [_seconds(c, opts.repeats) for c in cs]
        times = [c.median("seconds") for c in cs]
        if ratio:  # the first library against the best of the others
            rivals = [t for t in times[1:] if t]
            row.append(f"{times[0] / min(rivals):.2f}" if times[0] is not None and rivals else "-")
        row += [fmt_bytes(c.median("peak_rss")) for c in cs]
        ok = [c for c in cs if c.runs]
        row.append(_joined([fmt_bytes(c.median("disk_bytes")) for c in ok]) if ok else "-")
        files = [c.median("n_files") for c in ok]
        row.append(_joined([f"{f:.0f}" if f is not None else "-" for f in files]) if ok else "-")
        through = WORKLOADS[name].throughput
        row += [f"{x_nbytes / t / 1e6:.0f}" if through and t else "-" for t in times]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def machine_section(info: dict[str, Any], versions: dict[str, str], limits: dict[str, Any] | None) -> str:
    """Machine description, versions and measured limits as markdown."""
    lines = [
        "## Machine",
        "",
        f"- CPU: {info['cpu']} — {info['cores_logical']} logical cores "
        f"({info['cores_physical']} physical, {info['affinity']} usable)",
        f"- RAM: {fmt_bytes(info['ram_bytes'])}; OS: {info['os']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    if not limits:
        return "\n".join(lines)
    disk = limits["disk"]
    lines += [
        "",
        "### Limits",
        "",
        f"- memcpy (numpy copy of {fmt_bytes(limits['memcpy_bytes'])}): {fmt_rate(limits['memcpy'])}",
        f"- disk ({fmt_bytes(limits['disk_bytes'])} file): write+fsync {fmt_rate(disk['write_fsync'])}, "
        f"read after fadvise(DONTNEED) {fmt_rate(disk['read_evicted'])} (may still hit a host cache), "
        f"read from page cache {fmt_rate(disk['read_cached'])}",
    ]
    touch = limits.get("first_touch")
    if touch:
        lines.append(
            f"- writing freshly allocated memory ({fmt_bytes(limits['memcpy_bytes'])}): new process "
            f"{fmt_rate(touch['fresh_worst'])}–{fmt_rate(touch['fresh_best'])}, memory just freed by the "
            f"same process {fmt_rate(touch['reused_best'])} (a VM that returns free pages to its host "
            "backs fresh memory on first touch: outputs of a workload cost this on top of the work)"
        )
    lines += [
        "",
        "Single-core codec throughput on CSR `data` bytes (1 MiB chunks, uncompressed MB/s):",
        "",
        "| data | codec | ratio | compress | decompress |",
        "| --- | --- | --- | --- | --- |",
    ]
    for data, rows in limits["codecs"].items():
        lines += [
            f"| {data} | {r['codec']} | {r['ratio']:.2f} | {fmt_rate(r['compress'])} | {fmt_rate(r['decompress'])} |"
            for r in rows
        ]
    return "\n".join(lines)


def results_markdown(
    results: dict[str, dict[str, Cell]],
    opts: Options,
    manifest: dict[str, Any],
    env: dict[str, Any],
) -> str:
    """The whole ``RESULTS.md`` document."""
    size = manifest["size"]
    libs = opts.libs
    header = ["# annio vs anndata — I/O benchmarks", ""]
    if size["name"] == "tiny":
        header += ["> **Smoke run on the `tiny` dataset: shows the format only, numbers are not representative.**", ""]
    header += [
        f"- Date: {env['date']}; command: `{env['command']}`",
        f"- Dataset `{size['name']}`: {size['n_obs']:,} cells × {size['n_vars']:,} genes, "
        f"{manifest['nnz']:,} non-zeros ({size['density']:.0%}), X = {fmt_bytes(manifest['x_nbytes'])} "
        f"uncompressed; generator v{manifest['generator_version']}",
        f"- Repeats: {opts.repeats} (median), per-cell budget {opts.budget:.0f} s; libraries: {', '.join(libs)}",
        f"- Wall time of the run: {env['wall_seconds'] / 60:.1f} min",
        "",
    ]
    ratio = (
        f"- **ratio**: {libs[0]} time / the best time of {', '.join(libs[1:])}; below 1 means "
        f"{libs[0]} is faster than every configuration of its rivals.\n"
    )
    cache = "evicted with posix_fadvise(DONTNEED) before each read (--cold)" if opts.cold else "warm (page cache)"
    if getattr(opts, "prewarm", False):
        cache += (
            "; memory: a buffer of 4x X written and freed just before the timer of each workload that "
            "processes all of X, so no library's "
            "output lands in memory the VM handed back to its host (`child.prewarm`)"
        )
    body = [
        "## Results",
        "",
        table(results, opts, manifest["x_nbytes"]),
        "",
        NOTES.format(ratio=ratio if len(libs) >= 2 else "", cache=cache),
        machine_section(env["machine"], env["versions"], env.get("limits")),
        "",
    ]
    return "\n".join(header + body)


def save_raw(path: Path, results: dict[str, dict[str, Cell]], opts: Options, manifest: dict[str, Any],
             env: dict[str, Any]) -> None:
    """Everything needed to re-render the report later (``python -m benchmarks report``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = {w: {lib: c.to_json() for lib, c in by_lib.items()} for w, by_lib in results.items()}
    payload = {"options": asdict(opts), "manifest": manifest, "env": env, "results": cells}
    path.write_text(json.dumps(payload, indent=1))


def load_raw(path: Path) -> tuple[dict[str, dict[str, Cell]], Options, dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`save_raw`."""
    payload = json.loads(path.read_text())
    results = {w: {lib: Cell(**c) for lib, c in by_lib.items()} for w, by_lib in payload["results"].items()}
    for by_lib in results.values():
        for cell in by_lib.values():
            cell.total_seconds = sum(r["seconds"] for r in cell.runs)
    return results, Options(**payload["options"]), payload["manifest"], payload["env"]


def write_results(path: Path, text: str) -> None:
    """Write the markdown file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
