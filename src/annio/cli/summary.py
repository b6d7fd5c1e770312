"""What ``annio info`` prints: a summary of a stored AnnData read from metadata only (shapes,
column dtypes, X's format, dtype, nnz, chunking, codec; size on disk)."""

from __future__ import annotations

import math
from typing import Any

from annio.io._storage.peek import codec_of as codec

__all__ = ["summarize", "render", "encoding"]

_MAPPINGS = ("obsm", "varm", "obsp", "varp", "layers")


def encoding(node: Any) -> tuple[str, str]:
    """The encoding type and version stored on a node of the adapter or of the fast metadata
    view (:mod:`annio.io._storage.peek`); empty strings when absent."""
    return (str(node.attrs.get("encoding-type", "") or ""), str(node.attrs.get("encoding-version", "") or ""))


def _length(frame: Any) -> int | None:
    if frame is None:
        return None
    index = frame.attrs.get("_index")
    if index is not None and index in frame.keys():
        return int(frame[index].shape[0])
    return None


def _column(node: Any) -> str:
    enc = encoding(node)[0]
    if enc == "categorical":
        n = node["categories"].shape[0] if "categories" in node.keys() else "?"
        ordered = " ordered" if bool(node.attrs.get("ordered", False)) else ""
        return f"category{ordered}, {n}"
    if enc in ("nullable-integer", "nullable-boolean"):
        return f"nullable {node['values'].dtype}"
    if enc == "nullable-string-array":
        return "string"
    if enc == "string-array" or (not node.is_group and node.is_string):
        return "str"
    if not node.is_group:
        return str(node.dtype)
    return enc or "group"


def _frame(node: Any) -> dict[str, str]:
    if node is None:
        return {}
    order = node.attrs.get("column-order", [])
    order = [order] if isinstance(order, str) else list(order)
    return {str(c): _column(node[c]) for c in order if c in node.keys()}


def _matrix(node: Any) -> dict[str, Any]:
    enc = encoding(node)[0]
    out: dict[str, Any] = {"encoding": enc or ("group" if node.is_group else "array")}
    if node.is_group and enc in ("csr_matrix", "csc_matrix") and "data" in node.keys():
        data = node["data"]
        shape = [int(s) for s in node.attrs.get("shape", [])]
        nnz = int(data.shape[0])
        out.update(shape=shape, dtype=str(data.dtype), nnz=nnz, chunks=data.chunks, shards=data.shards, codec=codec(data))
        if shape and math.prod(shape):
            out["density"] = nnz / math.prod(shape)
    elif not node.is_group:
        out.update(shape=list(node.shape), dtype=str(node.dtype), chunks=node.chunks, shards=node.shards, codec=codec(node))
    elif node.is_group and enc == "dataframe":
        out.update(shape=[_length(node), len(_frame(node))])
    for key in ("chunks", "shards"):
        if out.get(key) is not None:
            out[key] = [int(c) for c in out[key]]
    return out


def summarize(root: Any) -> dict[str, Any]:
    """The summary of the AnnData stored at ``root`` (nothing but metadata is read)."""
    keys = set(root.keys())
    obs = root["obs"] if "obs" in keys else None
    var = root["var"] if "var" in keys else None
    X = _matrix(root["X"]) if "X" in keys and encoding(root["X"])[0] != "null" else None
    n_obs, n_vars = _length(obs), _length(var)
    if (n_obs is None or n_vars is None) and X and X.get("shape"):
        n_obs, n_vars = X["shape"][:2]
    out: dict[str, Any] = {
        "n_obs": n_obs,
        "n_vars": n_vars,
        "encoding": " ".join(encoding(root)).strip(),
        "obs": _frame(obs),
        "var": _frame(var),
        "uns": sorted(root["uns"].keys()) if "uns" in keys and root["uns"].is_group else [],
    }
    for name in _MAPPINGS:
        group = root[name] if name in keys else None
        out[name] = {k: _matrix(group[k]) for k in group.keys()} if group is not None and group.is_group else {}
    out["X"] = X
    raw = root["raw"] if "raw" in keys else None
    if raw is not None and raw.is_group:  # anndata stores ``raw=None`` as a null array
        out["raw"] = {"n_vars": _length(raw["var"]) if "var" in raw.keys() else None,
                      "X": _matrix(raw["X"]) if "X" in raw.keys() else None}
    return out


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n}"  # pragma: no cover


def _brief(m: dict[str, Any]) -> str:
    shape = "×".join(str(s) for s in m.get("shape") or [])
    enc = m["encoding"].replace("_matrix", "")
    parts = [p for p in (shape, enc if enc != "array" else "", m.get("dtype", "")) if p]
    return " ".join(parts)


def render(summary: dict[str, Any], *, source: str, kind: str, disk: tuple[int, int] | None) -> str:
    """``print(adata)``-like text of a summary."""
    where = f"{kind}"
    if disk is not None:
        where += f", {_size(disk[0])} on disk in {disk[1]} file{'s' if disk[1] != 1 else ''}"
    lines = [f"{source}: AnnData object with n_obs × n_vars = {summary['n_obs']} × {summary['n_vars']}  ({where})"]
    for name in ("obs", "var"):
        if summary[name]:
            lines.append(f"    {name}: " + ", ".join(f"'{k}' ({v})" for k, v in summary[name].items()))
    if summary["uns"]:
        lines.append("    uns: " + ", ".join(f"'{k}'" for k in summary["uns"]))
    for name in _MAPPINGS:
        if summary[name]:
            lines.append(f"    {name}: " + ", ".join(f"'{k}' ({_brief(v)})" for k, v in summary[name].items()))
    if summary.get("raw"):
        lines.append(f"    raw: {summary['raw']['n_vars']} vars" + (f", X {_brief(summary['raw']['X'])}" if summary["raw"]["X"] else ""))
    X = summary["X"]
    if X is None:
        lines.append("    X: none")
    else:
        text = f"    X: {X['encoding']} {X.get('dtype', '')}"
        if "nnz" in X:
            text += f", nnz {X['nnz']:,}"
            if "density" in X:
                text += f" ({100 * X['density']:.2f}% dense)"
        if X.get("chunks"):
            text += f", chunks {tuple(X['chunks'])}"
        if X.get("shards"):
            text += f", shards {tuple(X['shards'])}"
        if X.get("codec"):
            text += f", codec {X['codec']}"
        lines.append(text)
    return "\n".join(lines)
