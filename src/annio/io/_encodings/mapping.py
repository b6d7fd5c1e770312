"""``dict``: a group with one child per key, each encoded recursively."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, register
from annio.io._storage.adapter import StorageGroup


@register
class Dict(GroupEncoding):
    spec = IOSpec("dict", "0.1.0")
    python_types = (dict, Mapping)

    def write_into(self, group: StorageGroup, value: Mapping, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> None:
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{group.path}: dict key {key!r} is not a str; only str keys can be stored")
            writer.write_elem(group, key, item, dataset_kwargs=dataset_kwargs)

    def read(self, node: StorageGroup, reader: Reader) -> dict:
        return {key: reader.read_elem(child) for key, child in node.items()}
