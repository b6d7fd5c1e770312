"""Run the JavaScript zarr client (npm ``zarrita``) on a store; installs it on first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"


def zarrita_available() -> None:
    """Skip (or fail under CI) when node/npm or the zarrita package cannot be had."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing and not (JS_DIR / "node_modules" / "zarrita").is_dir():
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            missing.append(f"npm install failed: {proc.stderr[-500:]}")
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"zarrita interop needs {missing}")
        pytest.skip(f"zarrita interop needs {missing}")


def read_with_zarrita(source: str, *paths: str) -> dict:
    proc = subprocess.run(["node", str(JS_DIR / "read_zarr.mjs"), source, *paths], capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise AssertionError(f"zarrita failed on {source}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)
