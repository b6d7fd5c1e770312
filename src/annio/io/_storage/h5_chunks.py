"""Parallel gzip for HDF5: compress and decompress chunks in threads, with direct chunk I/O.

HDF5's own gzip filter runs one chunk at a time on one core, with zlib. annio instead
compresses whole chunks in a thread pool (libdeflate when installed, else zlib) and hands the
bytes to HDF5 with ``write_direct_chunk``; reading does the reverse with
``read_direct_chunk`` and libdeflate/ISA-L/zlib. The file is the same standard
gzip-filtered HDF5 that every reader opens — only the speed differs.

:func:`read_ranges` uses the same chunk machinery to read many ranges of a 1-D dataset
(the rows of a backed or lazy sparse matrix): every touched chunk is fetched once and
decoded in the pool, then the wanted pieces are gathered. Part of the storage adapter
(:meth:`annio.io._storage.adapter.StorageArray.read_ranges`): encodings never see it.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import h5py
import numpy as np

from annio.errors import FormatError
from annio.io._storage import h5_pread
from annio.io._storage.ranges import gather_index, split_at_chunks
from annio.settings import settings

__all__ = ["can_use_direct_chunks", "read_mode", "write_chunks", "read_chunks", "can_read_ranges", "read_ranges"]

T = TypeVar("T")

try:  # ISA-L: fast deflate compression (and decent decompression)
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - optional extra
    _isal = None
try:  # libdeflate: the fastest deflate decompression
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - optional extra
    _libdeflate = None

# Below this many bytes the thread pool costs more than it saves (whole datasets).
MIN_PARALLEL_BYTES = 4 * 2**20
#: :func:`read_ranges`: decompress in threads only when the touched chunks hold at least
#: this many bytes (and a single range takes the chunk path only from this size on).
RANGES_PARALLEL_BYTES = 1 << 20
#: :func:`read_ranges`: gather in batches of touched chunks of about this many bytes.
_RANGES_BATCH_BYTES = 64 << 20


def _compressor(level: int) -> Callable[[bytes], bytes]:
    # libdeflate at the same level gives zlib's size (within ~1%) several times faster;
    # ISA-L is faster still but its files are 20-25% larger on single-cell data.
    if _libdeflate is not None and level > 0:
        return lambda buf: _libdeflate.zlib_compress(buf, level)
    return lambda buf: zlib.compress(buf, level)


def _decompressor(nbytes: int) -> Callable[[bytes], bytes]:
    if _libdeflate is not None:
        return lambda buf: _libdeflate.zlib_decompress(buf, nbytes)
    if _isal is not None:
        return _isal.decompress
    return zlib.decompress


def can_use_direct_chunks(dataset: h5py.Dataset) -> bool:
    """Whether ``dataset`` is chunked with gzip as its only filter and a plain numeric type."""
    return (
        dataset.chunks is not None
        and dataset.compression == "gzip"
        and not dataset.shuffle
        and not dataset.fletcher32
        and dataset.scaleoffset is None
        and dataset.dtype.kind in "biuf"
        and dataset.dtype.byteorder in "=|<"
        and dataset.shape is not None
        and dataset.size * dataset.dtype.itemsize >= MIN_PARALLEL_BYTES
    )


#: Serial direct reads (libdeflate on this thread) of datasets below MIN_PARALLEL_BYTES only
#: when their chunks average at least this many bytes: below it, the per-chunk Python
#: calls cost more than libdeflate saves over HDF5's zlib.
MIN_DIRECT_CHUNK_BYTES = 4096


def read_mode(dataset: h5py.Dataset) -> str | None:
    """How to read the whole of ``dataset``: ``"parallel"`` (chunks decompressed in a thread
    pool), ``"serial"`` (chunks fetched and decompressed with libdeflate on this thread:
    about twice zlib's speed, no pool to start) or None (HDF5 reads it).

    One property-list query answers it (h5py's ``compression``/``shuffle``/... properties
    each build their own): a chunked layout whose only filter is deflate, a plain numeric
    native-endian type."""
    dtype = dataset.dtype
    if dtype.kind not in "biuf" or dtype.byteorder not in "=|<":
        return None
    plist = dataset.id.get_create_plist()
    if plist.get_layout() != h5py.h5d.CHUNKED or plist.get_nfilters() != 1 or plist.get_filter(0)[0] != h5py.h5z.FILTER_DEFLATE:
        return None
    shape = dataset.shape
    if shape is None:
        return None
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes >= MIN_PARALLEL_BYTES:
        return "parallel"
    chunk_bytes = math.prod(plist.get_chunk()) * dtype.itemsize
    return "serial" if _libdeflate is not None and nbytes and chunk_bytes >= MIN_DIRECT_CHUNK_BYTES else None


def _chunk_offsets(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    ranges = [range(0, s, c) for s, c in zip(shape, chunks, strict=True)]
    return itertools.product(*ranges)


def _chunk_slices(offset: tuple[int, ...], chunks: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(o, min(o + c, s)) for o, c, s in zip(offset, chunks, shape, strict=True))


def _full_chunk(data: np.ndarray, sel: tuple[slice, ...], chunks: tuple[int, ...]) -> bytes:
    block = data[sel]
    if block.shape != chunks:  # edge chunk: HDF5 stores whole chunks, zero-padded
        padded = np.zeros(chunks, dtype=data.dtype)
        padded[tuple(slice(0, n) for n in block.shape)] = block
        block = padded
    return np.ascontiguousarray(block).tobytes()


def _batched(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def write_chunks(dataset: h5py.Dataset, data: np.ndarray, level: int = 4) -> None:
    """Write ``data`` into the whole of ``dataset`` chunk by chunk, compressing in threads."""
    data = np.asarray(data, dtype=dataset.dtype)
    chunks = tuple(dataset.chunks)
    shape = tuple(dataset.shape)
    compress = _compressor(level)
    threads = settings.resolved_io_threads
    chunk_bytes = math.prod(chunks) * data.dtype.itemsize
    batch = max(threads * 2, settings.write_block_bytes // max(1, chunk_bytes))

    def job(offset: tuple[int, ...]) -> tuple[tuple[int, ...], bytes]:
        return offset, compress(_full_chunk(data, _chunk_slices(offset, chunks, shape), chunks))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for offsets in _batched(_chunk_offsets(shape, chunks), batch):
            for offset, payload in pool.map(job, offsets):
                dataset.id.write_direct_chunk(offset, payload, 0)


def _fetch(dsid: h5py.h5d.DatasetID, offset: tuple[int, ...]) -> tuple[tuple[int, ...], int, bytes | None]:
    try:
        mask, payload = dsid.read_direct_chunk(offset)
    except (OSError, KeyError, RuntimeError):  # chunk never written: fill value
        return offset, 0, None
    return offset, mask, payload


def _chunk_decoder(dataset: h5py.Dataset) -> Callable[[int, bytes | None], np.ndarray]:
    """``decode(filter_mask, payload)`` → one whole chunk as an array of the chunk shape
    (the fill value for a chunk never written)."""
    chunks = tuple(dataset.chunks)
    dtype = dataset.dtype
    count = math.prod(chunks)
    nbytes = count * dtype.itemsize
    compressed = dataset.compression == "gzip"
    decompress = _decompressor(nbytes) if compressed else None
    fillvalue = dataset.fillvalue
    fill: list[np.ndarray] = []
    name = dataset.name

    def decode(mask: int, payload: bytes | None) -> np.ndarray:
        if payload is None:
            if not fill:
                fill.append(np.full(chunks, fillvalue, dtype=dtype))
            return fill[0]
        raw = decompress(payload) if (compressed and not mask & 1) else payload
        if len(raw) < nbytes:
            raise FormatError(name, f"chunk holds {len(raw)} bytes, expected {nbytes}")
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(chunks)

    return decode


def _each_chunk(
    dataset: h5py.Dataset, offsets: Iterable[tuple[int, ...]], work: Callable[[tuple[int, ...], np.ndarray], T], *, batch: int, parallel: bool
) -> Iterator[list[T]]:
    """Fetch the chunks at ``offsets`` with ``read_direct_chunk`` (batch by batch, on this
    thread: HDF5 calls are serialised anyway) — or, from a local read-only file, with
    ``pread`` inside the jobs (:class:`~annio.io._storage.h5_pread.ChunkReader`) — decode each and run ``work(offset, chunk)``
    on it — in a thread pool when ``parallel``; yields the results of each batch in order.

    In parallel mode each chunk is handed to the pool as soon as it is fetched, and the next
    batch is fetched while the pool still decodes the current one (fetching and decoding
    overlap; at most two batches are in flight)."""
    decode = _chunk_decoder(dataset)
    dsid = dataset.id
    reader = h5_pread.ChunkReader.open(dataset)  # local read-only file: fetched in the jobs

    def job(item: tuple[int, ...] | tuple[tuple[int, ...], int, bytes | None]) -> T:
        offset, mask, payload = reader.fetch(item) if reader is not None else item
        return work(offset, decode(mask, payload))

    def fetch(offset: tuple[int, ...]) -> Any:
        return offset if reader is not None else _fetch(dsid, offset)

    pool = ThreadPoolExecutor(max_workers=settings.resolved_io_threads) if parallel else None
    try:
        if pool is None:
            for group in _batched(iter(offsets), batch):
                yield [job(fetch(o)) for o in group]
            return
        pending: list[Future] | None = None
        for group in _batched(iter(offsets), batch):
            submitted = [pool.submit(job, fetch(o)) for o in group]
            if pending is not None:
                yield [f.result() for f in pending]
            pending = submitted
        if pending is not None:
            yield [f.result() for f in pending]
    finally:
        if pool is not None:
            pool.shutdown()
        if reader is not None:
            reader.close()


def read_chunks(dataset: h5py.Dataset, out: np.ndarray, *, parallel: bool = True) -> None:
    """Read the whole of ``dataset`` into ``out``, decompressing chunks in threads (or on
    this thread when not ``parallel``)."""
    chunks = tuple(dataset.chunks)
    shape = tuple(dataset.shape)
    nbytes = math.prod(chunks) * dataset.dtype.itemsize
    batch = max(settings.resolved_io_threads * 2, settings.write_block_bytes // max(1, nbytes))

    def copy(offset: tuple[int, ...], block: np.ndarray) -> None:
        sel = _chunk_slices(offset, chunks, shape)
        out[sel] = block[tuple(slice(0, s.stop - s.start) for s in sel)]

    for _ in _each_chunk(dataset, _chunk_offsets(shape, chunks), copy, batch=batch, parallel=parallel):
        pass


# ----------------------------------------------------------------------------- 1-D ranges
def can_read_ranges(dataset: h5py.Dataset) -> bool:
    """Whether :func:`read_ranges` should read ``dataset``: a chunked 1-D numeric
    native-endian dataset whose only filter is deflate (gzip), or an unfiltered one of a
    local read-only file (:mod:`annio.io._storage.h5_pread`: no HDF5 call per range)."""
    if h5_pread.can_read_ranges(dataset):
        return True
    if dataset.chunks is None or dataset.ndim != 1 or dataset.dtype.kind not in "biuf" or dataset.dtype.byteorder not in "=|<":
        return False
    plist = dataset.id.get_create_plist()
    return plist.get_nfilters() == 1 and plist.get_filter(0)[0] == h5py.h5z.FILTER_DEFLATE


def read_ranges(dataset: h5py.Dataset, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``dataset[starts[i]:stops[i]]`` for sorted, non-overlapping,
    non-empty ranges of a dataset :func:`can_read_ranges` accepts: each touched chunk is
    fetched once with ``read_direct_chunk``; gzip chunks are decompressed in a thread pool
    when there are at least :data:`RANGES_PARALLEL_BYTES` of them."""
    if dataset.compression is None and h5_pread.can_read_ranges(dataset):
        return h5_pread.read_ranges(dataset, starts, stops)
    chunk = int(dataset.chunks[0])
    chunk_bytes = chunk * dataset.dtype.itemsize
    out = np.empty(int((stops - starts).sum()), dtype=dataset.dtype)
    p_chunk, p_start, p_stop, p_out = split_at_chunks(starts, stops, chunk)  # pieces, sorted by chunk
    chunks, first_piece = np.unique(p_chunk, return_index=True)
    threads = settings.resolved_io_threads
    compressed = dataset.compression == "gzip"
    parallel = compressed and threads > 1 and chunks.size > 1 and chunks.size * chunk_bytes >= RANGES_PARALLEL_BYTES
    batch = max(1, _RANGES_BATCH_BYTES // max(1, chunk_bytes))
    offsets = ((c * chunk,) for c in chunks.tolist())
    b0 = 0
    for blocks in _each_chunk(dataset, offsets, lambda _offset, block: block, batch=batch, parallel=parallel):
        b1 = b0 + len(blocks)
        buf = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        q0 = int(first_piece[b0])
        q1 = int(first_piece[b1]) if b1 < chunks.size else p_chunk.size
        slot = np.searchsorted(chunks[b0:b1], p_chunk[q0:q1])  # chunk position within buf
        local = slot * chunk + (p_start[q0:q1] - p_chunk[q0:q1] * chunk)
        o0 = int(p_out[q0])
        o1 = int(p_out[q1 - 1] + (p_stop[q1 - 1] - p_start[q1 - 1]))
        out[o0:o1] = buf[gather_index(local, p_stop[q0:q1] - p_start[q0:q1])]
        b0 = b1
    return out
