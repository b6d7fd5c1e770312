"""Every error and warning annio raises, in one hierarchy.

Errors about stored data always name the element path (``/obsm/X_pca/data``) and say what
was expected and what was found, so a user can locate the problem in the file.
"""

from __future__ import annotations

__all__ = [
    "AnnioError",
    "FormatError",
    "UnknownEncodingError",
    "MissingElementError",
    "IORegistryError",
    "WriteError",
    "AnnioWarning",
    "OldFormatWarning",
    "ImplicitModificationWarning",
    "ExperimentalFeatureWarning",
    "WriteWarning",
    "UnsafeElementNameWarning",
    "MissingDependencyError",
]


class AnnioError(Exception):
    """Base class of every error annio raises on purpose."""


def _with_path(path: str | None, message: str) -> str:
    return f"{path}: {message}" if path else message


class FormatError(AnnioError, ValueError):
    """Stored data does not follow the anndata on-disk format (corrupt, truncated, hostile).

    Parameters
    ----------
    path
        Path of the offending element inside the store, e.g. ``"/obsm/X_pca"``.
    message
        What was expected and what was found.
    """

    def __init__(self, path: str | None, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(_with_path(path, message))


class MissingElementError(FormatError):
    """An element the format requires (or the caller asked for) is not in the store."""


class UnknownEncodingError(FormatError):
    """An element carries an ``encoding-type``/``encoding-version`` annio cannot read."""

    def __init__(self, path: str | None, encoding_type: str, encoding_version: str) -> None:
        self.encoding_type = encoding_type
        self.encoding_version = encoding_version
        super().__init__(
            path,
            f"unknown encoding (encoding-type={encoding_type!r}, "
            f"encoding-version={encoding_version!r}); annio may need an update",
        )


class IORegistryError(AnnioError, TypeError):
    """No reader or writer is registered for a Python type or a stored encoding."""


class WriteError(AnnioError):
    """Writing failed; the previous file or store (if any) was left untouched."""


class MissingDependencyError(AnnioError, ImportError):
    """An optional dependency a reader or writer needs is not installed; names the extra."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{what} needs the optional package {package!r}: pip install 'annio[{extra}]'")


class AnnioWarning(UserWarning):
    """Base class of every warning annio emits."""


class OldFormatWarning(AnnioWarning):
    """An element was written by an old anndata release without encoding metadata."""


class ImplicitModificationWarning(AnnioWarning):
    """An operation changed data implicitly (e.g. a view became an actual object)."""


class ExperimentalFeatureWarning(AnnioWarning):
    """A feature whose format or API may still change was used."""


class WriteWarning(AnnioWarning):
    """Something could not be written exactly (e.g. a value a text format cannot hold)."""


class UnsafeElementNameWarning(AnnioWarning):
    """An element name contains characters (``%``, ``#``, ``?``) that break URL-based readers."""
