"""Groups that hold AnnData objects instead of being one: a MuData ``.h5mu`` file (or zarr
store) has encoding ``MuData`` and its modalities as AnnData groups under ``mod/``.

Every reader that meets one (``read_h5ad``/``read_zarr``, ``read_lazy``, ``read_elem``) refuses
it with the same message: what the file is, its modalities, and how to read one of them.
"""

from __future__ import annotations

from annio.errors import FormatError
from annio.io._storage.adapter import StorageGroup

__all__ = ["is_container", "container_error", "refuse_container"]


def is_container(root: StorageGroup) -> bool:
    """Whether ``root`` is a MuData-like container (encoding ``MuData``, or ``mod/`` without
    being an AnnData)."""
    encoding = str(root.attrs.get("encoding-type", "") or "")
    return encoding == "MuData" or (encoding != "anndata" and "mod" in root)


def container_error(root: StorageGroup) -> FormatError:
    """The error naming the container, its modalities and how to read one modality."""
    mods = list(root["mod"].keys()) if "mod" in root and root["mod"].is_group else []
    first = mods[0] if mods else "rna"
    where = root.path.rstrip("/")
    return FormatError(
        root.path,
        f"{root.filename} is a MuData container (modalities: {', '.join(mods) or 'none'}), not an AnnData. "
        f"Read one modality from the open file, e.g. annio.io.read_elem(f[{where + '/mod/' + first!r}]) "
        f"or annio.read_h5ad(f[{where + '/mod/' + first!r}]) with f = h5py.File(path) (zarr: zarr.open_group(path)), "
        "or use the mudata package for the whole object",
    )


def refuse_container(root: StorageGroup) -> None:
    """Raise :func:`container_error` if ``root`` is a container."""
    if is_container(root):
        raise container_error(root)
