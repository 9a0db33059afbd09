"""Tar archives in and out: deterministic packing and hostile-input-safe extraction (A2).

Packing is deterministic (sorted entries, mtime 0, uid/gid 0, no owner names, gzip header without name or
time) so the same directory always gives the same bytes; that makes uploads cacheable and builds
reproducible.

Extraction assumes the archive was written by an attacker. Python's ``filter="data"`` is the base line; on
top of it, anything but regular files and directories is refused outright (links, devices, FIFOs, sparse
files), every member name must be a valid artifact key, and the caps on member count and uncompressed
bytes are enforced while streaming, before a member's data is read, so a gzip bomb stops at its first
oversized header rather than after filling the disk. Oversized metadata headers (pax, GNU long name) are
refused before tarfile reads them into memory, and the decompressed stream itself is capped as a backstop.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import secrets
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from kamado.artifacts.keys import validate_key
from kamado.core.errors import InvalidSpec

DEFAULT_MAX_BYTES = 10 * 1024**3
DEFAULT_MAX_MEMBERS = 100_000
#: pax and GNU long-name headers larger than this are refused (legitimate ones are a few hundred bytes).
MAX_METADATA_HEADER_BYTES = 1024 * 1024

#: Never part of an uploaded source tree: VCS data, bytecode and Finder litter.
TREE_SKIP_DIRS = frozenset({"__pycache__", ".git"})  # '.git' is a file in worktrees; skipped either way
TREE_SKIP_FILES = frozenset({".DS_Store"})
TREE_SKIP_SUFFIXES = (".pyc",)

_CHUNK = 1024 * 1024
_GZIP_LEVEL = 6


@dataclass(frozen=True)
class DirEntry:
    """One thing to pack: ``rel`` is its validated key-style path, ``path`` where it is on disk."""

    rel: str
    path: Path
    is_dir: bool
    executable: bool


def _unsupported(rel: str, what: str) -> InvalidSpec:
    return InvalidSpec(
        f"{rel!r} is {what}; only regular files and directories can be packed. "
        "Replace it with a copy of what it points to, or remove it.",
        details=[{"field": "path", "message": f"{rel}: {what}"}],
    )


def walk_dir(root: Path, *, skip_tree_litter: bool) -> list[DirEntry]:
    """Every file and directory under ``root``, sorted by relative path, symlinks refused.

    No symlink is followed, because a link is how a packed tree would pick up ``~/.ssh`` or ``/etc``; the
    error names the link so the user can replace it. With ``skip_tree_litter`` the names in
    :data:`TREE_SKIP_DIRS`, :data:`TREE_SKIP_FILES` and :data:`TREE_SKIP_SUFFIXES` are left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidSpec(
            f"{str(root)!r} is not a directory; pass the directory to pack.",
            details=[{"field": "path", "message": "not a directory"}],
        )
    entries: dict[str, DirEntry] = {}
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                name = entry.name
                if skip_tree_litter and (
                    name in TREE_SKIP_FILES or name.endswith(TREE_SKIP_SUFFIXES) or name in TREE_SKIP_DIRS
                ):
                    continue
                raw_rel = f"{prefix}{name}"
                if entry.is_symlink():
                    raise _unsupported(raw_rel, f"a symbolic link to {os.readlink(entry.path)!r}")
                rel = validate_key(raw_rel, field="path")
                if rel in entries:
                    raise InvalidSpec(
                        f"{raw_rel!r} and {str(entries[rel].path)!r} have the same name after Unicode "
                        "normalisation; rename one of them.",
                        details=[{"field": "path", "message": f"{rel}: duplicate after NFC"}],
                    )
                st = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    entries[rel] = DirEntry(rel, Path(entry.path), True, False)
                    stack.append((Path(entry.path), f"{raw_rel}/"))
                elif entry.is_file(follow_symlinks=False):
                    entries[rel] = DirEntry(rel, Path(entry.path), False, bool(st.st_mode & 0o100))
                else:
                    raise _unsupported(raw_rel, "a device, FIFO or socket")
    return [entries[k] for k in sorted(entries)]


class _HashingReader(io.RawIOBase):
    """Reads a file and hashes exactly what tarfile copied, so a file changing mid-pack is caught."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data


def _tarinfo(rel: str, *, is_dir: bool, executable: bool, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if (is_dir or executable) else 0o644
    info.size = 0 if is_dir else size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_targz(dest: Path, entries: Iterable[DirEntry], *, expected: dict[str, tuple[str, int]] | None = None) -> str:
    """Write ``entries`` (in the order given) as a deterministic ``.tar.gz``; returns the archive's sha256.

    ``expected`` maps a file's rel path to the (sha256, size) it had when it was hashed; a file whose bytes
    differ by the time they are packed raises InvalidSpec rather than producing an archive that does not
    match its manifest. ``dest`` is replaced atomically.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name[:64]}#kamado-tmp-{secrets.token_hex(8)}"
    try:
        with open(tmp, "wb") as raw:
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in entries:
                    if entry.is_dir:
                        tar.addfile(_tarinfo(entry.rel, is_dir=True, executable=True, size=0))
                        continue
                    _add_file(tar, entry, None if expected is None else expected[entry.rel])
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with open(dest, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _add_file(tar: tarfile.TarFile, entry: DirEntry, expected: tuple[str, int] | None) -> None:
    changed = InvalidSpec(
        f"{entry.rel!r} changed while it was being packed; pack again once nothing writes to it.",
        details=[{"field": "path", "message": f"{entry.rel}: changed during packing"}],
    )
    with open(entry.path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size if expected is None else expected[1]
        reader = _HashingReader(fh)
        try:
            tar.addfile(_tarinfo(entry.rel, is_dir=False, executable=entry.executable, size=size), reader)
        except OSError as exc:  # tarfile's "unexpected end of data": the file shrank
            raise changed from exc
    if expected is not None and (reader.hash.hexdigest(), reader.count) != expected:
        raise changed


def pack_model_dir(model_dir: Path, dest: Path) -> str:
    """Write SageMaker's ``model.tar.gz`` shape: the directory's contents at the archive root.

    Entries are relative (``model.joblib``, ``code/inference.py``), empty directories are kept, nothing is
    skipped, symlinks are refused, and the bytes are deterministic. Returns the archive's sha256, the
    content hash a model registration records (A20).
    """
    return write_targz(dest, walk_dir(model_dir, skip_tree_litter=False))


# -- extraction ---------------------------------------------------------------------------------------


def _unsafe(archive: Path, reason: str) -> InvalidSpec:
    return InvalidSpec(
        f"Archive {Path(archive).name!r} was refused: {reason}. Archives may hold only regular files and "
        "directories with relative paths; rebuild it (e.g. with kamado's packer).",
        details=[{"field": "archive", "message": reason}],
    )


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses pax / GNU long-name headers that tarfile would otherwise read whole into memory."""

    _METADATA_TYPES = (
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    )

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in self._METADATA_TYPES and self.size > MAX_METADATA_HEADER_BYTES:
            raise InvalidSpec(
                f"Archive has a {self.size}-byte metadata header; the limit is {MAX_METADATA_HEADER_BYTES}.",
                details=[{"field": "archive", "message": "oversized metadata header"}],
            )
        result: tarfile.TarInfo = getattr(super(), "_proc_member")(tarfile_)  # noqa: B009
        return result


class _CappedReader(io.RawIOBase):
    """Raises once more than ``cap`` decompressed bytes have been read: the backstop against bombs."""

    def __init__(self, inner: IO[bytes], cap: int, archive: Path) -> None:
        self._inner = inner
        self._left = cap
        self._archive = archive

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size if size >= 0 else self._left + 1)
        self._left -= len(data)
        if self._left < 0:
            raise _unsafe(self._archive, "it decompresses to more data than the size limit allows")
        return data


def _decompressed(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb"))
    return raw


def _member_name(archive: Path, member: tarfile.TarInfo) -> str | None:
    """The member's validated relative path, or None for the archive's own root ('.', './')."""
    name = member.name
    if name.startswith("/"):
        raise _unsafe(archive, f"member {ascii(name)[:80]} has an absolute path")
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/") if member.isdir() else name
    if name in ("", "."):
        if member.isdir():
            return None
        raise _unsafe(archive, f"member {ascii(member.name)[:80]} has an empty name")
    try:
        return validate_key(name, field="archive member")
    except InvalidSpec as exc:
        raise _unsafe(archive, f"member {ascii(member.name)[:80]} has an unsafe name ({exc.message})") from None


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """None for an acceptable member, else what it is (for the error message)."""
    if member.issym():
        return f"a symbolic link to {ascii(member.linkname)[:80]}"
    if member.islnk():
        return f"a hard link to {ascii(member.linkname)[:80]}"
    if member.ischr() or member.isblk():
        return "a device node"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if member.isreg() or member.isdir():
        return None
    return f"of unsupported tar type {member.type!r}"


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Safely extract a tar archive (plain, gzip, bzip2 or xz) into ``dest``; returns the file paths.

    Raises InvalidSpec for anything unsafe or over the caps. On error, ``dest`` may hold part of the
    archive, but never anything outside ``dest``: extract into a fresh temporary directory.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    seen: set[str] = set()
    total = 0
    count = 0
    # Headers cost 512 bytes plus padding; the allowance covers a pax header on every member.
    stream_cap = max_bytes + (max_members + 2) * 3 * 512 + MAX_METADATA_HEADER_BYTES
    try:
        with (
            open(archive, "rb") as raw,
            _decompressed(raw) as plain,
            tarfile.open(fileobj=_CappedReader(plain, stream_cap, archive), mode="r|", tarinfo=_GuardedTarInfo) as tar,
        ):
            for member in tar:
                count += 1
                if count > max_members:
                    raise _unsafe(archive, f"it has more than {max_members} members")
                kind = _member_kind(member)
                if kind is not None:
                    raise _unsafe(archive, f"member {ascii(member.name)[:80]} is {kind}")
                name = _member_name(archive, member)
                if name is None:
                    continue
                if name in seen:
                    raise _unsafe(archive, f"member {ascii(name)[:80]} appears twice")
                seen.add(name)
                if member.isreg():
                    total += member.size
                    if total > max_bytes:
                        raise _unsafe(archive, f"it holds more than {max_bytes} bytes uncompressed")
                    files.append(name)
                member.name = name
                tar.extract(member, dest, set_attrs=True, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, RecursionError) as exc:
        raise _unsafe(archive, f"it is not a readable tar archive ({type(exc).__name__}: {exc})") from None
    return sorted(files)
