"""Walking a stored AnnData without reading its data (shared by ``info`` and ``validate``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from annio.io._encodings.registry import get_spec
from annio.io._storage.adapter import StorageArray, StorageGroup, StorageNode


@dataclass
class Entry:
    node: StorageNode
    depth: int

    def describe(self) -> str:
        spec = get_spec(self.node)
        enc = f"{spec.encoding_type} {spec.encoding_version}".strip() or "(no encoding)"
        if isinstance(self.node, StorageArray):
            extra = f" shape={self.node.shape} dtype={self.node.dtype}"
            if self.node.chunks:
                extra += f" chunks={self.node.chunks}"
            if self.node.shards:
                extra += f" shards={self.node.shards}"
        else:
            shape = self.node.attrs.get("shape")
            extra = f" shape={tuple(shape)}" if shape is not None else ""
        return f"{'  ' * self.depth}{self.node.name or '/'}: {enc}{extra}"


def walk(node: StorageNode, depth: int = 0, max_depth: int | None = None) -> Iterator[Entry]:
    yield Entry(node, depth)
    if isinstance(node, StorageGroup) and (max_depth is None or depth < max_depth):
        for key in node.keys():
            yield from walk(node[key], depth + 1, max_depth)
