"""The progress display in a real terminal: ``annio convert`` run inside tmux."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import annio
from annio import datasets

SRC = Path(annio.__file__).resolve().parents[1]


def _wait_for(tmux: list[str], marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-t", "t"], capture_output=True, text=True).stdout
        if marker in pane:
            return pane
        time.sleep(0.2)
    raise AssertionError(f"{marker!r} did not appear within {timeout} s; pane:\n{pane}")


def test_convert_shows_progress_in_a_terminal(tmp_path, system_tool):
    binary = system_tool("tmux", "tmux")
    src = tmp_path / "big.h5ad"
    datasets.pbmc_like(30000, 1500).write_h5ad(src)
    tmux = [binary, "-L", f"annio-test-{os.getpid()}", "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", "200", "-y", "40", "sh"], check=True, timeout=30,
                   env={**os.environ, "TERM": "xterm-256color"})
    try:
        command = (f"PYTHONPATH={SRC} {sys.executable} -m annio.cli.main convert {src} {tmp_path / 'out.zarr'}; "
                   f"echo EXIT=$?; {sys.executable} -m annio.cli.main convert -q {src} {tmp_path / 'quiet.zarr'} "
                   f"--zarr-format 2; echo QUIET_EXIT=$?; echo END_$((40 + 2))")
        subprocess.run([*tmux, "send-keys", "-t", "t", command, "Enter"], check=True, timeout=30)
        pane = _wait_for(tmux, "END_42", timeout=240)  # (the typed command shows END_$((40 + 2)))
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
    assert "EXIT=0" in pane and "QUIET_EXIT=0" in pane, pane
    lines = pane.splitlines()
    bar = [line for line in lines if "converting big.h5ad" in line]
    assert bar, f"no progress display in the terminal:\n{pane}"
    assert "100.0%" in bar[-1] and "━" in bar[-1] and "values" in bar[-1], bar[-1]
    # the quiet run printed nothing between its command line and its exit status
    quiet_output = pane[pane.index("EXIT=0") + len("EXIT=0") : pane.index("QUIET_EXIT=0")]
    assert "converting" not in quiet_output and "wrote" not in quiet_output, quiet_output
