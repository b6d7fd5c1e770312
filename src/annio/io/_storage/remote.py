"""Remote storage: ``s3://`` and ``http(s)://`` URLs → zarr stores and h5py files.

Two entry points, both meant to be called by the readers (``read_zarr``, ``read_h5ad``,
``read_lazy``) when they are handed a URL:

* :func:`zarr_store_from_url` — a zarr store over obstore (``S3Store`` / ``HTTPStore``)
  or, as a fallback, fsspec (``storage_options={"backend": "fsspec"}``, or when obstore is
  not installed). Read-only stores are wrapped in :class:`MetadataPrefetchStore`, so that
  opening a consolidated store costs **one** request (``zarr.json`` for zarr v3,
  ``.zmetadata`` for zarr v2 when the format is known);
* :func:`open_h5_file_from_url` — an ``h5py.File`` over an fsspec file object with a block
  cache tuned for HDF5 metadata reads.

``storage_options`` accepts the usual s3fs / boto names *and* obstore's names; they are
mapped to whichever backend is used:

============================================  ==========================================
option                                        meaning
============================================  ==========================================
``endpoint_url`` / ``endpoint``               S3-compatible server (``http://host:port``)
``key`` / ``aws_access_key_id`` /             access key
``access_key_id``
``secret`` / ``aws_secret_access_key`` /      secret key
``secret_access_key``
``token`` / ``aws_session_token`` /           session token
``session_token``
``anon`` / ``skip_signature``                 unsigned (anonymous) requests
``region`` / ``region_name``                  region (default ``us-east-1`` with an endpoint)
``client_options``                            obstore client options (``allow_http`` is set
                                              automatically for ``http://`` endpoints)
``client_kwargs``                             s3fs style; ``endpoint_url``/``region_name``
                                              are read from it
``backend``                                   ``"obstore"`` (default) or ``"fsspec"``
============================================  ==========================================

Any other key is passed to the backend unchanged (obstore ``S3Config`` keys such as
``virtual_hosted_style_request``, or fsspec filesystem options).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any
from urllib.parse import urlsplit

import h5py
from collections.abc import Iterable

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.storage import WrapperStore

from annio.io._storage.urls import is_url

__all__ = [
    "is_url",
    "url_scheme",
    "zarr_store_from_url",
    "open_h5_file_from_url",
    "MetadataPrefetchStore",
    "PrefetchStore",
    "RemoteH5File",
    "DEFAULT_H5_BLOCK_SIZE",
]

_OBSTORE_SCHEMES = {"s3", "s3a", "http", "https"}
_V3_META = "zarr.json"
_V2_CONSOLIDATED = ".zmetadata"
_V2_KEYS = (".zgroup", ".zattrs", ".zarray")

#: Block size of the fsspec block cache used for remote HDF5 files. HDF5 metadata is
#: scattered in small pieces near the start of the file and next to each dataset; 2 MiB
#: blocks keep the request count low without fetching much unneeded data
#: (see ``tests/remote`` for the measurements).
DEFAULT_H5_BLOCK_SIZE = 2 * 1024 * 1024


# ----------------------------------------------------------------------------- URLs
def url_scheme(url: str) -> str:
    """The lower-cased scheme of ``url`` (``"s3"``, ``"https"``, ...)."""
    return url.split("://", 1)[0].lower()


# ----------------------------------------------------------------------------- options
_ALIASES: dict[str, tuple[str, ...]] = {
    "endpoint": ("endpoint_url", "endpoint", "aws_endpoint", "aws_endpoint_url"),
    "access_key_id": ("key", "aws_access_key_id", "access_key_id"),
    "secret_access_key": ("secret", "aws_secret_access_key", "secret_access_key"),
    "session_token": ("token", "aws_session_token", "session_token"),
    "skip_signature": ("anon", "skip_signature"),
    "region": ("region", "region_name", "aws_region"),
}


def _normalise_s3_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into the canonical S3 settings (``endpoint``, ``access_key_id``,
    ``secret_access_key``, ``session_token``, ``skip_signature``, ``region``) and the rest."""
    rest = dict(options)
    client_kwargs = dict(rest.pop("client_kwargs", None) or {})
    canonical: dict[str, Any] = {}
    for name, aliases in _ALIASES.items():
        found = [a for a in aliases if a in rest]
        values = {rest.pop(a) for a in found}
        if len(values) > 1:
            raise ValueError(f"storage_options: conflicting values for {name} given as {', '.join(found)}")
        if values:
            canonical[name] = values.pop()
    if "endpoint" not in canonical and "endpoint_url" in client_kwargs:
        canonical["endpoint"] = client_kwargs.pop("endpoint_url")
    if "region" not in canonical and "region_name" in client_kwargs:
        canonical["region"] = client_kwargs.pop("region_name")
    if client_kwargs:
        rest["client_kwargs"] = client_kwargs
    return canonical, rest


def _split_backend(storage_options: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    options = dict(storage_options or {})
    backend = str(options.pop("backend", "obstore")).lower()
    if backend not in {"obstore", "fsspec"}:
        raise ValueError(f"storage_options['backend'] must be 'obstore' or 'fsspec', got {backend!r}")
    if backend == "obstore" and find_spec("obstore") is None:
        backend = "fsspec"
    return backend, options


def _obstore_store(url: str, options: dict[str, Any]) -> Any:
    from obstore.store import HTTPStore, S3Store

    scheme = url_scheme(url)
    client_options = dict(options.pop("client_options", None) or {})
    if scheme in {"http", "https"}:
        if scheme == "http":
            client_options.setdefault("allow_http", True)
        if options:
            raise TypeError(f"storage_options not understood for {url}: {sorted(options)}")
        return HTTPStore.from_url(url.rstrip("/"), client_options=client_options or None)
    canonical, rest = _normalise_s3_options(options)
    rest.pop("client_kwargs", None)  # s3fs only; its endpoint/region were taken above
    config: dict[str, Any] = dict(rest)
    endpoint = canonical.pop("endpoint", None)
    if endpoint is not None:
        config["endpoint"] = endpoint
        if str(endpoint).startswith("http://"):
            client_options.setdefault("allow_http", True)
        config.setdefault("region", canonical.get("region", "us-east-1"))
    if canonical.pop("skip_signature", False):
        config["skip_signature"] = True
    config.update(canonical)
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise ValueError(f"{url}: no bucket name in the URL")
    return S3Store(bucket, prefix=prefix or None, client_options=client_options or None, **config)


def _fsspec_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Map obstore-style names to the s3fs / fsspec names."""
    scheme = url_scheme(url)
    options.pop("client_options", None)
    if scheme not in {"s3", "s3a"}:
        return options
    canonical, rest = _normalise_s3_options(options)
    out = dict(rest)
    if "endpoint" in canonical:
        out["endpoint_url"] = canonical["endpoint"]
    if "access_key_id" in canonical:
        out["key"] = canonical["access_key_id"]
    if "secret_access_key" in canonical:
        out["secret"] = canonical["secret_access_key"]
    if "session_token" in canonical:
        out["token"] = canonical["session_token"]
    if canonical.get("skip_signature"):
        out["anon"] = True
    if "region" in canonical:
        client_kwargs = dict(out.get("client_kwargs") or {})
        client_kwargs.setdefault("region_name", canonical["region"])
        out["client_kwargs"] = client_kwargs
    return out


# ----------------------------------------------------------------------------- zarr
def zarr_store_from_url(
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    read_only: bool = True,
    zarr_format: int | None = None,
    prefetch_metadata: bool = True,
) -> Store:
    """A zarr store for ``url`` (``s3://bucket/path.zarr``, ``http(s)://host/path.zarr``).

    obstore is used when installed (``zarr.storage.ObjectStore``), fsspec otherwise or when
    ``storage_options={"backend": "fsspec"}``. See the module docstring for the accepted
    ``storage_options``. ``read_only=False`` gives a writable store (S3; HTTP is read-only).

    Read-only stores are wrapped in :class:`MetadataPrefetchStore` (unless
    ``prefetch_metadata=False``): the first metadata lookup fetches ``zarr.json`` (or, with
    ``zarr_format=2``, ``.zmetadata``) once and answers all root metadata requests zarr makes
    while opening the group from it. ``zarr.open_group(store, mode="r")`` on a consolidated
    store therefore costs one request; a v2 store opened without the ``zarr_format=2`` hint
    costs two (``zarr.json``, not found, then ``.zmetadata``).
    """
    if not is_url(url):
        raise ValueError(f"not a URL: {url!r}")
    backend, options = _split_backend(storage_options)
    scheme = url_scheme(url)
    if not read_only and scheme in {"http", "https"}:
        raise ValueError(f"{url}: http(s) stores are read-only")
    if backend == "obstore" and scheme in _OBSTORE_SCHEMES:
        from zarr.storage import ObjectStore

        store: Store = ObjectStore(_obstore_store(url, options), read_only=read_only)
    else:
        from zarr.storage import FsspecStore

        opts = _fsspec_options(url, options)
        if scheme in {"http", "https"}:
            # directory listings are meaningless over plain HTTP; do not let fsspec probe them
            opts.setdefault("simple_links", False)
        store = FsspecStore.from_url(url.rstrip("/"), storage_options=opts, read_only=read_only)
    if read_only and prefetch_metadata:
        store = PrefetchStore(store, zarr_format=zarr_format)  # a MetadataPrefetchStore that also prefetches
    return store


class MetadataPrefetchStore(WrapperStore[Store]):
    """Read-only wrapper that answers root metadata lookups from one prefetched document.

    zarr-python, asked to open a group of unknown format, fetches ``zarr.json``,
    ``.zgroup``, ``.zattrs`` and ``.zmetadata`` at once (four requests, three of them
    misses on a v3 store; two duplicates on a v2 store). This wrapper makes the first of
    those lookups fetch the document that decides the format — ``zarr.json``, then
    ``.zmetadata`` if that is missing (``.zmetadata`` only with ``zarr_format=2``) — and
    serves the rest from it:

    * v3 (``zarr.json`` found): the root v2 keys are reported missing, as zarr would ignore
      them anyway (it prefers v3 when both exist);
    * v2 consolidated (``.zmetadata`` found): every ``.zgroup``/``.zattrs``/``.zarray``
      document it holds is served from memory, root keys it lacks are reported missing.

    Everything else (chunks, shards, metadata below an unconsolidated root) passes through.
    """

    def __init__(self, store: Store, *, zarr_format: int | None = None) -> None:
        super().__init__(store)
        if zarr_format not in (None, 2, 3):
            raise ValueError(f"zarr_format must be 2, 3 or None, got {zarr_format!r}")
        self.zarr_format = zarr_format
        self._docs: dict[str, bytes | None] | None = None
        self._probe: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def _with_store(self, store: Store) -> MetadataPrefetchStore:
        return type(self)(store, zarr_format=self.zarr_format)

    def with_read_only(self, read_only: bool = False) -> Store:
        inner = self._store.with_read_only(read_only)
        return self._with_store(inner) if read_only else inner

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_probe"] = None
        return state

    def __repr__(self) -> str:
        return f"MetadataPrefetchStore({self._store!r})"

    def __str__(self) -> str:
        return str(self._store)

    def __eq__(self, value: object) -> bool:
        return isinstance(value, MetadataPrefetchStore) and self._store == value._store

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def _is_metadata_key(key: str) -> bool:
        name = key.rsplit("/", 1)[-1]
        return name == _V3_META or name == _V2_CONSOLIDATED or name in _V2_KEYS

    async def _fetch(self, key: str) -> bytes | None:
        from zarr.core.buffer import default_buffer_prototype

        buf = await self._store.get(key, default_buffer_prototype())
        return None if buf is None else buf.to_bytes()

    async def _run_probe(self) -> None:
        docs: dict[str, bytes | None] = {}
        if self.zarr_format != 2:
            v3 = await self._fetch(_V3_META)
            docs[_V3_META] = v3
            if v3 is not None:
                for key in (_V2_CONSOLIDATED, *_V2_KEYS):
                    docs[key] = None
                self._docs = docs
                return
            if self.zarr_format == 3:
                self._docs = docs
                return
        zmeta = await self._fetch(_V2_CONSOLIDATED)
        docs[_V2_CONSOLIDATED] = zmeta
        if zmeta is not None:
            try:
                consolidated = json.loads(zmeta)["metadata"]
            except (ValueError, KeyError, TypeError):
                consolidated = None
            if isinstance(consolidated, dict):
                docs[_V3_META] = None
                for key in _V2_KEYS:
                    docs[key] = None
                for key, doc in consolidated.items():
                    if self._is_metadata_key(key):
                        docs[key] = json.dumps(doc).encode()
        self._docs = docs

    async def _ensure_probed(self) -> dict[str, bytes | None]:
        if self._docs is not None:
            return self._docs
        loop = asyncio.get_running_loop()
        if self._probe is None or self._probe[0] is not loop:
            self._probe = (loop, asyncio.ensure_future(self._run_probe()))
        try:
            await asyncio.shield(self._probe[1])
        except BaseException:
            self._probe = None  # a failed probe (network error) is retried on the next lookup
            raise
        assert self._docs is not None
        return self._docs

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if byte_range is None and self._is_metadata_key(key):
            docs = await self._ensure_probed()
            if key in docs:
                doc = docs[key]
                return None if doc is None else prototype.buffer.from_bytes(doc)
        return await self._store.get(key, prototype, byte_range)

    async def exists(self, key: str) -> bool:
        if self._docs is not None and key in self._docs:
            return self._docs[key] is not None
        return await self._store.exists(key)


# ----------------------------------------------------------------------------- prefetch
_MISS = object()


class PrefetchStore(MetadataPrefetchStore):
    """Read-only store wrapper answering ``get`` from objects fetched ahead by :meth:`fetch`
    (and root metadata from one prefetched document, as :class:`MetadataPrefetchStore`)."""

    def __init__(self, store: Store, *, zarr_format: int | None = None) -> None:
        super().__init__(store, zarr_format=zarr_format)
        self._objects: dict[str, bytes | None] = {}
        self._refs: dict[str, int] = {}  # reads currently relying on a cached object

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_objects"], state["_refs"] = {}, {}
        return state

    def __repr__(self) -> str:
        return f"PrefetchStore({self._store!r})"

    # -- cache -----------------------------------------------------------------------------
    def _lookup(self, key: str, byte_range: ByteRequest | None) -> Any:
        data = self._objects.get(key, _MISS)
        if data is _MISS or data is None:
            return data
        if byte_range is None:
            return data
        if isinstance(byte_range, RangeByteRequest):
            return data[byte_range.start : byte_range.end]
        if isinstance(byte_range, OffsetByteRequest):
            return data[byte_range.offset :]
        if isinstance(byte_range, SuffixByteRequest):
            return data[-byte_range.suffix :] if byte_range.suffix else b""
        return _MISS

    def cached_objects(self, keys: Iterable[str]) -> dict[str, bytes | None] | None:
        """The cached objects ``keys`` (None unless every one of them is cached)."""
        out = {}
        for key in keys:
            data = self._objects.get(key, _MISS)
            if data is _MISS:
                return None
            out[key] = data
        return out

    async def get(self, key: str, prototype: Any, byte_range: ByteRequest | None = None) -> Any:
        hit = self._lookup(key, byte_range)
        if hit is not _MISS:
            return None if hit is None else prototype.buffer.from_bytes(hit)
        return await super().get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Iterable[tuple[str, ByteRequest | None]]) -> list[Any]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        if key in self._objects:
            return self._objects[key] is not None
        return await super().exists(key)

    async def fetch(self, keys: Iterable[str]) -> int:
        """Fetch the whole objects ``keys`` (missing ones cached as absent) concurrently;
        returns the number of bytes fetched."""
        from zarr.core.buffer import default_buffer_prototype

        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._refs[key] = self._refs.get(key, 0) + 1
        todo = [k for k in wanted if k not in self._objects]
        proto = default_buffer_prototype()

        async def one(key: str) -> int:
            buf = await self._store.get(key, proto)
            data = None if buf is None else buf.to_bytes()
            self._objects[key] = data
            return len(data or b"")

        from annio.io._storage import engine

        return sum(await engine.gather_limited(one(k) for k in todo))

    def drop(self, keys: Iterable[str] | None = None) -> None:
        """Forget cached objects (all when ``keys`` is None)."""
        if keys is None:
            self._objects.clear()
            self._refs.clear()
            return
        for key in dict.fromkeys(keys):
            left = self._refs.get(key, 1) - 1
            if left > 0:
                self._refs[key] = left
                continue
            self._refs.pop(key, None)
            self._objects.pop(key, None)



# ----------------------------------------------------------------------------- h5
class RemoteH5File(h5py.File):
    """An ``h5py.File`` reading from a remote (fsspec) file object; closing it also closes
    that file object."""

    _annio_fileobj: Any = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            fobj, self._annio_fileobj = self._annio_fileobj, None
            if fobj is not None:
                fobj.close()


def open_h5_file_from_url(
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    block_size: int | None = None,
    cache_type: str = "blockcache",
) -> RemoteH5File:
    """Open the HDF5 file at ``url`` read-only over fsspec (``http(s)://``, ``s3://``, ...).

    The file object reads in ``block_size`` blocks (default :data:`DEFAULT_H5_BLOCK_SIZE`)
    through fsspec's ``cache_type`` cache, so the many small metadata reads HDF5 makes cost
    few requests. ``storage_options`` are mapped as for :func:`zarr_store_from_url`
    (``backend`` is ignored: HDF5 always goes through fsspec). Close the returned file (or
    use it as a context manager) to release the connection.
    """
    import fsspec

    if not is_url(url):
        raise ValueError(f"not a URL: {url!r}")
    _, options = _split_backend(storage_options)
    opts = _fsspec_options(url, options)
    fs, path = fsspec.core.url_to_fs(url, **opts)
    fobj = fs.open(path, mode="rb", block_size=block_size or DEFAULT_H5_BLOCK_SIZE, cache_type=cache_type)
    try:
        f = RemoteH5File(fobj, "r")
    except Exception:
        fobj.close()
        raise
    f._annio_fileobj = fobj
    return f
