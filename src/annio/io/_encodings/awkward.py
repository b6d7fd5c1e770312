"""``awkward-array`` (needs the optional ``awkward`` package): the packed buffers of the
array, each stored as an ``array`` child, plus ``form`` (JSON) and ``length``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from annio.errors import FormatError
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, register
from annio.io._storage.adapter import StorageGroup


@register
class AwkwardArray(GroupEncoding):
    spec = IOSpec("awkward-array", "0.1.0")
    python_types = ("awkward.highlevel.Array",)

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        import awkward as ak

        form, length, buffers = ak.to_buffers(ak.to_packed(value))
        group.attrs.update({"length": int(length), "form": form.to_json()})  # the packing happens here
        for name, buffer in buffers.items():
            writer.write_elem(group, name, buffer, dataset_kwargs=dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> Any:
        try:
            import awkward as ak
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"{node.path}: reading an awkward array needs the 'awkward' package") from err
        attrs = node.attrs
        try:
            form = ak.forms.from_json(attrs["form"]) if isinstance(attrs["form"], str) else ak.forms.from_dict(json.loads(json.dumps(attrs["form"])))
            length = int(attrs["length"])
        except (KeyError, ValueError) as err:
            raise FormatError(node.path, f"awkward array lacks a valid 'form'/'length': {err}") from err
        buffers = {key: reader.read_elem(child) for key, child in node.items()}
        return ak.from_buffers(form, length, buffers)

    def read_lazy(self, node: StorageGroup, reader: Reader, **kwargs: Any) -> Any:
        # read eagerly (as anndata's lazy reader does): awkward needs its buffers in memory
        return self.read(node, Reader(reader.registry))
