"""anndata's ``experimental`` names, kept for compatibility; each has a real home elsewhere
(:mod:`annio.io._encodings.registry` for dispatched I/O, :mod:`annio._lazy` for lazy access)."""


from types import SimpleNamespace as _SimpleNamespace

from annio.io._encodings.registry import IOSpec, read_dispatched, write_dispatched
from annio._lazy import Dataset2D, read_elem_lazy, read_lazy
from annio._ops.concat_on_disk import concat_on_disk

#: ``anndata.experimental.backed.Dataset2D`` lives here in anndata.
backed = _SimpleNamespace(Dataset2D=Dataset2D)

__all__ = ["IOSpec", "read_dispatched", "write_dispatched", "read_lazy", "read_elem_lazy", "Dataset2D", "backed", "concat_on_disk"]


def __dir__() -> list[str]:
    return list(__all__)
