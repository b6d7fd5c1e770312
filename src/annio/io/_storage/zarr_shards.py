"""Parallel zstd for sharded zarr v3 on local disk: encode and decode inner chunks in threads.

zarr-python (and the zarrs pipeline) encode and decode the inner chunks of one shard on one
core. For the layout annio writes by default — one ``sharding_indexed`` codec over
``bytes`` + ``zstd`` with a ``bytes`` + ``crc32c`` index at the end, in a
:class:`zarr.storage.LocalStore` — annio builds each shard file itself instead: the inner
chunks are compressed in a thread pool (numcodecs' zstd releases the GIL), concatenated and
followed by the index, exactly the bytes zarr writes (same codec, same level, empty chunks
skipped as ``array.write_empty_chunks=False`` does). Reading does the reverse, decompressing
straight into the output array. Shards are processed one after the other (the next shard's
file is read or written while the pool works on the current one), so memory stays bounded
by about two shards.

Arrays are still created (metadata, attributes) by zarr; only chunk bytes take this path.
Part of the storage adapter (:mod:`annio.io._storage.adapter`): encodings never see it.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import zstd as _zstd
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
from zarr.storage import LocalStore

from annio.errors import FormatError
from annio.io._storage.direct_write import write_file
from annio.settings import settings

__all__ = ["Layout", "can_write_direct", "write_shards", "write_rows", "create_with_data", "can_read_direct", "read_shards", "read_layout", "read_all", "decode_inner"]

#: Below this many bytes (uncompressed) chunks are coded on the calling thread: a pool's
#: start-up and hand-offs cost more than they save on a few MiB (and far more on a loaded
#: machine, where each hand-off waits for a time slice).
MIN_PARALLEL_BYTES = 4 << 20
_EMPTY = np.uint64(2**64 - 1)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class _Layout:
    """Everything the fast path needs to know about one eligible array."""

    name: str  # element path, for errors
    shape: tuple[int, ...]
    shards: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill: np.ndarray  # 0-d, of dtype
    level: int | None  # zstd level; None: no compression
    directory: Path  # the array's directory
    key: Callable[[tuple[int, ...]], str]  # shard grid coordinates -> chunk key
    # reads a shard's bytes (None: missing); default: the local file. Remote stores whose
    # shards were prefetched (annio.io._storage.prefetch) hand in their cache here.
    source: Callable[[Path], bytes | None] | None = None
    sharded: bool = True  # False: a plain chunked array, one chunk per file (reads only)

    @property
    def per_shard(self) -> tuple[int, ...]:
        return tuple(s // c for s, c in zip(self.shards, self.chunks, strict=True))

    @property
    def index_nbytes(self) -> int:
        return math.prod(self.per_shard) * 16 + 4

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunks) * self.dtype.itemsize

    def shard_path(self, coords: tuple[int, ...]) -> Path:
        return self.directory / self.key(coords)

    def grid(self, axis0: range | None = None) -> Iterator[tuple[int, ...]]:
        """Shard grid coordinates in C order (axis 0 restricted to ``axis0``)."""
        ranges = [range(math.ceil(s / c)) for s, c in zip(self.shape, self.shards, strict=True)]
        if axis0 is not None:
            ranges[0] = axis0
        return itertools.product(*ranges)

    def inner(self, shard: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        """Origins (array coordinates) of the inner chunks of ``shard``, in the C order of
        the shard index."""
        starts = [range(k * s, (k + 1) * s, c) for k, s, c in zip(shard, self.shards, self.chunks, strict=True)]
        return itertools.product(*starts)

    def region(self, origin: tuple[int, ...]) -> tuple[slice, ...] | None:
        """The part of the array an inner chunk covers (None: entirely outside)."""
        if any(o >= s for o, s in zip(origin, self.shape, strict=True)):
            return None
        return tuple(slice(o, min(o + c, s)) for o, c, s in zip(origin, self.chunks, self.shape, strict=True))


Layout = _Layout


def _little_endian(codec: Any, dtype: np.dtype) -> bool:
    if not isinstance(codec, BytesCodec):
        return False
    endian = getattr(codec.endian, "value", codec.endian)
    return endian == "little" or (endian is None and dtype.itemsize == 1)


def _layout(arr: Any, *, writing: bool) -> _Layout | None:
    """The array's :class:`_Layout` when the fast path can handle it, else None."""
    try:
        if not isinstance(arr, zarr.Array) or sys.byteorder != "little":
            return None
        meta = arr.metadata
        store = arr.store
        source = None if writing else _cached_source(store, arr)
        if meta.zarr_format != 3 or not arr.shape or (writing and store.read_only):
            return None
        if not isinstance(store, LocalStore) and source is None:
            return None
        if not writing and not _array_config(getattr(arr, "config", None), "read_missing_chunks", True):
            return None  # zarr >= 3.2 can be told to fail on missing chunks: leave that to zarr
        dtype = np.dtype(arr.dtype)
        if dtype.kind not in "biuf" or dtype.byteorder == ">" or getattr(meta, "storage_transformers", ()):
            return None
        codecs = tuple(meta.codecs)
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        sharding = codecs[0]
        if getattr(sharding.index_location, "value", sharding.index_location) != "end":
            return None
        inner, index = tuple(sharding.codecs), tuple(sharding.index_codecs)
        if not inner or not _little_endian(inner[0], dtype):
            return None
        if len(index) != 2 or not _little_endian(index[0], np.dtype("u8")) or not isinstance(index[1], Crc32cCodec):
            return None
        if len(inner) == 1:
            level = None
        elif len(inner) == 2 and isinstance(inner[1], ZstdCodec) and not inner[1].checksum:
            level = int(inner[1].level)
        else:
            return None
        shards, chunks = tuple(int(s) for s in arr.shards), tuple(int(c) for c in sharding.chunk_shape)
        shape = tuple(int(s) for s in arr.shape)
        if not len(shards) == len(chunks) == len(shape) or any(c <= 0 or s % c for s, c in zip(shards, chunks, strict=True)):
            return None
        if source is not None:
            directory = Path(arr.path.strip("/") or ".")
        else:
            directory = Path(store.root) / arr.path if arr.path else Path(store.root)
        fill = np.asarray(arr.fill_value, dtype=dtype)
        return _Layout("/" + arr.path.strip("/"), shape, shards, chunks, dtype.newbyteorder("<"), fill, level, directory, meta.encode_chunk_key, source)
    except (AttributeError, TypeError, ValueError, NotImplementedError):  # an unusual array: let zarr handle it
        return None


def _cached_source(store: Any, arr: Any) -> Callable[[Path], bytes | None] | None:
    """A reader of ``arr``'s shards from a prefetch cache holding all of them, else None."""
    cached = getattr(store, "cached_objects", None)
    if cached is None or not arr.shape:
        return None
    prefix = arr.path.strip("/")
    objects = cached([f"{prefix}/{k}" if prefix else k for k in arr._async_array._iter_shard_keys()])
    if objects is None:
        return None
    return lambda path: objects[path.as_posix().lstrip("./") if not prefix else path.as_posix()]


def can_write_direct(arr: Any) -> bool:
    """Whether :func:`write_shards` can write ``arr`` (see the module docstring)."""
    return _layout(arr, writing=True) is not None


def writes_whole_shards(array: Any) -> bool:
    """Whether whole-shard writes of an adapter array go straight to files (see above)."""
    return array.backend == "zarr" and can_write_direct(array.raw)


def can_read_direct(arr: Any) -> bool:
    """Whether :func:`read_shards` can read ``arr``."""
    return _layout(arr, writing=False) is not None


# ----------------------------------------------------------------------------- running jobs
class _Runner:
    """Jobs on the process-wide coding pool (streamed writes call once per shard), or at once
    when the work is small; an error in the ``with`` block cancels the unstarted jobs."""

    def __init__(self, nbytes: int) -> None:
        threads = settings.resolved_io_threads
        self.pool = _coding_pool(threads) if threads > 1 and nbytes >= MIN_PARALLEL_BYTES else None
        self.futures: list[Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self.pool is not None:
            future = self.pool.submit(fn, *args)
            self.futures.append(future)
            return future
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        for future in self.futures:
            future.cancel()
        if exc[0] is not None:
            wait(self.futures)  # none of them still touches the caller's buffers


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _coding_pool(threads: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS.setdefault(threads, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="annio-coding"))
    return pool


def _pipelined(items: Iterator[Any], start: Callable[[Any], Any], finish: Callable[[Any], None]) -> None:
    """``finish(start(item))`` for every item, with the next item started before the
    previous one is finished (so file I/O overlaps the pool's work)."""
    pending: deque = deque()
    for item in items:
        pending.append(start(item))
        if len(pending) > 1:
            finish(pending.popleft())
    while pending:
        finish(pending.popleft())


# ----------------------------------------------------------------------------- writing
def _array_config(config: Any, name: str, default: Any) -> bool:
    value = getattr(config, name, None)
    return bool(default if value is None else value)


def _chunk_encoder(lay: _Layout, data: np.ndarray, row0: int, arr_config: Any) -> Callable[[tuple[int, ...]], bytes | None]:
    """``encode(origin)`` → the encoded inner chunk at ``origin`` (array coordinates), or None
    for a chunk outside the array or (unless zarr's ``array.write_empty_chunks``) holding
    only the fill value. ``data`` holds the array's rows from ``row0`` on."""
    write_empty = _array_config(arr_config, "write_empty_chunks", zarr.config.get("array.write_empty_chunks", False))
    utype = np.dtype(f"<u{lay.dtype.itemsize}")
    fill_bits = lay.fill.reshape(1).view(utype)[0]  # compare bit patterns, like zarr (-0.0, NaN)
    level = lay.level

    def encode(origin: tuple[int, ...]) -> bytes | None:
        region = lay.region(origin)
        if region is None:
            return None
        block = data[(slice(region[0].start - row0, region[0].stop - row0), *region[1:])]
        if block.shape != lay.chunks:  # edge chunk: padded with the fill value
            padded = np.full(lay.chunks, lay.fill, dtype=lay.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        else:
            block = np.ascontiguousarray(block)
        if not write_empty:
            bits = block.reshape(-1).view(utype)
            if bits[0] == fill_bits and not np.any(bits != fill_bits):
                return None
        return block.tobytes() if level is None else _zstd.compress(block, level, False)

    return encode


def _shard_bytes(lay: _Layout, parts: list[bytes | None]) -> tuple[list[bytes], bytes] | None:
    """The chunks to concatenate and the index (with its CRC32C) of one shard; None when no
    chunk holds data (zarr writes no file then)."""
    index = np.full((len(parts), 2), _EMPTY, dtype="<u8")
    payload: list[bytes] = []
    offset = 0
    for i, part in enumerate(parts):
        if part is not None:
            index[i] = (offset, len(part))
            offset += len(part)
            payload.append(part)
    if not payload:
        return None
    raw = index.tobytes()
    return payload, raw + google_crc32c.value(raw).to_bytes(4, "little")


def write_shards(arr: zarr.Array, data: np.ndarray, row0: int = 0) -> None:
    """Write ``data`` into the shards of ``arr`` (which :func:`can_write_direct` accepts)
    covering rows ``row0 : row0 + len(data)``; both ends must lie on shard boundaries (or the
    end of the array). Inner chunks are compressed in a thread pool, shard by shard."""
    lay = _layout(arr, writing=True)
    if lay is None:
        raise ValueError(f"{getattr(arr, 'path', arr)!r} is not eligible for direct shard writes")
    data = np.asarray(data)
    row1 = row0 + (data.shape[0] if data.ndim else 0)
    if data.shape[1:] != lay.shape[1:] or row0 % lay.shards[0] or (row1 % lay.shards[0] and row1 != lay.shape[0]) or row1 > lay.shape[0]:
        raise ValueError(f"{lay.name}: rows {row0}:{row1} of shape {data.shape} do not cover whole shards of {lay.shape} (shards {lay.shards})")
    if data.dtype != lay.dtype:
        data = data.astype(lay.dtype)
    encode = _chunk_encoder(lay, data, row0, getattr(arr, "config", None))
    rows = range(row0 // lay.shards[0], math.ceil(row1 / lay.shards[0]))

    with _Runner(data.nbytes) as runner:

        def start(shard: tuple[int, ...]) -> tuple[tuple[int, ...], list[Future]]:
            return shard, [runner.submit(encode, origin) for origin in lay.inner(shard)]

        def finish(item: tuple[tuple[int, ...], list[Future]]) -> None:
            shard, futures = item
            built = _shard_bytes(lay, [f.result() for f in futures])
            path = lay.shard_path(shard)
            if built is None:
                path.unlink(missing_ok=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, [*built[0], built[1]])

        _pipelined(lay.grid(rows), start, finish)


def write_rows(arr: Any, selection: Any, values: Any) -> bool:
    """Write ``values`` to ``arr[selection]`` through :func:`write_shards` when the selection
    is a run of whole shards along axis 0 of an eligible array (streamed block writes);
    returns False (nothing written) otherwise."""
    if not isinstance(arr, zarr.Array) or not isinstance(values, np.ndarray) or values.dtype.kind not in "biuf":
        return False
    if isinstance(selection, tuple) and len(selection) == 1:
        selection = selection[0]
    if not isinstance(selection, slice) or selection.step not in (None, 1):
        return False
    lay = _layout(arr, writing=True)
    if lay is None:
        return False
    start, stop, _ = selection.indices(lay.shape[0])
    if values.shape != (stop - start, *lay.shape[1:]) or start % lay.shards[0] or (stop % lay.shards[0] and stop != lay.shape[0]) or stop <= start:
        return False
    write_shards(arr, values, start)
    return True


def create_with_data(group: zarr.Group, key: str, data: np.ndarray, kwargs: Mapping[str, Any]) -> zarr.Array:
    """Create array ``key`` in ``group`` holding ``data``: metadata by zarr, chunks by
    :func:`write_shards` when eligible (else by zarr, in the same single call as before)."""
    if kwargs.get("shards") is not None and data.dtype.kind in "biuf" and isinstance(group.store, LocalStore) and group.metadata.zarr_format == 3:
        arr = group.create_array(key, shape=data.shape, dtype=data.dtype, **kwargs)
        if can_write_direct(arr):
            write_shards(arr, data)
        else:
            arr[...] = data
        return arr
    return group.create_array(key, data=data, **kwargs)


# ----------------------------------------------------------------------------- reading
def _frame_content_size(buf: memoryview) -> int | None:
    """The decompressed size a zstd frame header declares (None: not declared / not zstd)."""
    if len(buf) < 6 or bytes(buf[:4]) != _ZSTD_MAGIC:
        return None
    fhd = buf[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single else 0) if fcs_flag == 0 else (1, 2, 4, 8)[fcs_flag]
    if size == 0 or len(buf) < pos + size:
        return None
    value = int.from_bytes(buf[pos : pos + size], "little")
    return value + 256 if size == 2 else value


def decode_inner(lay: _Layout, payload: Any, direct: np.ndarray | None, where: Callable[[], str]) -> Any:
    """Decode one inner chunk's stored bytes ``payload`` (zstd, or raw when the layout has
    no compression): straight into the bytes ``direct`` when given and the zstd frame
    declares the chunk's size (returns None), otherwise returned as bytes (of the chunk's
    size). A payload that does not decode or has another size raises
    :class:`~annio.errors.FormatError`; ``where()`` begins its message."""
    nbytes = lay.chunk_nbytes
    try:
        if lay.level is None:
            raw: Any = payload
        elif direct is not None and _frame_content_size(memoryview(payload)) == nbytes:
            _zstd.decompress(payload, direct)
            return None
        else:
            raw = _zstd.decompress(payload)
    except (RuntimeError, ValueError) as err:
        raise FormatError(lay.name, f"{where()} does not decode: {err}") from err
    if len(raw) != nbytes:
        raise FormatError(lay.name, f"{where()} holds {len(raw)} bytes, expected {nbytes}")
    return raw


def _chunk_decoder(lay: _Layout, out: np.ndarray) -> Callable[[tuple[int, ...], memoryview | None, Path], None]:
    """``decode(origin, payload, path)``: decode one inner chunk into ``out`` (the fill value
    when ``payload`` is None)."""
    count = math.prod(lay.chunks)

    def decode(origin: tuple[int, ...], payload: memoryview | None, path: Path) -> None:
        region = lay.region(origin)
        if region is None:
            return
        target = out[region]
        if payload is None:
            target[...] = lay.fill
            return
        direct = target.reshape(-1).view(np.uint8) if target.shape == lay.chunks and target.flags.c_contiguous else None  # straight into out
        raw = decode_inner(lay, payload, direct, lambda: f"shard {path.relative_to(lay.directory).as_posix()}: inner chunk at {origin}")
        if raw is None:
            return
        block = np.frombuffer(raw, dtype=lay.dtype, count=count).reshape(lay.chunks)
        target[...] = block[tuple(slice(0, s.stop - s.start) for s in region)]

    return decode


def _read_file(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _parse_index(lay: _Layout, buf: bytes, path: Path) -> np.ndarray:
    """The (n_chunks, 2) offsets/sizes of a shard, CRC-checked and range-checked."""
    return parse_index_tail(lay, memoryview(buf)[max(0, len(buf) - lay.index_nbytes) :], len(buf), path)


def parse_index_tail(lay: _Layout, tail: Any, file_size: int, path: Path) -> np.ndarray:
    """:func:`_parse_index` from the last ``index_nbytes`` bytes of a ``file_size``-byte shard."""
    size = lay.index_nbytes
    where = f"shard {path.relative_to(lay.directory).as_posix()}"
    if file_size < size or len(tail) < size:
        raise FormatError(lay.name, f"{where} holds {file_size} bytes, less than its {size}-byte index")
    view = memoryview(tail)[len(tail) - size :]
    raw, crc = bytes(view[: size - 4]), bytes(view[size - 4 :])
    if google_crc32c.value(raw) != int.from_bytes(crc, "little"):
        raise FormatError(lay.name, f"{where}: index checksum (crc32c) mismatch — corrupt shard")
    index = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
    used = ~((index[:, 0] == _EMPTY) & (index[:, 1] == _EMPTY))
    ends = index[used, 0] + index[used, 1]
    if np.any(ends < index[used, 0]) or np.any(ends > file_size - size):
        raise FormatError(lay.name, f"{where}: index points outside the shard")
    return index


def read_shards(arr: zarr.Array, out: np.ndarray) -> None:
    """Read the whole of ``arr`` (which :func:`can_read_direct` accepts) into ``out``,
    decompressing inner chunks in a thread pool; missing shards and chunks read as the fill
    value."""
    lay = _layout(arr, writing=False)
    if lay is None:
        raise ValueError(f"{getattr(arr, 'path', arr)!r} is not eligible for direct shard reads")
    if out.shape != lay.shape:
        raise ValueError(f"{lay.name}: output shape {out.shape} != array shape {lay.shape}")
    read_layout(lay, out)


def read_layout(lay: _Layout, out: np.ndarray) -> None:
    """Read the whole array ``lay`` describes into ``out`` (see :func:`read_shards`); for a
    layout that is not ``sharded`` each file holds one chunk. Also used by
    :mod:`~annio.io._storage.zarr_tree`, which builds layouts from consolidated metadata."""
    decode = _chunk_decoder(lay, out)

    with _Runner(out.nbytes) as runner:

        def start(shard: tuple[int, ...]) -> list[Future]:
            path = lay.shard_path(shard)
            buf = (lay.source or _read_file)(path)
            if not lay.sharded:
                origin = tuple(k * s for k, s in zip(shard, lay.shards, strict=True))
                return [runner.submit(decode, origin, None if buf is None else memoryview(buf), path)]
            origins = lay.inner(shard)
            if buf is None:
                return [runner.submit(decode, origin, None, path) for origin in origins]
            index = _parse_index(lay, buf, path)
            view = memoryview(buf)
            jobs = []
            for origin, (offset, length) in zip(origins, index.tolist(), strict=True):
                payload = None if offset == length == 2**64 - 1 else view[offset : offset + length]
                jobs.append(runner.submit(decode, origin, payload, path))
            return jobs

        def finish(jobs: list[Future]) -> None:
            for job in jobs:
                job.result()

        _pipelined(lay.grid(), start, finish)


def read_all(arr: zarr.Array) -> np.ndarray:
    """The whole of ``arr`` as a new array (see :func:`read_shards`)."""
    out = np.empty(arr.shape, dtype=np.dtype(arr.dtype))
    if out.size:
        read_shards(arr, out)
    return out
