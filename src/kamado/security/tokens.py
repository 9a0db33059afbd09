"""API token format and hashing.

A token is ``kmd_<token_id>_<secret>``: ``token_id`` (12 hex characters) is public and only finds the row;
``secret`` carries 256 random bits and is stored only as ``sha256(salt || secret)`` with a per-token random
salt. The plaintext is shown once, at creation. Comparison is constant-time, and an unknown ``token_id``
still pays for one hash and one comparison, so timing does not tell a guesser which ids exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "kmd_"
_FORMAT = re.compile(r"^kmd_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: Hash compared against when the token id is unknown, so both paths do the same work.
_DUMMY_SALT = "0" * 32
_DUMMY_HASH = hashlib.sha256(b"kamado-dummy").hexdigest()


@dataclass(frozen=True)
class NewToken:
    token_id: str
    plaintext: str
    salt: str
    hash: str


def mint() -> NewToken:
    """A fresh token: 48 random bits of public id, 256 random bits of secret."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewToken(
        token_id=token_id, plaintext=f"{PREFIX}{token_id}_{secret}", salt=salt, hash=hash_secret(salt, secret)
    )


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """(token_id, secret), or None when ``token`` is not shaped like a kamado token."""
    m = _FORMAT.match(token)
    return (m.group(1), m.group(2)) if m else None


def matches(secret: str, salt: str | None, expected: str | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash; ``None`` (unknown id) compares a dummy."""
    if salt is None or expected is None:
        hmac.compare_digest(hash_secret(_DUMMY_SALT, secret), _DUMMY_HASH)
        return False
    return hmac.compare_digest(hash_secret(salt, secret), expected)
