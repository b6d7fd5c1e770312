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

import concurrent.futures
from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any
from urllib.parse import urlsplit

import h5py
from zarr.abc.store import Store

from annio.io._storage import h5_meta
from annio.io._storage.h5_ranges import RangeCachedFile, register_open
from annio.io._storage.prefetch_store import MetadataPrefetchStore, PrefetchStore
from annio.io._storage.urls import is_url

__all__ = [
    "is_url",
    "url_scheme",
    "zarr_store_from_url",
    "open_h5_file_from_url",
    "MetadataPrefetchStore",
    "RemoteH5File",
    "DEFAULT_H5_BLOCK_SIZE",
]

_OBSTORE_SCHEMES = {"s3", "s3a", "http", "https"}

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
    # opening asks for the size (a HEAD request); the superblock the metadata walk starts
    # from is fetched meanwhile, saving a round trip
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        opening = pool.submit(fs.open, path, mode="rb", block_size=block_size or DEFAULT_H5_BLOCK_SIZE, cache_type=cache_type)
        try:
            head: bytes | None = bytes(fs.cat_file(path, start=0, end=h5_meta.HEAD_BYTES))
        except Exception:  # any failure (a server refusing ranges ...): the walk fetches the head itself
            head = None
        raw = opening.result()
    fobj = RangeCachedFile(raw, fs, path)
    try:
        fobj.prefetch_metadata(head)
        f = RemoteH5File(fobj, "r")
    except Exception:
        fobj.close()
        raise
    f._annio_fileobj = fobj
    register_open(f, fobj)
    return f
