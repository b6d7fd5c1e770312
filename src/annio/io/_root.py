"""Reading the parts of an AnnData object from its root group (``X``, ``obs``, ``var``,
``uns``, ``raw``, ...), with the fix-ups older files need. Used by the whole-file readers
and by backed mode."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pandas as pd
from scipy import sparse

from annio.errors import AnnioWarning, FormatError
from annio.io._encodings import legacy
from annio.io._encodings.containers import refuse_container
from annio.io._encodings.registry import Reader
from annio.io._storage.adapter import StorageArray, StorageGroup, wrap

__all__ = ["refuse_container", "read_root", "build_adata", "normalize_as_sparse", "sparse_format"]

# children of the root group an AnnData object is built from
_PARTS = ("X", "obs", "var", "uns", "obsm", "varm", "obsp", "varp", "layers", "raw")


def normalize_as_sparse(as_sparse: str | Sequence[Any]) -> set[str]:
    items = [as_sparse] if isinstance(as_sparse, str) else list(as_sparse)
    out = set()
    for item in items:
        if item in {("raw", "X"), "raw.X", "raw/X"}:
            out.add("raw/X")
        elif item == "X":
            out.add("X")
        else:
            raise NotImplementedError("Currently only `X` and `raw/X` can be read as sparse.")
    return out


def sparse_format(fmt: Any) -> Literal["csr", "csc"]:
    if fmt is None:
        return "csr"
    if isinstance(fmt, str) and fmt in ("csr", "csc"):
        return fmt  # type: ignore[return-value]
    if isinstance(fmt, type) and issubclass(fmt, sparse.csr_matrix | sparse.csr_array):
        return "csr"
    if isinstance(fmt, type) and issubclass(fmt, sparse.csc_matrix | sparse.csc_array):
        return "csc"
    raise NotImplementedError("Dense formats can only be read to CSR or CSC matrices at this time.")


def _read_dense_as_sparse(node: StorageArray, fmt: Literal["csr", "csc"], chunk_size: int) -> sparse.spmatrix:
    """Read a dense 2-D array block by block (``chunk_size`` rows) into a sparse matrix."""
    if node.ndim != 2:
        raise FormatError(node.path, f"can only read a 2-D array as sparse, found shape {node.shape}")
    n = node.shape[0]
    step = max(1, int(chunk_size))
    blocks = [sparse.csr_matrix(node.read((slice(i, min(i + step, n)), slice(None)))) for i in range(0, n, step)]
    out = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix(node.shape, dtype=node.dtype)
    return out.asformat(fmt)


class _RootReader:
    """Reads the parts of an AnnData object from a root group, applying the legacy fix-ups."""

    def __init__(self, root: StorageGroup, *, as_sparse: set[str] = frozenset(), sparse_fmt: str = "csr", chunk_size: int = 6000, skip: Sequence[str] = (),
                 on_part: Callable[[str, int, int], None] | None = None) -> None:
        self.root = root
        self.on_part = on_part  # told (key, done, total) after each part is read (``annio validate``)
        self.reader = Reader()
        self.as_sparse = as_sparse
        self.sparse_fmt = sparse_fmt
        self.chunk_size = chunk_size
        self.skip = set(skip)

    def read_x(self, node: Any, name: str) -> Any:
        if name in self.as_sparse and isinstance(node, StorageArray):
            return _read_dense_as_sparse(node, self.sparse_fmt, self.chunk_size)  # type: ignore[arg-type]
        return self.reader.read_elem(node)

    def read_dataframe(self, node: Any) -> pd.DataFrame:
        if isinstance(node, StorageArray):
            return legacy.read_dataframe_legacy(node)  # < 0.7: a compound dataset
        return self.reader.read_elem(node)

    def read_raw(self, node: StorageGroup) -> dict[str, Any]:
        if not isinstance(node, StorageGroup):
            raise FormatError(node.path, "expected a group for raw, found an array")
        raw: dict[str, Any] = {}
        for key in node.keys():
            child = node[key]
            if key == "X":
                if "raw/X" not in self.skip:
                    raw["X"] = self.read_x(child, "raw/X")
            elif key == "var":
                raw["var"] = self.read_dataframe(child)
            elif key == "varm":
                raw["varm"] = self.reader.read_elem(child)
        return raw

    def read_parts(self) -> dict[str, Any]:
        root = self.root
        keys = root.keys()
        if "raw" in keys and any(k.startswith("raw.") for k in keys):
            raise FormatError(root.path, f"{root.filename} has both legacy and current raw formats.")
        parts: dict[str, Any] = {}
        total = len(keys)
        for done, key in enumerate(keys, 1):
            if self.on_part is not None:
                self.on_part(key, done - 1, total)
            if key.startswith("raw.") or key in self.skip:
                continue
            if key not in _PARTS:
                warnings.warn(
                    f"{root.path.rstrip('/')}/{key}: not an AnnData element (expected one of {', '.join(_PARTS)}); ignored",
                    AnnioWarning,
                    stacklevel=4,
                )
                continue
            node = root[key]
            if key == "X":
                parts["X"] = self.read_x(node, "X")
            elif key in ("obs", "var"):
                parts[key] = self.read_dataframe(node)
            elif key == "raw":
                if isinstance(node, StorageArray) and self.reader.read_elem(node) is None:
                    continue  # anndata 0.13's zarr writer stores a missing raw as a `null` element
                parts["raw"] = self.read_raw(node)
            else:
                parts[key] = self.reader.read_elem(node)
        if "raw.X" in keys or "raw.var" in keys or "raw.varm" in keys:
            read_x = (lambda n: self.read_x(n, "raw/X")) if "raw/X" not in self.skip else None
            raw = legacy.read_legacy_raw(root, self.reader, read_x)
            if "raw/X" in self.skip:
                raw.pop("X", None)
            parts["raw"] = raw
        obs_was_dataset = "obs" in keys and isinstance(root["obs"], StorageArray)
        legacy.apply_legacy_fixups(parts, obs_was_dataset=obs_was_dataset)
        return parts


def read_root(group: Any, **kwargs: Any) -> dict[str, Any]:
    """The parts (``X``, ``obs``, ``var``, ``uns``, ``raw`` as a mapping, ...) of the AnnData
    stored in ``group``, with legacy fix-ups applied. Used by the readers and backed mode."""
    root = wrap(group)
    if not isinstance(root, StorageGroup):
        raise FormatError(root.path, "expected an AnnData group, found an array")
    refuse_container(root)
    return _RootReader(root, **kwargs).read_parts()


def build_adata(parts: dict[str, Any]) -> Any:
    """Construct an :class:`annio.AnnData` from its parts (raw given as a mapping)."""
    from annio.io._encodings.anndata_group import build_anndata

    parts = dict(parts)
    if not parts.get("raw", True):  # an empty raw mapping: no raw
        parts.pop("raw")
    return build_anndata("/", parts)


