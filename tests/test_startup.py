"""Start-up: ``import annio`` and its public faces import no heavy dependency; names and the
model's services are imported on first use and then work as if imported eagerly.

Each check runs in a fresh interpreter (this test process has imported everything already).
Timings are measured in ``benchmarks/realfiles.py`` (startup-*), never asserted here.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import annio
from annio._core import services
from annio.errors import AnnioError

SRC = Path(annio.__file__).resolve().parents[1]
HEAVY = ("pandas", "h5py", "zarr", "scipy", "dask", "xarray", "numcodecs", "rich", "anndata", "numpy")


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it ends with ``out = {...}``, returned as JSON."""
    probe = code + "\nimport json, sys\nout['modules'] = sorted({m.split('.')[0] for m in sys.modules})\nprint(json.dumps(out))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("face", ["annio", "annio.io", "annio.experimental", "annio.aio", "annio.settings", "annio.errors"])
def test_importing_a_face_imports_no_heavy_dependency(face):
    out = _fresh(f"import {face}\nout = {{}}")
    assert not set(HEAVY) & set(out["modules"]), f"import {face} loads {sorted(set(HEAVY) & set(out['modules']))}"


def test_names_resolve_on_first_access_and_show_exactly_the_api():
    out = _fresh(
        "import annio, annio.io, annio.experimental, annio.aio\n"
        "faces = [annio, annio.io, annio.experimental, annio.aio]\n"
        "out = {f.__name__: [sorted(dir(f)), sorted(f.__all__), all(getattr(f, n) is not None for n in f.__all__)] for f in faces}\n"
        "from annio import AnnData, read_h5ad, concat\n"
        "from annio.experimental import read_lazy, backed\n"
        "out['same'] = [AnnData is annio.AnnData, read_lazy is annio.experimental.read_lazy, backed.Dataset2D is annio.experimental.Dataset2D]\n"
        "try:\n    from annio import no_such_name\nexcept ImportError as err:\n    out['missing'] = str(err)\n"
    )
    for face in ("annio", "annio.io", "annio.experimental", "annio.aio"):
        shown, api, resolved = out[face]
        assert shown == api and resolved, face
    assert out["same"] == [True, True, True]
    assert "no_such_name" in out["missing"]


def test_the_model_needs_no_io_library():
    # AnnData needs pandas and scipy, but not the storage libraries nor dask
    out = _fresh("import annio, numpy as np\na = annio.AnnData(np.ones((3, 2)))\na.obs['x'] = [1, 2, 3]\nout = {'shape': list(a[1:].shape)}")
    assert out["shape"] == [2, 2]
    assert {"pandas", "scipy"} <= set(out["modules"])
    assert not {"h5py", "zarr", "dask", "xarray", "anndata"} & set(out["modules"])


def test_services_are_imported_on_first_call(tmp_path):
    # nothing but `import annio`: writing, backed mode and the anndata bridge find their
    # implementations when first called
    path = tmp_path / "a.h5ad"
    out = _fresh(
        "import annio, numpy as np\n"
        f"a = annio.AnnData(np.arange(6, dtype='f4').reshape(3, 2))\na.write_h5ad({str(path)!r})\n"
        f"b = annio.AnnData(filename={str(path)!r}, filemode='r')\n"
        "import anndata\nc = annio.AnnData(anndata.AnnData(np.ones((2, 2), dtype='f4')))\n"
        "out = {'backed': b.isbacked, 'X': b.X[:].tolist(), 'bridged': type(c).__module__, 'back': type(a.to_anndata()).__module__}"
    )
    assert out["backed"] is True and out["X"] == np.arange(6, dtype="f4").reshape(3, 2).tolist()
    assert out["bridged"] == "annio._core.anndata" and out["back"].startswith("anndata")


def test_pickles_load_in_a_fresh_interpreter(tmp_path):
    adata = annio.AnnData(np.ones((2, 3)), obs={"g": ["a", "b"]})
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(adata))
    out = _fresh(f"import pickle\na = pickle.loads(open({str(path)!r}, 'rb').read())\nout = {{'shape': list(a.shape), 'g': list(a.obs['g'])}}")
    assert out["shape"] == [2, 3] and out["g"] == ["a", "b"]


def test_an_unknown_service_is_a_clear_error():
    with pytest.raises(AnnioError, match="no_such_service"):
        services.service("no_such_service")


def test_a_loader_is_asked_once_per_service():
    calls = []

    def loader(name):
        calls.append(name)
        return (lambda: "done") if name == "test_only_service" else None

    services.provide_loader(loader)
    try:
        assert services.service("test_only_service")() == "done"
        assert services.service("test_only_service")() == "done"
        assert calls == ["test_only_service"]
    finally:
        services._LOADERS.remove(loader)
        services._SERVICES.pop("test_only_service", None)


def test_version_and_help_are_cheap():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    probe = (
        "import sys, json\nfrom annio.cli.main import main\n"
        "codes = [main(['--version']), main(['--help'])]\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert f"annio {annio.__version__}" in result.stdout and "usage: annio" in result.stdout
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not set(HEAVY) & modules
