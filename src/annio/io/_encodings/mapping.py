"""``dict``: a group with one child per key, each encoded recursively."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annio.io._encodings.registry import GroupEncoding, IOSpec, Reader, Writer, get_spec, register
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
        """The mapping; nested ``dict`` groups are walked with an explicit stack (not by
        recursion), so a tree of any depth reads. A user callback sees every node, so
        with one the reader recurses as usual."""
        if reader.callback is not None:
            return {key: reader.read_elem(child) for key, child in node.items()}
        out: dict = {}
        entered: list[StorageGroup] = []
        # ("visit", group, its dict) reads a group's members; ("leave", group, None) marks
        # the end of its subtree (a group is an ancestor only while its subtree is read)
        stack: list[tuple[str, StorageGroup, dict | None]] = [("visit", node, out)]
        try:
            while stack:
                action, group, target = stack.pop()
                if action == "leave":
                    reader.leave_group(group)
                    continue
                if group is not node and reader.enter_group(group):
                    entered.append(group)
                    stack.append(("leave", group, None))
                for key, child in group.items():
                    if isinstance(child, StorageGroup) and reader.registry.reader_for(child, get_spec(child)) is self:
                        target[key] = nested = {}
                        stack.append(("visit", child, nested))
                    else:
                        target[key] = reader.read_elem(child)
        finally:
            for group in entered:
                reader.leave_group(group)
        return out
