"""``awkward-array`` (needs the optional ``awkward`` package): the packed buffers of the
array, each stored as an ``array`` child, plus ``form`` (JSON) and ``length``.

A lazy read builds the array from the form with *virtual* buffers: each buffer is read from
the store the first time awkward needs it, so opening a file reads no awkward data and
``len()``, the type and subsetting by rows read nothing until values are used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from annio.errors import FormatError
from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, register
from annio.io._storage.adapter import StorageGroup


def _awkward(path: str) -> Any:
    try:
        import awkward as ak
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"{path}: reading an awkward array needs the 'awkward' package") from err
    return ak


@register
class AwkwardArray(GroupEncoding):
    spec = IOSpec("awkward-array", "0.1.0")
    python_types = ("awkward.highlevel.Array",)

    def write_into(self, group: StorageGroup, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        import awkward as ak

        form, length, buffers = ak.to_buffers(ak.to_packed(ak.materialize(value)))
        group.attrs.update({"length": int(length), "form": form.to_json()})  # the packing happens here
        for name, buffer in buffers.items():
            writer.write_elem(group, name, buffer, dataset_kwargs=dataset_kwargs)

    def _form_length(self, node: StorageGroup) -> tuple[Any, int]:
        ak = _awkward(node.path)
        attrs = node.attrs
        try:
            form = attrs["form"]
            form = ak.forms.from_json(form) if isinstance(form, str) else ak.forms.from_dict(json.loads(json.dumps(form)))
            length = int(attrs["length"])
        except (KeyError, ValueError, TypeError) as err:
            raise FormatError(node.path, f"awkward array lacks a valid 'form'/'length': {err}") from err
        if length < 0:
            raise FormatError(node.path, f"awkward array has a negative length {length}")
        return form, length

    def _build(self, node: StorageGroup, buffers: Mapping[str, Any]) -> Any:
        ak = _awkward(node.path)
        form, length = self._form_length(node)
        try:
            return ak.from_buffers(form, length, buffers)
        except (KeyError, ValueError, TypeError) as err:
            raise FormatError(node.path, f"awkward buffers do not match the stored form: {err}") from err

    def read(self, node: StorageGroup, reader: Reader) -> Any:
        return self._build(node, {key: reader.read_elem(child) for key, child in node.items()})

    def read_lazy(self, node: StorageGroup, reader: Reader, **kwargs: Any) -> Any:
        eager = Reader(reader.registry)  # each buffer is a plain array, read whole when needed

        def loader(child: Any) -> Callable[[], Any]:
            def load() -> Any:
                return eager.read_elem(child)

            return load

        return self._build(node, {key: loader(child) for key, child in node.items()})
