"""Content-addressed directory trees: how source code and local training data are uploaded once.

A tree is identified by the SHA-256 of its manifest, a canonical JSON list of ``{path, sha256, size,
executable}`` for every regular file (sorted by path). The same directory therefore always has the same
digest, so a client asks :func:`tree_exists` before uploading and a second job with unchanged code uploads
nothing.

Layout in the artifact store::

    trees/<digest>/<path>            one object per file
    trees/<digest>.manifest.json     the canonical manifest, written last

The manifest is the commit marker: a tree exists exactly when its manifest does, so an upload that dies
half way leaves no tree that looks complete, and a retry simply redoes it. The manifest's own sha256 is the
digest, so it verifies itself when read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kamado.artifacts.archives import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMBERS,
    DirEntry,
    extract_archive,
    walk_dir,
    write_targz,
)
from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.hashing import sha256_bytes, sha256_file, validate_digest
from kamado.artifacts.keys import validate_key
from kamado.core.errors import InvalidSpec, KamadoError, NotFound

TREES_PREFIX = "trees"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class TreeFile:
    path: str
    sha256: str
    size: int
    executable: bool


@dataclass(frozen=True)
class TreeManifest:
    """A tree's files, its digest and total size. Build with :meth:`of` or :meth:`from_json`."""

    digest: str
    files: tuple[TreeFile, ...]
    total_bytes: int

    @classmethod
    def of(cls, files: list[TreeFile] | tuple[TreeFile, ...]) -> TreeManifest:
        ordered = tuple(sorted(files, key=lambda f: f.path))
        return cls(
            digest=sha256_bytes(_canonical(ordered)),
            files=ordered,
            total_bytes=sum(f.size for f in ordered),
        )

    def canonical_bytes(self) -> bytes:
        """The bytes the digest is the sha256 of (and what is stored as the manifest object)."""
        return _canonical(self.files)

    def to_json(self) -> str:
        return self.canonical_bytes().decode("ascii")

    @classmethod
    def from_json(cls, data: str | bytes, *, expected_digest: str | None = None) -> TreeManifest:
        """Parse and validate a manifest; every path is checked as an artifact key (it becomes one).

        With ``expected_digest`` the parsed manifest must hash to it, else InvalidSpec.
        """
        try:
            items = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad_manifest(f"not JSON ({exc})") from None
        if not isinstance(items, list):
            raise _bad_manifest("not a JSON list")
        files = [_tree_file(item) for item in items]
        paths = [f.path for f in files]
        if paths != sorted(set(paths)):
            raise _bad_manifest("paths are not unique and sorted")
        manifest = cls.of(files)
        if expected_digest is not None and manifest.digest != expected_digest:
            raise _bad_manifest(f"it hashes to {manifest.digest}, not {expected_digest}")
        return manifest


def _canonical(files: tuple[TreeFile, ...]) -> bytes:
    return json.dumps([asdict(f) for f in files], sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def _bad_manifest(reason: str) -> InvalidSpec:
    return InvalidSpec(f"Invalid tree manifest: {reason}.", details=[{"field": "manifest", "message": reason}])


def _tree_file(item: Any) -> TreeFile:
    if not isinstance(item, dict) or set(item) != {"path", "sha256", "size", "executable"}:
        raise _bad_manifest("each entry must have exactly path, sha256, size and executable")
    path, digest, size, executable = item["path"], item["sha256"], item["size"], item["executable"]
    if not isinstance(path, str) or validate_key(path, field="manifest path") != path:
        raise _bad_manifest(f"path {ascii(path)[:80]} is not NFC-normalised")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _bad_manifest(f"size of {path!r} is not a non-negative integer")
    if not isinstance(executable, bool):
        raise _bad_manifest(f"executable of {path!r} is not a boolean")
    return TreeFile(path, validate_digest(digest, field="manifest sha256"), size, executable)


def _manifest_of_entries(entries: list[DirEntry]) -> tuple[TreeManifest, dict[str, tuple[str, int]]]:
    hashes = {e.rel: sha256_file(e.path) for e in entries if not e.is_dir}
    files = [TreeFile(e.rel, *hashes[e.rel], e.executable) for e in entries if not e.is_dir]
    return TreeManifest.of(files), hashes


def manifest_of_dir(path: Path) -> TreeManifest:
    """The manifest of every regular file under ``path`` (skipping ``.git``, ``__pycache__``, ``*.pyc``,
    ``.DS_Store``). Raises InvalidSpec naming any symlink, device or badly named file found."""
    return _manifest_of_entries(walk_dir(path, skip_tree_litter=True))[0]


def pack_dir(path: Path, dest: Path) -> TreeManifest:
    """Write the files of :func:`manifest_of_dir` to ``dest`` as a deterministic ``.tar.gz``.

    Each file is re-hashed as it is packed, so a file edited meanwhile raises InvalidSpec instead of
    producing an archive the server would reject for not matching the returned manifest.
    """
    entries = [e for e in walk_dir(path, skip_tree_litter=True) if not e.is_dir]
    manifest, hashes = _manifest_of_entries(entries)
    write_targz(dest, entries, expected=hashes)
    return manifest


def _tree_prefix(digest: str) -> str:
    return f"{TREES_PREFIX}/{validate_digest(digest)}"


def _manifest_key(digest: str) -> str:
    return f"{_tree_prefix(digest)}.manifest.json"


def tree_exists(store: ArtifactStore, digest: str) -> bool:
    return store.exists(_manifest_key(digest))


def tree_uri(store: ArtifactStore, digest: str) -> str:
    """The URI of the ``trees/<digest>`` prefix (what a job's code or channel points at)."""
    return store.uri(_tree_prefix(digest))


def load_tree_manifest(store: ArtifactStore, digest: str) -> TreeManifest:
    """The stored manifest of a committed tree; NotFound if the tree was never (fully) uploaded."""
    try:
        data = store.get_bytes(_manifest_key(digest))
    except NotFound:
        raise NotFound(
            f"Tree {digest} is not in the artifact store; upload it first.", details={"digest": digest}
        ) from None
    try:
        return TreeManifest.from_json(data, expected_digest=digest)
    except InvalidSpec as exc:
        raise KamadoError(f"Stored manifest of tree {digest} is corrupt: {exc.message}") from None


def store_tree_from_archive(
    store: ArtifactStore,
    archive_path: Path,
    expected_digest: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> TreeManifest:
    """Safely unpack an uploaded archive, check it is the tree ``expected_digest`` names, store it.

    Idempotent: a tree whose manifest is already stored is not touched again. Files go in first and the
    manifest last, so concurrent uploads of one tree are harmless (identical bytes, atomic objects).
    """
    digest = validate_digest(expected_digest, field="expected_digest")
    if tree_exists(store, digest):
        return load_tree_manifest(store, digest)
    with tempfile.TemporaryDirectory(prefix="kamado-tree-") as tmp:
        root = Path(tmp) / "tree"
        extract_archive(archive_path, root, max_bytes=max_bytes, max_members=max_members)
        manifest = manifest_of_dir(root)
        if manifest.digest != digest:
            raise InvalidSpec(
                f"The uploaded archive holds tree {manifest.digest}, not {digest}; recompute the digest "
                "from the same directory you packed and upload again.",
                details=[{"field": "expected_digest", "message": "does not match the archive"}],
            )
        prefix = _tree_prefix(digest)
        for f in manifest.files:
            store.put_file(f"{prefix}/{f.path}", root / f.path)
        store.put_bytes(_manifest_key(digest), manifest.canonical_bytes())
    return manifest


def materialize_tree(
    store: ArtifactStore, digest: str, dest: Path, *, only: Collection[str] | None = None
) -> TreeManifest:
    """Copy tree ``digest`` into ``dest`` (created), verifying every file's sha256 and size on the way.
    ``only`` limits the copy to those paths of the tree (one shard of it, say).

    Executable bits are restored from the manifest. A file whose stored bytes do not match raises
    KamadoError (500: the store is damaged, the caller did nothing wrong) and is not left in ``dest``.
    """
    manifest = load_tree_manifest(store, digest)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    real_dest = dest.resolve()
    prefix = _tree_prefix(digest)
    for f in manifest.files:
        if only is not None and f.path not in only:
            continue
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(real_dest):
            raise InvalidSpec(
                f"{f.path!r} would be written outside {str(dest)!r} through a symbolic link; "
                "materialise into an empty directory.",
                details=[{"field": "dest", "message": "contains a symlink leading outside"}],
            )
        _copy_verified(store, f"{prefix}/{f.path}", target, f, digest)
    return manifest


def _copy_verified(store: ArtifactStore, key: str, target: Path, f: TreeFile, digest: str) -> None:
    tmp = target.parent / f".{target.name[:64]}#kamado-tmp-{secrets.token_hex(8)}"
    h = hashlib.sha256()
    size = 0
    try:
        try:
            src = store.open_read(key)
        except NotFound:
            raise KamadoError(f"Tree {digest} is incomplete in the artifact store: {f.path!r} is missing.") from None
        with src, open(tmp, "xb") as out:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if (h.hexdigest(), size) != (f.sha256, f.size):
            raise KamadoError(
                f"Tree {digest} is corrupt in the artifact store: {f.path!r} does not match its manifest."
            )
        os.chmod(tmp, 0o755 if f.executable else 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = [
    "TreeFile",
    "TreeManifest",
    "load_tree_manifest",
    "manifest_of_dir",
    "materialize_tree",
    "pack_dir",
    "store_tree_from_archive",
    "tree_exists",
    "tree_uri",
]
