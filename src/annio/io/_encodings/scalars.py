"""0-d values: ``numeric-scalar``, ``string``, ``null`` and the read-only ``bytes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from annio.errors import FormatError
from annio.io._encodings.registry import ArrayEncoding, IOSpec, Reader, Writer, register
from annio.io._storage.adapter import StorageArray, StorageGroup


@register
class NumericScalar(ArrayEncoding):
    """A single bool/int/float/complex value, stored unchunked and uncompressed."""

    spec = IOSpec("numeric-scalar", "0.2.0")
    python_types = (bool, int, float, complex, np.bool_, np.number)

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            raise OverflowError(f"{parent.path}/{key}: integer {value} does not fit in 64 bits")
        return parent.create_scalar(key, value, attrs=self.spec.as_attrs())

    def read(self, node: StorageArray, reader: Reader) -> Any:
        if node.shape not in ((), (1,)):
            raise FormatError(node.path, f"numeric-scalar has shape {node.shape}, expected ()")
        value = node.read_scalar()
        # a Python bool/int/float/complex, as anndata gives it (json.dumps(uns) works)
        return value.item() if isinstance(value, np.generic) else value


@register
class StringScalar(ArrayEncoding):
    """A single UTF-8 string."""

    spec = IOSpec("string", "0.2.0")
    python_types = (str, np.str_)

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        return parent.create_scalar(key, str(value), attrs=self.spec.as_attrs())

    def read(self, node: StorageArray, reader: Reader) -> str:
        value = node.read_scalar()
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@register
class Null(ArrayEncoding):
    """``None``: an h5 null dataspace, or a zarr 0-d bool array without chunks."""

    spec = IOSpec("null", "0.1.0")
    python_types = (type(None),)

    def write(self, parent: StorageGroup, key: str, value: Any, writer: Writer, dataset_kwargs: Mapping[str, Any]) -> StorageArray:
        return parent.create_null(key, attrs=self.spec.as_attrs())

    def read(self, node: StorageArray, reader: Reader) -> None:
        return None


@register
class BytesScalar(ArrayEncoding):
    """Read-only: a bytes value stored by some writers; read as a scalar."""

    spec = IOSpec("bytes", "0.2.0")

    def read(self, node: StorageArray, reader: Reader) -> Any:
        return node.read_scalar()
