"""SHA-256 helpers for content addressing (trees, model artifacts, A20 registration hashes)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from kamado.core.errors import InvalidSpec

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


def validate_digest(digest: str, *, field: str = "digest") -> str:
    """Return ``digest`` if it is 64 lowercase hex characters (a SHA-256), else raise InvalidSpec.

    Digests become part of artifact keys (``trees/<digest>/...``), so they are checked as strictly as keys;
    upper case is refused rather than folded so that one tree has exactly one spelling.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        shown = ascii(digest)[:80]
        raise InvalidSpec(
            f"{field} {shown} is not a SHA-256 digest; give 64 lowercase hexadecimal characters.",
            details=[{"field": field, "message": "not 64 lowercase hex characters"}],
        )
    return digest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """(hex digest, byte count) of everything left in ``stream``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a local file without loading it into memory."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)
