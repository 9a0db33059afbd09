"""The artifact store contract.

Keys are relative, '/'-separated paths validated by :func:`kamado.artifacts.keys.validate_key`
before any filesystem or object-store call, so no key can escape the store's root (A1).

Implementations are thread-safe. Every method that reads a missing key raises
:class:`kamado.core.errors.NotFound`; writes are atomic per object (readers never see a half-written
object: write to a temporary name, then rename / single PUT).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kamado.artifacts.keys import validate_prefix


class ArtifactStore(ABC):
    #: The store's own URI of its root, e.g. ``file:///home/u/.kamado/artifacts`` or ``s3://bucket/prefix``.
    root_uri: str

    @abstractmethod
    def uri(self, key: str) -> str:
        """The public URI of ``key`` (what users see as ``ModelArtifacts.S3ModelArtifacts`` etc.)."""

    @abstractmethod
    def key_from_uri(self, uri: str) -> str:
        """Inverse of :meth:`uri`. Raises InvalidSpec when the URI does not point inside this store."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def put_file(self, key: str, local_path: Path) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def get_file(self, key: str, local_path: Path) -> None:
        """Copy the object to ``local_path`` (parents created)."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` (a directory-like prefix; '' lists everything), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error (idempotent)."""

    def download_prefix(self, prefix: str, local_dir: Path) -> int:
        """Copy every object under ``prefix`` into ``local_dir`` keeping relative paths; returns the count."""
        prefix = validate_prefix(prefix)  # normalised like the keys list() returns, so slicing lines up
        count = 0
        base = prefix + "/" if prefix else ""
        for key in self.list(prefix):
            rel = key[len(base) :] if base else key
            self.get_file(key, local_dir / rel)
            count += 1
        return count
