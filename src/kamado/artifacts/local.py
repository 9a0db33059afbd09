"""The artifact store on a local directory (the default for a single machine).

Built on fsspec's local filesystem so the read side behaves like the S3 backend that comes later; writes
go through a temporary file in the target's own directory and :func:`os.replace`, which is atomic on
POSIX, so a reader sees the old object or the new one, never half of either.

Every key is validated by :func:`~kamado.artifacts.keys.validate_key` first; then the real path (all
symlinks resolved) must still lie under the real root (A1, defence in depth: a symlink planted inside the
root cannot be used to reach out of it). URIs are ``file://`` plus the absolute path, not percent-encoded,
just as SageMaker shows S3 URIs; :meth:`LocalArtifactStore.key_from_uri` accepts the encoded form too.
Temporary files carry a '#', which no valid key can, so they
never show up in :meth:`LocalArtifactStore.list` and can never be addressed by a key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast
from urllib.parse import unquote

import fsspec

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.keys import validate_key, validate_prefix
from kamado.core.errors import InvalidSpec, NotFound

_TMP_MARK = "#kamado-tmp-"
_COPY_CHUNK = 1024 * 1024


def _write_atomically(dest: Path, fill: Callable[[IO[bytes]], object]) -> None:
    """Write ``dest`` through a uniquely named sibling temp file and :func:`os.replace`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name[:64]}{_TMP_MARK}{secrets.token_hex(8)}"
    try:
        with open(tmp, "xb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class LocalArtifactStore(ArtifactStore):
    """Objects are files under ``root``; a key maps to ``root / key``. Thread-safe; no locks needed."""

    def __init__(self, root: Path) -> None:
        root = Path(root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        self.root_uri = f"file://{self.root.as_posix()}"
        self._fs = fsspec.filesystem("file")

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------------

    def _path(self, key: str, *, field: str = "key") -> Path:
        """The real path for a validated key, refusing anything that resolves outside the root."""
        key = validate_key(key, field=field)
        return self._contained(self.root / key, key, field)

    def _contained(self, path: Path, key: str, field: str) -> Path:
        real = path.resolve(strict=False)
        if not real.is_relative_to(self.root):
            raise InvalidSpec(
                f"{field} {key!r} resolves outside the artifact store through a symbolic link; "
                "remove the link from the store's directory or use another key.",
                details=[{"field": field, "message": "resolves outside the store root"}],
            )
        return real

    def _file(self, key: str) -> Path:
        """The path of an existing object (a regular file), or NotFound."""
        path = self._path(key)
        if not path.is_file():
            raise NotFound(
                f"Artifact {key!r} does not exist in {self.root_uri}; check the key or upload it first.",
                details={"key": key},
            )
        return path

    # -- ArtifactStore -------------------------------------------------------------------------------

    def uri(self, key: str) -> str:
        return f"{self.root_uri}/{validate_key(key)}"

    def key_from_uri(self, uri: str) -> str:
        """Accepts ``file:///root/key``, ``file://localhost/root/key`` and a plain absolute path.

        One trailing '/' is dropped, so the URI of a prefix (as :func:`tree_uri` returns) maps back too.
        """
        if not isinstance(uri, str) or not uri:
            raise InvalidSpec("uri must be a non-empty string.", details=[{"field": "uri", "message": "empty"}])
        if any(not ch.isprintable() for ch in uri):
            # Never part of a key; refused up front because URL parsers drop tabs/newlines ('a\r\nb' -> 'ab').
            raise self._outside(uri)
        if uri.startswith("file://"):
            host, _, rest = uri[len("file://") :].partition("/")
            if host not in ("", "localhost"):
                raise self._outside(uri)
            path = "/" + rest
        elif uri.startswith("file:/"):
            path = uri[len("file:") :]
        elif uri.startswith("/"):
            path = uri
        else:
            raise self._outside(uri)
        # Parsed by hand, not urlsplit: a root may legally contain '#' or '?', and anything after the root
        # is checked by validate_key anyway. The root part may arrive percent-encoded (Path.as_uri does
        # that), so the decoded spelling is tried second; an encoded '..' in the key part is refused there.
        candidates = [path, unquote(path)]
        root = self.root.as_posix()
        for path in candidates:
            if path.endswith("/") and not path.endswith("//"):
                path = path[:-1]
            if path.startswith(root + "/"):
                return validate_key(path[len(root) + 1 :], field="uri")
        raise self._outside(uri)

    def _outside(self, uri: str) -> InvalidSpec:
        shown = ascii(uri)[:120]
        return InvalidSpec(
            f"uri {shown} does not point inside the artifact store {self.root_uri}; "
            f"use a URI of the form {self.root_uri}/<key>.",
            details=[{"field": "uri", "message": "not inside this store"}],
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._refuse_directory(path, key)
        _write_atomically(path, lambda fh: fh.write(data))

    def put_file(self, key: str, local_path: Path) -> None:
        path = self._path(key)
        self._refuse_directory(path, key)
        with open(local_path, "rb") as src:
            _write_atomically(path, lambda fh: shutil.copyfileobj(src, fh, _COPY_CHUNK))

    def _refuse_directory(self, path: Path, key: str) -> None:
        """A local directory cannot also be a file; S3 allows both, so say so instead of an OSError."""
        if path.is_dir():
            raise InvalidSpec(
                f"Artifact key {key!r} is already a prefix of other artifacts in this local store; "
                "write under it (e.g. '<key>/file') or delete those artifacts first.",
                details=[{"field": "key", "message": "is a directory in the local store"}],
            )
        for parent in path.parents:
            if parent == self.root:
                break
            if parent.exists() and not parent.is_dir():
                raise InvalidSpec(
                    f"Artifact key {key!r} lies under {parent.relative_to(self.root).as_posix()!r}, "
                    "which is an artifact, not a prefix, in this local store; choose another key.",
                    details=[{"field": "key", "message": "a parent is an object"}],
                )

    def get_bytes(self, key: str) -> bytes:
        with self.open_read(key) as fh:
            return fh.read()

    def get_file(self, key: str, local_path: Path) -> None:
        with self.open_read(key) as src:
            _write_atomically(Path(local_path), lambda fh: shutil.copyfileobj(src, fh, _COPY_CHUNK))

    def open_read(self, key: str) -> BinaryIO:
        path = self._file(key)
        try:
            return cast(BinaryIO, self._fs.open(path.as_posix(), "rb"))
        except FileNotFoundError:  # deleted between the check and the open
            raise NotFound(f"Artifact {key!r} does not exist in {self.root_uri}.", details={"key": key}) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._file(key)
        try:
            return int(self._fs.size(path.as_posix()))
        except FileNotFoundError:
            raise NotFound(f"Artifact {key!r} does not exist in {self.root_uri}.", details={"key": key}) from None

    def list(self, prefix: str) -> Iterator[str]:
        """Sorted keys under ``prefix``; files that are not valid keys (temp files, strays) are skipped.

        Directory symlinks are not followed, so a link in the root cannot widen a listing beyond it.
        """
        prefix = validate_prefix(prefix)
        base = self._contained(self.root / prefix, prefix, "prefix") if prefix else self.root
        if not base.is_dir():
            return iter(())
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(base, followlinks=False):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if _TMP_MARK in name:
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                full = Path(dirpath) / name
                if full.is_symlink() or not full.is_file():
                    continue
                try:
                    keys.append(validate_key(key))
                except InvalidSpec:
                    continue
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_file():
            # A concurrent delete may win the race; the outcome is the same.
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(path.as_posix())
