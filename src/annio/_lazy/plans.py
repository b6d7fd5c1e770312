"""What a lazy read touches, fetched ahead from a remote zarr store in few round trips.

* :func:`open_keys` — opening an AnnData lazily reads the ``uns`` tree (eagerly: it is
  small) and the obs/var indexes; their objects are listed from consolidated metadata (no
  I/O), so the open costs one metadata request plus one concurrent batch (see
  :mod:`annio.io._storage.prefetch`);
* :func:`prefetching_selection` / :func:`prefetching_lazy_object` — loading lazy elements
  (``to_memory`` of a lazy AnnData, a view of one, a lazy frame) plans every stored read the
  load will make — from the dask graphs (which blocks of which stored array, which rows)
  and the frames' row selections — and fetches the bytes ahead with
  :class:`~annio.io._storage.row_fetch.RowFetch`: shard indexes, then the inner chunks of
  dense arrays and of sparse ``indptr``, then the ``data``/``indices`` ranges those
  ``indptr`` values point at. Three rounds of concurrent requests, however many arrays,
  rows or shards; the decoders then read from memory.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import zarr

from annio.io._storage import engine, prefetch

__all__ = ["open_h5_objects", "open_keys", "prefetching_lazy_object", "prefetching_selection"]

#: ids of the values the enclosing :func:`prefetching_selection` blocks planned (this thread)
_PLANNED: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("annio_planned", default=frozenset())


def _index_node(frame: Any) -> Any:
    """The stored index of a dataframe node (None when it has none)."""
    from annio.io._storage.adapter import StorageGroup

    if not isinstance(frame, StorageGroup):
        return None
    index = frame.attrs.get("_index")
    if not isinstance(index, str) or index not in frame:
        return None
    return frame[index]


def _index_keys(frame: Any) -> list[str]:
    node = _index_node(frame)
    return [] if node is None else prefetch.plan_tree(node) or []


def open_keys(group: Any, *, load_annotation_index: bool = True) -> list[str] | None:
    """Keys a lazy open of the AnnData in ``group`` reads (None: local store or no
    consolidated metadata — nothing to prefetch)."""
    from annio.io._storage.adapter import StorageGroup, wrap
    from annio.io._storage.zarr_tree_plan import tree_position

    if prefetch.prefetch_store_of(group) is None or not isinstance(group, zarr.Group):
        return None
    if tree_position(group) is None and getattr(group.metadata, "consolidated_metadata", None) is None:
        return None
    root = wrap(group)
    keys: list[str] = []
    if "uns" in root:
        keys.extend(prefetch.plan_tree(root["uns"]) or [])
    if load_annotation_index:
        for name in ("obs", "var", "raw"):
            node = root[name] if name in root else None
            if name == "raw":
                node = node["var"] if isinstance(node, StorageGroup) and "var" in node else None
            if node is not None:
                keys.extend(_index_keys(node))
    return keys


def open_h5_objects(group: Any, *, load_annotation_index: bool = True) -> list[Any]:
    """What a lazy open of the AnnData in an HDF5 file opened from a URL reads whole — the
    obs/var indexes and the ``uns`` group — as h5py objects for
    :func:`~annio.io._storage.h5_prefetch.prefetching_datasets` ([] for other stores:
    nothing to fetch ahead)."""
    import h5py

    from annio.io._storage.adapter import StorageGroup, wrap
    from annio.io._storage.h5_ranges import opened_from_url

    if not isinstance(group, h5py.Group) or not opened_from_url(group.file):
        return []
    root = wrap(group)
    nodes = [root["uns"]] if "uns" in root else []
    if load_annotation_index:
        frames = [root[k] for k in ("obs", "var") if k in root]
        if isinstance(root.get("raw"), StorageGroup) and "var" in root["raw"]:
            frames.append(root["raw"]["var"])
        nodes += [n for n in map(_index_node, frames) if n is not None]
    return [n.raw for n in nodes]


# ----------------------------------------------------------------------------- selections
class _Plan:
    """The stored reads of a load, grouped by store."""

    def __init__(self) -> None:
        self.dense: dict[int, list[tuple[zarr.Array, np.ndarray, np.ndarray]]] = {}
        self.sparse: dict[int, list[tuple[Any, Any]]] = {}
        self.stores: dict[int, Any] = {}

    def _store(self, arr: Any) -> int | None:
        store = prefetch.prefetch_store_of(arr)
        if store is None:
            from annio.io._storage.h5_ranges import cached_file_of

            store = cached_file_of(getattr(arr, "raw", arr))  # an HDF5 file read from a URL
        if store is None:
            return None
        self.stores[id(store)] = store
        return id(store)

    def add_dense(self, arr: Any, starts: Any, stops: Any) -> None:
        raw = _raw(arr)
        sid = self._store(raw)
        if sid is not None:
            self.dense.setdefault(sid, []).append((raw, np.atleast_1d(starts), np.atleast_1d(stops)))

    def add_sparse(self, source: Any, rows: Any) -> None:
        sid = self._store(_raw(source.indptr))
        if sid is not None:
            self.sparse.setdefault(sid, []).append((source, rows))


def _raw(source: Any) -> Any:
    """What a plan reads from: a tree array as it is (planned from its metadata document,
    no zarr-python object built), else the zarr/h5py array under the node."""
    from annio.io._storage.zarr_tree_plan import tree_position

    node = source._open_node() if hasattr(source, "_open_node") else source
    if getattr(node, "_doc", None) is not None and tree_position(node) is not None:
        return node
    return getattr(node, "raw", node)


def _add_dask(plan: _Plan, x: Any) -> None:
    """The stored reads of computing dask array ``x``: the blocks of annio's lazy arrays its
    graph still needs after culling."""
    from dask.core import flatten

    from annio._lazy.pushdown import origin_of

    try:
        graph = x.__dask_graph__().cull(set(flatten(x.__dask_keys__())))
    except Exception:  # pragma: no cover - a graph annio did not make: read as it comes
        return
    wanted: dict[str, set[int]] = {}
    for layer in graph.layers.values():  # culling renames layers; the keys keep the array's name
        for k in layer.keys():
            if isinstance(k, tuple) and len(k) > 1 and isinstance(k[0], str) and k[0].startswith("annio-"):
                wanted.setdefault(k[0], set()).add(k)  # type: ignore[arg-type]
    for name, keys in wanted.items():
        origin = origin_of(name)
        if origin is None:
            continue
        blocks = sorted({int(k[1 + origin.major]) for k in keys if len(k) > 1 + origin.major})
        for i in blocks:
            block = origin.block(int(i))
            if origin.kind == "sparse":
                plan.add_sparse(origin.source, block if isinstance(block, tuple) else np.unique(block))
            elif isinstance(block, tuple):
                plan.add_dense(_raw(origin.source), block[0], block[1])
            else:
                plan.add_dense(_raw(origin.source), *origin.source.take_span(block))


def _add_frame(plan: _Plan, frame: Any) -> None:
    """The stored reads of loading lazy frame ``frame``: its selected rows of every stored
    column (categories whole)."""
    from annio._lazy.arrays import ArraySource
    from annio.io._storage.adapter import StorageArray

    source = frame._source
    if source is None:
        return
    rows = frame._rows
    names = [*frame._columns, *([frame._true_index_key] if frame._true_index_key else [])]
    checked = False
    span = None if rows is None else ArraySource.take_span(rows)  # the same rows of every column
    for col in names:
        if col not in source:
            continue
        node = source[col]
        arrays = [("", node)] if isinstance(node, StorageArray) else [(k, node[k]) for k in node.keys()]
        for part, arr in arrays:
            if not isinstance(arr, StorageArray) or not arr.shape:
                continue
            if not checked:  # the frame's arrays share one store: a local one has nothing to plan
                if plan._store(arr) is None:
                    return
                checked = True
            if span is None or part == "categories":
                plan.add_dense(arr, 0, arr.shape[0])
            else:
                plan.add_dense(arr, *span)


def _collect(plan: _Plan, value: Any) -> None:
    if value is None:
        return
    if type(value).__module__.startswith("dask"):
        _add_dask(plan, value)
    elif hasattr(value, "_rows") and hasattr(value, "_source"):
        _add_frame(plan, value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _collect(plan, v)


def _run_h5(fobj: Any, dense: list[tuple[Any, Any, Any]], sparse: list[tuple[Any, Any]]) -> list[Any]:
    """:func:`_run_store` for an HDF5 file read from a URL: the byte ranges of the wanted
    rows (row bytes of contiguous datasets, whole chunks of chunked ones) in two rounds of
    concurrent range requests."""
    import h5py

    from annio.io._storage import h5_prefetch
    from annio.io._storage.h5_ranges import dataset_byte_ranges
    from annio.io._storage.ranges import coalesce
    from annio.io._storage.sparse_read import major_read_plan, zarr_read_span

    # every chunk index at once: one round of requests per B-tree level, all datasets together
    datasets = [ds for ds, _, _ in dense] + [_raw(getattr(src, part)) for src, _ in sparse for part in ("indptr", "data", "indices")]
    fobj.chunk_tables([ds for ds in datasets if isinstance(ds, h5py.Dataset)])
    ranges: list[tuple[int, int]] = []
    for ds, starts, stops in dense:
        ranges.extend(dataset_byte_ranges(ds, starts, stops))
    later = []
    for source, rows in sparse:
        (starts, stops), values = major_read_plan(source, rows)
        ranges.extend(dataset_byte_ranges(_raw(source.indptr), *zarr_read_span(starts, stops)))
        later.append((source, values))
    done = []
    try:
        fobj.fetch(*_columns(coalesce([s for s, _ in ranges], [e for _, e in ranges])))
        done.append(fobj)
        ranges = h5_prefetch.selection_heap_ranges(fobj, dense)  # string columns' heaps
        if later or ranges:
            for source, values in later:
                starts, stops = zarr_read_span(*values())  # reads indptr: from memory now
                for part in (source.data, source.indices):
                    ranges.extend(dataset_byte_ranges(_raw(part), starts, stops))
            fobj.fetch(*_columns(coalesce([s for s, _ in ranges], [e for _, e in ranges])))
            done.append(fobj)
    except BaseException:
        for f in done:
            f.drop()
        raise
    return done


def _columns(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    return [s for s, _ in ranges], [e for _, e in ranges]


class _H5Release:
    def __init__(self, fobj: Any) -> None:
        self.fobj = fobj

    def release(self) -> None:
        self.fobj.drop()


def _run_store(store: Any, dense: list[tuple[Any, Any, Any]], sparse: list[tuple[Any, Any]]) -> list[Any]:
    from annio.io._storage.row_fetch import RowFetch
    from annio.io._storage.sparse_read import major_read_plan, zarr_read_span

    first = RowFetch(store)
    for arr, starts, stops in dense:
        first.add(arr, starts, stops)
    later = []
    value_arrays: dict[int, Any] = {}
    for source, rows in sparse:
        (starts, stops), values = major_read_plan(source, rows)
        first.add(_raw(source.indptr), *zarr_read_span(starts, stops))
        later.append((source, values))
        for part in (source.data, source.indices):
            value_arrays[id(_raw(part))] = _raw(part)
    fetches = [first]
    try:
        engine.run(first.fetch(index_only=value_arrays.values()))
        if later:
            second = RowFetch(store)
            fetches.append(second)
            for source, values in later:
                starts, stops = zarr_read_span(*values())  # reads indptr: from memory now
                second.add(_raw(source.data), starts, stops)
                second.add(_raw(source.indices), starts, stops)
            engine.run(second.fetch())
    except BaseException:
        for f in fetches:
            f.release()
        raise
    return fetches


@contextmanager
def prefetching_selection(values: Iterable[Any]) -> Iterator[None]:
    """Inside the block, the stored reads of loading ``values`` (dask arrays, lazy frames,
    dicts of them) from remote zarr stores are answered from memory: planned and fetched
    on entry, dropped on exit. A no-op for local stores, and for values an enclosing block
    already planned (a lazy AnnData's ``to_memory`` loads its frames with their own
    ``to_memory``)."""
    values = list(values)
    planned = _PLANNED.get()
    if values and all(id(v) in planned for v in values):
        yield
        return
    plan = _Plan()
    for value in values:
        _collect(plan, value)
    fetches: list[Any] = []
    token = _PLANNED.set(planned | {id(v) for v in values})
    try:
        for sid, store in plan.stores.items():
            if not hasattr(store, "fetch_ranges"):  # an HDF5 file read from a URL
                done = _run_h5(store, plan.dense.get(sid, []), plan.sparse.get(sid, []))
                fetches.extend(_H5Release(f) for f in done)
            else:
                fetches.extend(_run_store(store, plan.dense.get(sid, []), plan.sparse.get(sid, [])))
        yield
    finally:
        _PLANNED.reset(token)
        for f in fetches:
            f.release()


def _elements(adata: Any) -> list[Any]:
    out: list[Any] = [adata.X, adata.obs, adata.var, adata.uns]
    for attr in ("layers", "obsm", "varm", "obsp", "varp"):
        mapping = getattr(adata, attr)
        out.extend(mapping[k] for k in mapping.keys())
    raw = adata.raw
    if raw is not None:
        out.extend([raw.X, raw.var, *(raw.varm[k] for k in raw.varm.keys())])
    return out


@contextmanager
def prefetching_lazy_object(adata: Any) -> Iterator[None]:
    """While a lazily read AnnData (or a view of one) from a remote zarr store is loaded
    (``to_memory``), serve the stored reads of its lazy elements from memory: only the
    bytes the selection needs, fetched in three concurrent rounds (``uns`` is in memory)."""
    from annio.io._storage.remote import RemoteH5File

    file = getattr(adata, "_file", None)  # a LazyFile keeps the opened root group as _handle
    group = getattr(file, "_handle", None) if getattr(file, "filename", 1) is None else None
    remote_zarr = isinstance(group, zarr.Group) and prefetch.prefetch_store_of(group) is not None
    if not (remote_zarr or isinstance(group, RemoteH5File)):
        yield
        return
    with prefetching_selection(_elements(adata)):
        yield
