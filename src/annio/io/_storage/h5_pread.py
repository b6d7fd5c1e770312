"""Ranges of an unfiltered 1-D HDF5 dataset in a local file, read with ``pread``.

The rows of a backed or lazy sparse matrix are many small ranges of ``data`` and
``indices``. Asking HDF5 for each range costs a selection, a chunk-cache lookup and,
for chunked datasets, a chunk buffer from HDF5's free lists, which HDF5 keeps after the
read (about 10 MiB per dataset for 1,000 random CSR rows: more than the rows themselves).
An unfiltered dataset stores its values as plain bytes, so once the file addresses of its
chunks are known (``H5Dchunk_iter``; ``H5Dget_offset`` when contiguous) each range is one
``preadv`` straight into the output, and HDF5 is not involved at all.

Only for datasets of files h5py opened read-only with the default (``sec2``) driver, so
nothing can sit unflushed in HDF5's caches and the addresses are offsets of the file on
disk. Part of the storage adapter (through :mod:`annio.io._storage.h5_chunks`).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from annio.errors import FormatError
from annio.io._storage.ranges import split_at_chunks
from annio.settings import settings

__all__ = ["can_read_ranges", "chunk_addresses", "forget_image", "plain_dataset", "plain_file", "read_into", "read_ranges", "register_image"]

#: :func:`read_into`: smaller datasets are read by HDF5 (as fast: the gain is in the threads).
MIN_DIRECT_BYTES = 32 << 20
#: :func:`read_into`: smaller datasets of a file image are read by HDF5.
MIN_IMAGE_BYTES = 64 << 10
#: :func:`read_into`: bytes per ``preadv`` job of the thread pool.
_PIECE_BYTES = 16 << 20


def is_local_read_only(dataset: h5py.Dataset) -> bool:
    """Whether ``dataset`` lives in a file h5py opened read-only from a local path with the
    default driver, with its values inside that file (no external storage)."""
    try:
        f = dataset.file
        if f.mode != "r" or f.driver != "sec2" or not isinstance(f.filename, str) or f.swmr_mode:
            return False  # SWMR: a writer may be appending; leave the ordering to HDF5
        return dataset.id.get_create_plist().get_external_count() == 0
    except (AttributeError, OSError, RuntimeError, ValueError):
        return False


def plain_file(f: h5py.File) -> bool:
    """Whether ``f``'s data addresses are offsets of one file on disk (``sec2`` driver) read
    on a little-endian host (HDF5's offsets of a file with a user block include it)."""
    return f.driver == "sec2" and sys.byteorder == "little"


def plain_dataset(ds: Any, *, any_ndim: bool = False, read_only: bool = False) -> bool:
    """Whether ``ds`` stores its values as plain bytes at offsets of a local file: a dataset
    of a ``sec2`` file (the writer's: without user block), numeric little-endian, no filters or external
    storage, contiguous or chunked, 1-D (with ``any_ndim``, also N-d contiguous). With
    ``read_only``, also of a file h5py opened read-only (not SWMR), so nothing can sit
    unflushed in HDF5's caches (the readers' rule; the writer here owns its targets)."""
    try:
        if not isinstance(ds, h5py.Dataset) or not (ds.ndim == 1 or (any_ndim and ds.ndim and ds.chunks is None)):
            return False
        f = ds.file
        if not plain_file(f) or (not read_only and f.userblock_size) or (read_only and (f.mode != "r" or not isinstance(f.filename, str) or f.swmr_mode)):
            return False
        return _plain_values(ds)
    except (AttributeError, OSError, RuntimeError, ValueError):
        return False


def _plain_values(ds: h5py.Dataset) -> bool:
    """Numeric little-endian values stored as plain bytes inside the file (no filters,
    no external storage), contiguous or chunked."""
    if ds.dtype.kind not in "biuf" or ds.dtype.byteorder not in "=|<":
        return False
    plist = ds.id.get_create_plist()
    if plist.get_nfilters() or plist.get_external_count():
        return False
    return plist.get_layout() in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED)


# -- in-memory file images (a remote file fetched whole) ----------------------------------
#: image bytes of the read-only files opened by ``h5_remote.open_h5_image``,
#: by their (unique) file name
_IMAGES: dict[str, Any] = {}


def register_image(name: str, image: Any) -> None:
    """Let :func:`read_into` copy the plain datasets of the image file ``name`` straight
    from ``image`` (one copy, not HDF5 reading them through the file object)."""
    _IMAGES[name] = image


def forget_image(name: str) -> None:
    """Undo :func:`register_image` (when the file is closed)."""
    _IMAGES.pop(name, None)


def _image_of(dataset: h5py.Dataset, out: np.ndarray) -> memoryview | None:
    """The registered image holding ``dataset``, when its values can be copied from it
    into ``out`` as bytes."""
    if not _IMAGES or not out.flags.c_contiguous or sys.byteorder != "little":
        return None
    try:
        f = dataset.file
        image = _IMAGES.get(f.filename) if f.driver == "fileobj" and f.mode == "r" else None
        if image is None or not (dataset.ndim == 1 or dataset.chunks is None) or not _plain_values(dataset):
            return None
    except (AttributeError, OSError, RuntimeError, ValueError):
        return None
    return memoryview(image).cast("B")


def chunk_addresses(ds: h5py.Dataset, n_chunks: int, *, whole_only: bool = False) -> np.ndarray:
    """File offset of each of the first ``n_chunks`` chunks along axis 0 of a
    :func:`plain_dataset` (``-1``: never written; one entry for a contiguous dataset). With
    ``whole_only``, also ``-1`` for a chunk stored with a filter mask or not at full size."""
    addresses = np.full(max(0, n_chunks), -1, dtype=np.int64)
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is not None and n_chunks:
            addresses[0] = int(offset)
        return addresses
    step = int(ds.chunks[0])
    full = ds.dtype.itemsize * int(np.prod(ds.chunks))

    def visit(info: Any) -> None:
        k = int(info.chunk_offset[0]) // step
        if 0 <= k < n_chunks and (not whole_only or (info.filter_mask == 0 and info.size == full)):
            addresses[k] = int(info.byte_offset)

    if n_chunks:
        ds.id.chunk_iter(visit)
    return addresses


def can_read_ranges(dataset: h5py.Dataset, *, any_ndim: bool = False) -> bool:
    """Whether :func:`read_ranges` can read ``dataset`` (see the module docstring); with
    ``any_ndim``, whether :func:`read_into` can read it whole (also N-d contiguous)."""
    return plain_dataset(dataset, any_ndim=any_ndim, read_only=True)


class ChunkReader:
    """Stored chunks of a chunked dataset of a local read-only file, fetched with ``pread``
    from the addresses HDF5 lists once (``H5Dchunk_iter``), from any thread; the same
    ``(offset, filter_mask, payload)`` as h5py's ``read_direct_chunk`` (payload None: never
    written)."""

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.name = dataset.name
        self.table: dict[tuple[int, ...], tuple[int, int, int]] = {}
        dataset.id.chunk_iter(lambda i: self.table.__setitem__(tuple(int(v) for v in i.chunk_offset), (int(i.byte_offset), int(i.size), int(i.filter_mask))))
        self.fd = os.open(dataset.file.filename, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    @classmethod
    def open(cls, dataset: h5py.Dataset) -> ChunkReader | None:
        """A reader for ``dataset``, or None when it is not chunked in a local read-only file."""
        if dataset.chunks is None or not is_local_read_only(dataset):
            return None
        return cls(dataset)

    def fetch(self, offset: tuple[int, ...]) -> tuple[tuple[int, ...], int, bytes | None]:
        entry = self.table.get(tuple(offset))
        if entry is None:
            return offset, 0, None
        address, size, mask = entry
        payload = os.pread(self.fd, size, address) if address + size <= self.size else b""
        if len(payload) != size:
            raise FormatError(self.name, f"chunk at {tuple(offset)} lies beyond the end of the file ({self.size} bytes)")
        return offset, mask, payload

    def close(self) -> None:
        os.close(self.fd)


def read_ranges(dataset: h5py.Dataset, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``dataset[starts[i]:stops[i]]`` for sorted, non-overlapping,
    non-empty in-bounds ranges of a dataset :func:`can_read_ranges` accepts."""
    dtype = dataset.dtype
    itemsize = dtype.itemsize
    n = int(dataset.shape[0])
    chunk = int(dataset.chunks[0]) if dataset.chunks is not None else max(1, n)
    starts = np.asarray(starts, dtype=np.int64)
    stops = np.asarray(stops, dtype=np.int64)
    lengths = stops - starts
    out = np.empty(int(lengths.sum()), dtype=dtype)
    if out.size == 0:
        return out
    p_chunk, p_start, p_stop, p_out = split_at_chunks(starts, stops, chunk)
    addresses = chunk_addresses(dataset, -(-n // chunk))
    base = addresses[p_chunk]
    missing = base < 0
    if missing.any():
        fill = np.asarray(dataset.fillvalue, dtype=dtype)
        for o, s, e in zip(p_out[missing].tolist(), p_start[missing].tolist(), p_stop[missing].tolist(), strict=True):
            out[o : o + e - s] = fill
    keep = ~missing
    f_start = (base + (p_start - p_chunk * chunk) * itemsize)[keep]
    f_len = ((p_stop - p_start) * itemsize)[keep]
    o_start = p_out[keep] * itemsize
    # pieces next to each other both in the file and in the output: one read
    if f_start.size > 1:
        join = np.concatenate(([False], (f_start[1:] == f_start[:-1] + f_len[:-1]) & (o_start[1:] == o_start[:-1] + f_len[:-1])))
        if join.any():
            head = np.flatnonzero(~join)
            f_len = np.add.reduceat(f_len, head)
            f_start, o_start = f_start[head], o_start[head]
    view = memoryview(out.view(np.uint8))
    fd = os.open(dataset.file.filename, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if f_start.size and int((f_start + f_len).max()) > size:
            raise FormatError(dataset.name, f"stored values lie beyond the end of the file ({size} bytes)")
        for fs, fl, os_ in zip(f_start.tolist(), f_len.tolist(), o_start.tolist(), strict=True):
            got = os.preadv(fd, [view[os_ : os_ + fl]], fs)
            if got != fl:
                raise FormatError(dataset.name, f"short read at byte {fs} ({got} of {fl} bytes)")
    finally:
        os.close(fd)
    return out


def read_into(dataset: h5py.Dataset, out: np.ndarray) -> None:
    """Read the whole of ``dataset`` into the C-contiguous ``out``: large unfiltered
    datasets of read-only local files with ``preadv`` in a thread pool (one copy, from the
    page cache straight into ``out``), those of a registered file image copied from its
    bytes, everything else with h5py's ``read_direct``."""
    image = _image_of(dataset, out) if out.nbytes >= MIN_IMAGE_BYTES else None
    if image is not None:
        jobs = _spans(dataset, out)
        if jobs and max(f + ln for f, _, ln in jobs) > len(image):
            raise FormatError(dataset.name, f"stored values lie beyond the end of the file ({len(image)} bytes)")
        view = memoryview(out.reshape(-1).view(np.uint8))
        for f, o, ln in jobs:
            view[o : o + ln] = image[f : f + ln]
        return
    if out.nbytes < MIN_DIRECT_BYTES or not out.flags.c_contiguous or not can_read_ranges(dataset, any_ndim=True):
        dataset.read_direct(out)
        return
    jobs = _spans(dataset, out)
    view = memoryview(out.reshape(-1).view(np.uint8))
    fd = os.open(dataset.file.filename, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if jobs and max(f + ln for f, _, ln in jobs) > size:
            raise FormatError(dataset.name, f"stored values lie beyond the end of the file ({size} bytes)")

        def job(item: tuple[int, int, int]) -> None:
            f, o, ln = item
            got = os.preadv(fd, [view[o : o + ln]], f)
            if got != ln:
                raise FormatError(dataset.name, f"short read at byte {f} ({got} of {ln} bytes)")

        threads = min(settings.resolved_io_threads, len(jobs))
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(job, jobs))
        else:
            for item in jobs:
                job(item)
    finally:
        os.close(fd)


def _spans(dataset: h5py.Dataset, out: np.ndarray) -> list[tuple[int, int, int]]:
    """(file offset, output byte offset, length) of the stored values of ``dataset``,
    adjacent chunks merged and split into pieces of at most ``_PIECE_BYTES``; chunks never
    written are filled into ``out`` with the fill value here."""
    n = int(dataset.shape[0])
    flat = out.reshape(-1)
    row = flat.size // n if n else 0
    chunk = int(dataset.chunks[0]) if dataset.chunks is not None else max(1, n)
    addresses = chunk_addresses(dataset, -(-n // chunk))
    nbytes = chunk * row * out.dtype.itemsize
    spans: list[list[int]] = []
    for i, address in enumerate(addresses.tolist()):
        length = (min(n, (i + 1) * chunk) - i * chunk) * row * out.dtype.itemsize
        if address < 0:
            flat[i * chunk * row : min(n, (i + 1) * chunk) * row] = np.asarray(dataset.fillvalue, dtype=out.dtype)
        elif spans and spans[-1][0] + spans[-1][2] == address and spans[-1][1] + spans[-1][2] == i * nbytes:
            spans[-1][2] += length
        else:
            spans.append([address, i * nbytes, length])
    return [(f + k, o + k, min(_PIECE_BYTES, ln - k)) for f, o, ln in spans for k in range(0, ln, _PIECE_BYTES)]
