"""The master key (KMS analogue) and AES-GCM encryption of secret values.

The master key never enters the database: it is a 32-byte key in ``KAMADO_HOME/master.key`` (created
with mode 0600 on first use) or ``KAMADO_MASTER_KEY`` (64 hex characters). Each ciphertext records the
fingerprint of the key that made it, so a rotation interrupted half way can still decrypt every row:
the ring holds the current key and, while a rotation is in flight, ``master.key.new``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kamado.core.errors import InvalidSpec, KamadoError

KEY_FILE = "master.key"
ENV_KEY = "KAMADO_MASTER_KEY"


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"kamado-master-key" + key).hexdigest()[:16]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (created 0600; never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _parse_key(raw: str, source: str) -> bytes:
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidSpec(
            f"The master key in {source} must be 64 hex characters (32 bytes); generate one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`.",
            details=[{"field": source, "message": "not a 32-byte hex key"}],
        )
    return key


class KeyRing:
    """The current master key plus any key a rotation left behind. Not thread-safe while rotating."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.from_env = bool(os.environ.get(ENV_KEY))
        self.keys: dict[str, bytes] = {}
        #: The key of a rotation that did not finish (``master.key.new``), if any.
        self.pending: bytes | None = None
        if self.from_env:
            self.current = _parse_key(os.environ[ENV_KEY], ENV_KEY)
        else:
            path = home / KEY_FILE
            if not path.exists():
                home.mkdir(parents=True, exist_ok=True)
                write_private(path, secrets.token_hex(32))
            self.current = _parse_key(path.read_text(), str(path))
            pending = home / (KEY_FILE + ".new")
            if pending.exists():  # a rotation died half way: rows may be under either key
                self.pending = _parse_key(pending.read_text(), str(pending))
                self.keys[key_id(self.pending)] = self.pending
        self.keys[key_id(self.current)] = self.current

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def encrypt(self, plaintext: str, aad: str) -> tuple[str, str]:
        """(key id, base64(nonce || ciphertext)) under the current key."""
        return encrypt_with(self.current, plaintext, aad)

    def decrypt(self, kid: str, blob: str, aad: str) -> str:
        key = self.keys.get(kid)
        if key is None:
            raise KamadoError(
                f"A secret is encrypted under master key {kid}, which this server does not have; restore the "
                f"key file ({self.home / KEY_FILE}) or {ENV_KEY} that was in use when it was stored."
            )
        raw = base64.b64decode(blob)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode()).decode()
        except InvalidTag:
            raise KamadoError("A stored secret failed its integrity check (tampered with or wrong key).") from None

    def begin_rotation(self) -> bytes:
        """Create the next key next to the current one (so a crash can still read both). After an
        interrupted rotation, its key is reused: some rows may already be under it."""
        if self.from_env:
            raise InvalidSpec(
                f"The master key comes from {ENV_KEY}, which kamado cannot rewrite; rotate it by setting a new key "
                "in a key file: unset the variable, move the old key into KAMADO_HOME/master.key, then run "
                "`kamado secrets rotate-key`.",
                details=[{"field": ENV_KEY, "message": "key from the environment"}],
            )
        if self.pending is not None:
            return self.pending
        new = secrets.token_bytes(32)
        write_private(self.home / (KEY_FILE + ".new"), new.hex())
        self.keys[key_id(new)] = new
        self.pending = new
        return new

    def finish_rotation(self, new: bytes) -> None:
        """Make ``new`` the only key (every row is under it now); the old key file is replaced."""
        os.replace(self.home / (KEY_FILE + ".new"), self.home / KEY_FILE)
        self.current = new
        self.keys = {key_id(new): new}
        self.pending = None


def encrypt_with(key: bytes, plaintext: str, aad: str) -> tuple[str, str]:
    """(key id, base64(12-byte random nonce || AES-GCM ciphertext and tag))."""
    nonce = secrets.token_bytes(12)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode(), aad.encode())
    return key_id(key), base64.b64encode(nonce + ct).decode()
