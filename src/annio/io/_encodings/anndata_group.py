"""``anndata`` (the root, or an AnnData nested in ``uns``) and ``raw`` groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annio.errors import FormatError
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, register
from annio.io._storage.adapter import StorageGroup

MAPPINGS = ("obsm", "varm", "obsp", "varp", "layers")


def _check_2d(path: str, name: str, value: Any) -> None:
    if value is not None and len(getattr(value, "shape", ())) != 2:
        raise ValueError(f"{path}/{name} must be 2-dimensional to be written, has shape {getattr(value, 'shape', None)}")


@register
class AnnDataGroup(GroupEncoding):
    spec = IOSpec("anndata", "0.1.0")
    python_types = ("annio._core.anndata.AnnData",)

    def write_into(self, group: StorageGroup, adata: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        write = writer.write_elem
        write(group, "obs", adata.obs, dataset_kwargs=dataset_kwargs)
        write(group, "var", adata.var, dataset_kwargs=dataset_kwargs)
        write(group, "uns", dict(adata.uns), dataset_kwargs=dataset_kwargs)
        for name in ("obsm", "varm", "obsp", "varp"):
            write(group, name, dict(getattr(adata, name)), dataset_kwargs=dataset_kwargs)
        X = adata.X  # once: on a view every access subsets the parent's X again
        if X is not None:
            _check_2d(group.path.rstrip("/"), "X", X)
            write(group, "X", X, dataset_kwargs=dataset_kwargs)
        mapping = adata.layers  # X is listed as the None key: written as /X, never fetched here
        layers = {k: mapping[k] for k in list(mapping.keys()) if k is not None}
        for key, value in layers.items():
            _check_2d(f"{group.path.rstrip('/')}/layers", key, value)
        write(group, "layers", layers, dataset_kwargs=dataset_kwargs)
        if adata.raw is not None:
            write(group, "raw", adata.raw, dataset_kwargs=dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> Any:
        parts = {}
        for key in node.keys():
            if key == "raw" and isinstance(node[key], StorageGroup):
                parts[key] = read_raw_parts(node[key], reader)  # attached as the object's raw
            elif key in _ANNDATA_KEYS:
                parts[key] = reader.read_elem(node[key])
        return build_anndata(node.path, parts)


_ANNDATA_KEYS = {"X", "obs", "var", "uns", "raw", *MAPPINGS}


def build_anndata(path: str, parts: dict[str, Any]) -> Any:
    """An AnnData from its read parts (``raw`` given as a dict of X/var/varm)."""
    from annio._core import AnnData

    raw = parts.pop("raw", None)
    check_shapes(path, parts)
    try:
        adata = AnnData(**{k: v for k, v in parts.items()})
    except (ValueError, TypeError) as err:
        raise FormatError(path, f"stored elements do not form a valid AnnData: {err}") from err
    if raw is not None:
        attach_raw(path, adata, raw)
    return adata


def _axis_length(parts: dict[str, Any], frame: str, axis: int) -> int | None:
    if parts.get(frame) is not None:
        return len(parts[frame].index)
    if parts.get("X") is not None:
        return int(parts["X"].shape[axis])
    return None


def check_shapes(path: str, parts: dict[str, Any]) -> None:
    """Name the stored element whose shape does not fit the object (before building it)."""
    base = path.rstrip("/")
    n_obs, n_vars = _axis_length(parts, "obs", 0), _axis_length(parts, "var", 1)
    expected: list[tuple[str, Any, tuple[int | None, ...]]] = []
    if parts.get("X") is not None:
        expected.append(("X", parts["X"], (n_obs, n_vars)))
    for key, value in (parts.get("layers") or {}).items():
        expected.append((f"layers/{key}", value, (n_obs, n_vars)))
    for name, dims in (("obsm", (n_obs,)), ("varm", (n_vars,)), ("obsp", (n_obs, n_obs)), ("varp", (n_vars, n_vars))):
        for key, value in (parts.get(name) or {}).items():
            expected.append((f"{name}/{key}", value, dims))
    for rel, value, dims in expected:
        shape = tuple(getattr(value, "shape", ()))
        for axis, want in enumerate(dims):
            if want is not None and (len(shape) <= axis or shape[axis] != want):
                raise FormatError(f"{base}/{rel}", f"shape {shape} does not fit the object (axis {axis} should be {want})")


def attach_raw(path: str, adata: Any, raw: Any) -> None:
    from annio._core import Raw

    if not isinstance(raw, Mapping):
        adata.raw = raw
        return
    try:
        adata._raw = Raw(adata, X=raw.get("X"), var=raw.get("var"), varm=raw.get("varm"))
    except (ValueError, TypeError) as err:
        raise FormatError(f"{path.rstrip('/')}/raw", f"stored raw does not fit the object: {err}") from err


@register
class RawGroup(GroupEncoding):
    spec = IOSpec("raw", "0.1.0")
    python_types = ("annio._core.raw.Raw",)

    def write_into(self, group: StorageGroup, raw: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        _check_2d(group.path, "X", raw.X)
        writer.write_elem(group, "X", raw.X, dataset_kwargs=dataset_kwargs)
        writer.write_elem(group, "var", raw.var, dataset_kwargs=dataset_kwargs)
        writer.write_elem(group, "varm", dict(raw.varm), dataset_kwargs=dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> Any:
        """An AnnData of the raw's X, var and varm (obs is a range index), as anndata's
        ``read_elem`` returns."""
        parts = read_raw_parts(node, reader)
        if parts.get("X") is not None and "var" in parts:
            parts["obs"] = _range_frame(parts["X"].shape[0])
        return build_anndata(node.path, parts)


def read_raw_parts(node: StorageGroup, reader: Reader) -> dict[str, Any]:
    """The stored parts of a ``raw`` group: X, var and varm."""
    return {key: reader.read_elem(node[key]) for key in ("X", "var", "varm") if key in node}


def _range_frame(n: int) -> Any:
    import pandas as pd

    return pd.DataFrame(index=pd.RangeIndex(n).astype(str))
