"""Reading files written by old anndata releases (before 0.8 introduced encoding metadata).

Two kinds of code live here:

* **Encodings** for nodes without ``encoding-type`` attributes (``IOSpec("", "")``, one for
  groups and one for arrays) and the read-only ``dataframe`` 0.1.0 encoding of the 0.7 era.
  They are registered like every other encoding, so ``read_elem`` uses them too.
* **Whole-object fix-ups** that only :func:`annio.read_h5ad` / :func:`annio.read_zarr` apply
  (as in anndata, ``read_elem`` on a root does not): compound-dataset ``obs``/``var``
  (< 0.7), ``raw.X``/``raw.var``/``raw.varm`` root keys, categories kept in
  ``uns["<col>_categories"]``, compound ``obsm``/``varm``, multi-column keys, and neighbour
  graphs moved from ``uns["neighbors"]`` to ``obsp``.

What is read follows current anndata: unattributed fixed-length byte-string arrays become
``str`` arrays (a 1-element one becomes a single ``str``), 0-d arrays become scalars,
compound arrays get ``str`` fields, ``h5sparse_format`` groups become sparse matrices.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from annio.errors import FormatError, OldFormatWarning
from annio.io._encodings.registry import LEGACY, ArrayEncoding, GroupEncoding, IOSpec, Reader, register
from annio.io._storage.adapter import StorageArray, StorageGroup, StorageNode

__all__ = [
    "LegacyGroup",
    "LegacyArray",
    "DataFrame010",
    "read_dataframe_legacy",
    "read_legacy_raw",
    "apply_legacy_fixups",
    "structured_to_dict",
    "read_h5sparse",
    "validate_compressed",
]


def _warn_unattributed(node: StorageNode) -> None:
    warnings.warn(
        f"Element '{node.path}' was written without encoding metadata.",
        OldFormatWarning,
        stacklevel=4,
    )


def required_attr(node: StorageNode, key: str) -> Any:
    """The attribute ``key`` of ``node``, or a :class:`FormatError` naming the node."""
    attrs = node.attrs
    if key not in attrs:
        raise FormatError(node.path, f"required attribute {key!r} is missing")
    return attrs[key]


# ----------------------------------------------------------------------------- sparse
def validate_compressed(
    path: str, shape: tuple[int, int], fmt: str, indptr: np.ndarray, indices: np.ndarray, n_data: int
) -> None:
    """Check a CSR/CSC triple against its shape before building a matrix from it.

    Raises :class:`FormatError` naming ``path`` when ``indptr`` has the wrong length, does
    not start at 0, decreases, or ends anywhere but at ``len(data)``, or when an index is
    outside the minor axis.
    """
    if len(shape) != 2 or any(int(s) < 0 for s in shape):
        raise FormatError(path, f"shape must be two non-negative integers, found {tuple(shape)}")
    major, minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
    if indptr.ndim != 1 or len(indptr) != major + 1:
        raise FormatError(f"{path}/indptr", f"expected {major + 1} entries for shape {tuple(shape)}, found {indptr.shape}")
    if len(indices) != n_data:
        raise FormatError(f"{path}/indices", f"expected {n_data} entries (as many as data), found {len(indices)}")
    if indptr.size:
        if indptr[0] != 0 or indptr[-1] != n_data:
            raise FormatError(f"{path}/indptr", f"must run from 0 to len(data)={n_data}, found {indptr[0]}..{indptr[-1]}")
        if np.any(np.diff(indptr) < 0):
            raise FormatError(f"{path}/indptr", "is not monotonically non-decreasing")
    if indices.size and (indices.min() < 0 or indices.max() >= minor):
        raise FormatError(f"{path}/indices", f"holds indices outside [0, {minor})")


def read_h5sparse(group: StorageGroup) -> sparse.csr_matrix | sparse.csc_matrix:
    """Read a pre-0.7 sparse group (``h5sparse_format`` / ``h5sparse_shape`` attributes)."""
    fmt = str(required_attr(group, "h5sparse_format"))
    if fmt not in ("csr", "csc"):
        raise FormatError(group.path, f"unknown h5sparse_format {fmt!r} (expected 'csr' or 'csc')")
    shape = tuple(int(s) for s in np.asarray(required_attr(group, "h5sparse_shape")).reshape(-1))
    data = group["data"].read()
    indices = group["indices"].read()
    indptr = group["indptr"].read()
    validate_compressed(group.path, shape, fmt, indptr, indices, len(data))  # type: ignore[arg-type]
    cls = sparse.csr_matrix if fmt == "csr" else sparse.csc_matrix
    return cls((data, indices, indptr), shape=shape)


# ----------------------------------------------------------------------------- arrays
def _decode_str(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _fix_structured(arr: np.ndarray) -> np.ndarray:
    """Give a compound array ``str`` fields: fixed-length bytes → fixed-length unicode,
    fixed-length unicode and variable-length (bytes) → ``object`` holding ``str``."""
    fields = []
    convert: list[str] = []
    for name in arr.dtype.names:
        field = arr.dtype.fields[name][0]
        base, sub = field.base, field.shape
        if base.kind == "S":
            fields.append((name, np.dtype(f"U{max(base.itemsize, 1)}"), sub) if sub else (name, f"U{max(base.itemsize, 1)}"))
        elif base.kind in "UO":
            fields.append((name, object, sub) if sub else (name, object))
            convert.append(name)
        else:
            fields.append((name, field))
    out = np.empty(arr.shape, dtype=np.dtype(fields))
    for name in arr.dtype.names:
        if name in convert:
            col = arr[name]
            decoded = np.frompyfunc(_decode_str, 1, 1)(col) if col.size else col.astype(object)
            out[name] = decoded
        elif arr.dtype.fields[name][0].base.kind == "S":
            out[name] = np.char.decode(arr[name], "utf-8")
        else:
            out[name] = arr[name]
    return out


def read_unattributed_array(node: StorageArray) -> Any:
    """Read an array without encoding metadata the way current anndata does."""
    dtype = node.dtype
    if node.is_null:
        return None
    if node.is_string:
        values = node.read()
        if dtype.kind in "SU":  # fixed-length: keep a fixed-length unicode dtype
            values = values.astype(f"U{max(dtype.itemsize // (4 if dtype.kind == 'U' else 1), 1)}")
            if dtype.kind == "S" and values.ndim == 1 and len(values) == 1:
                return str(values[0])  # old files stored single strings as 1-element arrays
        if values.ndim == 0:
            return str(values[()])
        return values
    values = node.read()
    if values.dtype.names:
        values = _fix_structured(values)
    if values.ndim == 0:
        return values[()]
    return values


@register
class LegacyArray(ArrayEncoding):
    """Arrays without encoding metadata (anndata < 0.8)."""

    spec = LEGACY

    def read(self, node: StorageArray, reader: Reader) -> Any:
        _warn_unattributed(node)
        return read_unattributed_array(node)


@register
class LegacyGroup(GroupEncoding):
    """Groups without encoding metadata: mappings, or pre-0.7 ``h5sparse`` matrices."""

    spec = LEGACY

    def read(self, node: StorageGroup, reader: Reader) -> Any:
        _warn_unattributed(node)
        if "h5sparse_format" in node.attrs:
            return read_h5sparse(node)
        return {key: reader.read_elem(child) for key, child in node.items()}


# ----------------------------------------------------------------------------- dataframes
def _categories_node(group: StorageGroup, column: StorageArray) -> StorageNode:
    """The node that a 0.7-era ``categories`` attribute points at: an HDF5 object reference
    (h5ad) or a path relative to the dataframe group (zarr)."""
    ref = column.attrs.raw_value("categories")
    if isinstance(ref, bytes | str):
        ref = ref.decode("utf-8") if isinstance(ref, bytes) else ref
        if not ref or ref.startswith("/") or ".." in ref.split("/"):
            raise FormatError(column.path, f"attribute 'categories' must be a path inside {group.path}, found {ref!r}")
        return group[ref]
    return column.resolve_reference(ref)


def _read_series(group: StorageGroup, key: str, reader: Reader) -> Any:
    node = group[key]
    if isinstance(node, StorageArray) and "categories" in node.attrs:
        cats_node = _categories_node(group, node)
        categories = reader.read_elem(cats_node)
        ordered = bool(cats_node.attrs.get("ordered", False))
        codes = np.asarray(reader.read_elem(node))
        if codes.dtype.kind not in "iu":
            raise FormatError(node.path, f"categorical codes must be integers, found dtype {codes.dtype}")
        if codes.size and (codes.min() < -1 or codes.max() >= len(categories)):
            raise FormatError(node.path, f"categorical codes outside [-1, {len(categories)})")
        return pd.Categorical.from_codes(codes, categories, ordered=ordered)
    return reader.read_elem(node)


@register
class DataFrame010(GroupEncoding):
    """The 0.7-era dataframe (read only): categorical columns are integer codes whose
    ``categories`` attribute points into the ``__categories`` subgroup."""

    spec = IOSpec("dataframe", "0.1.0")

    def read(self, node: StorageGroup, reader: Reader) -> pd.DataFrame:
        columns = required_attr(node, "column-order")
        columns = [columns] if isinstance(columns, str) else list(columns)
        index_key = str(required_attr(node, "_index"))
        index = _read_series(node, index_key, reader)
        data = {col: _read_series(node, col, reader) for col in columns}
        n = len(index)
        for col, values in data.items():
            if len(values) != n:
                raise FormatError(f"{node.path}/{col}", f"column has {len(values)} rows, the index has {n}")
        df = pd.DataFrame(data, index=pd.Index(index), columns=columns if columns else None)
        if index_key != "_index":
            df.index.name = index_key
        return df

    def write_into(self, group, value, writer, dataset_kwargs):  # pragma: no cover - read only
        raise TypeError("dataframe 0.1.0 is a read-only legacy encoding")


def read_dataframe_legacy(node: StorageArray) -> pd.DataFrame:
    """A pre-0.7 dataframe stored as a compound dataset whose first field is the index."""
    warnings.warn(
        f"'{node.path}' was written with a very old version of AnnData. Consider rewriting it.",
        OldFormatWarning,
        stacklevel=3,
    )
    values = node.read()
    if not values.dtype.names:
        raise FormatError(node.path, f"expected a dataframe (group or compound dataset), found an array of dtype {values.dtype}")
    values = _fix_structured(values)
    df = pd.DataFrame(values)
    return df.set_index(df.columns[0])


# ----------------------------------------------------------------------------- whole-object fix-ups
def structured_to_dict(value: Any) -> Any:
    """A compound ``obsm``/``varm`` dataset (< 0.7) split into one array per field."""
    if isinstance(value, np.ndarray) and value.dtype.names:
        return {name: value[name] for name in value.dtype.names}
    return value


def read_legacy_raw(root: StorageGroup, reader: Reader, read_x: Any = None) -> dict[str, Any]:
    """``raw.X`` / ``raw.var`` / ``raw.varm`` root keys (< 0.7) as a raw mapping."""
    raw: dict[str, Any] = {}
    if "raw.X" in root:
        raw["X"] = (read_x or reader.read_elem)(root["raw.X"])
    if "raw.var" in root:
        node = root["raw.var"]
        raw["var"] = read_dataframe_legacy(node) if isinstance(node, StorageArray) else reader.read_elem(node)
    if "raw.varm" in root:
        raw["varm"] = structured_to_dict(reader.read_elem(root["raw.varm"]))
    return raw


def _clean_uns(parts: MutableMapping[str, Any]) -> None:
    """Categories stored as ``uns["<col>_categories"]`` (< 0.7) become categorical columns."""
    uns = parts.get("uns")
    if not isinstance(uns, MutableMapping):
        return
    used: set[str] = set()
    for cats_key, cats in list(uns.items()):
        if not cats_key.endswith("_categories"):
            continue
        name = cats_key.replace("_categories", "")
        if isinstance(cats, str | int | np.integer):
            cats = [cats]
        for axis in ("obs", "var"):
            df = parts.get(axis)
            if not isinstance(df, pd.DataFrame) or name not in df.columns:
                continue
            codes = np.asarray(df[name].values)
            if codes.dtype.kind not in "iu" or not np.all(codes < len(cats)):
                continue
            df[name] = pd.Categorical.from_codes(codes, cats)
            used.add(cats_key)
    for key in used:
        del uns[key]


def _move_adjacency(parts: MutableMapping[str, Any]) -> None:
    """Neighbour graphs from ``uns["neighbors"]`` go to ``obsp`` (anndata does this for every
    object it reads)."""
    uns = parts.get("uns")
    neighbors = uns.get("neighbors") if isinstance(uns, Mapping) else None
    if not isinstance(neighbors, MutableMapping):
        return
    for key in ("distances", "connectivities"):
        value = neighbors.get(key)
        if isinstance(value, sparse.spmatrix | sparse.sparray | np.ndarray) and value.ndim == 2:
            warnings.warn(
                f"Moving element from .uns['neighbors'][{key!r}] to .obsp[{key!r}].\n\n"
                "This is where adjacency matrices should go now.",
                FutureWarning,
                stacklevel=4,
            )
            obsp = parts.get("obsp")
            if not isinstance(obsp, MutableMapping):
                obsp = parts["obsp"] = dict(obsp or {})
            obsp[key] = neighbors.pop(key)


def _multicol_keys(parts: MutableMapping[str, Any]) -> None:
    """``uns["obs_keys_multicol"]`` & co. (very old files): columns become obsm/varm entries."""
    uns = parts.get("uns")
    if not isinstance(uns, MutableMapping):
        return
    for axis, bases in (("obs", ("obs", "smp")), ("var", ("var",))):
        keys: list[str] = []
        for prefix in ("", "_"):
            found = [f"{prefix}{base}_keys_multicol" for base in bases if f"{prefix}{base}_keys_multicol" in uns]
            if found:
                keys = [str(k) for k in np.atleast_1d(uns.pop(found[0]))]
                break
        df = parts.get(axis)
        if not keys or not isinstance(df, pd.DataFrame):
            continue
        mapping = parts.get(f"{axis}m")
        if not isinstance(mapping, MutableMapping):
            mapping = parts[f"{axis}m"] = dict(mapping or {})
        for key in keys:
            cols = [c for c in df.columns if str(c).startswith(key)]
            mapping[key] = df[cols].values
            parts[axis] = df = df.drop(columns=cols)


def apply_legacy_fixups(parts: MutableMapping[str, Any], *, obs_was_dataset: bool) -> None:
    """Apply anndata's read-time backwards-compatibility fix-ups to the parts of an object
    (``X``, ``obs``, ``var``, ``uns``, ``obsm``, ...) before it is constructed."""
    for key in ("obsm", "varm"):
        if key in parts:
            parts[key] = structured_to_dict(parts[key])
    raw = parts.get("raw")
    if isinstance(raw, MutableMapping) and "varm" in raw:
        raw["varm"] = structured_to_dict(raw["varm"])
    if obs_was_dataset:
        _clean_uns(parts)
    _multicol_keys(parts)
    _move_adjacency(parts)
