"""Artifact keys: the one gate every key passes before it reaches a filesystem or object store (A1).

A key is a relative, '/'-separated path such as ``jobs/tj-42/output/model.tar.gz``. Validation is
deliberately an allowlist rather than a list of known-bad patterns, because the MLflow CVE chain shows
each blocklist being bypassed by the next encoding trick (``..%2f``, ``%252e``, ``\\``, U+2024, ...).

The rules, in the order they are checked (the first failing rule is the one reported):

* a non-empty ``str`` of at most 1024 UTF-8 bytes (S3's limit), each segment at most 255 bytes (NAME_MAX,
  so a long segment is a 400 here rather than an ``OSError`` later);
* no ``%``: keys are literal paths, never URL-encoded, so ``uri()``/``key_from_uri()`` are exact inverses.
  The key is still decoded repeatedly until stable so that encoded traversal (``..%2f``, double-encoded
  ``%252e%252e%252f``) gets a message that says what it is;
* no control, format or invisible characters (NUL, CR/LF, ANSI escapes, right-to-left override);
* no ``\\`` (a separator on Windows), no URI scheme (``file://``, ``s3:``), no ``#`` or ``?``;
* not absolute, no trailing ``/``, no empty segment (``a//b``), no ``.``/``..`` segment, and no segment made
  only of dots and spaces (Windows strips trailing dots, so ``...`` can act as ``.`` there);
* every character is either ASCII from ``A-Z a-z 0-9`` and `` ._-=+@,()~!`` (space included) or a non-ASCII
  letter, mark or digit whose NFKC form is purely alphanumeric. That admits ``données/été.csv`` and rejects
  every look-alike dot or slash (U+2024, U+FF0E, U+3002, U+2215, ...), because those are punctuation,
  and the few letters whose compatibility form contains a dot (U+2488 '⒈' → '1.').

The returned key is NFC-normalised so that the same file name written by macOS (NFD) and Linux (NFC) maps
to the same object.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from kamado.core.errors import InvalidSpec

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

#: The ASCII characters a key may contain, besides '/' as the separator.
ASCII_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ._-=+@,()~!")

KEY_HINT = (
    "use a relative path of letters, digits and ' ._-=+@,()~!' separated by single '/', "
    "e.g. 'jobs/tj-42/output/model.tar.gz'"
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_MAX_DECODE_ROUNDS = 8
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _show(value: str) -> str:
    """The value as it may appear in a message: ASCII-escaped (A18) and truncated (A16)."""
    shown = ascii(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _reject(field: str, value: str, reason: str) -> InvalidSpec:
    return InvalidSpec(
        f"{field} {_show(value)} is not a valid artifact key: {reason}; {KEY_HINT}.",
        details=[{"field": field, "message": reason}],
    )


def _fully_decoded(value: str) -> str:
    """Percent-decode until nothing changes, so double- and triple-encoding cannot hide a '..'."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value


def _looks_like_traversal(value: str) -> bool:
    segments = re.split(r"[/\\]", value)
    return (
        value.startswith(("/", "\\"))
        or any(seg in (".", "..") for seg in segments)
        or any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value)
    )


def _char_allowed(ch: str) -> bool:
    if ch in ASCII_KEY_CHARS:
        return True
    if ch.isascii() or unicodedata.category(ch)[0] not in "LMN":
        return False
    compat = unicodedata.normalize("NFKC", ch)
    return all(c.isalnum() or unicodedata.category(c)[0] == "M" for c in compat)


def validate_key(key: str, *, field: str = "key") -> str:
    """Return ``key`` NFC-normalised, or raise :class:`InvalidSpec` (400) naming ``field`` and the fix.

    Pure string checks only: nothing here touches a filesystem, so a hostile key is refused before any
    I/O happens. Stores still check the resolved path afterwards (defence in depth).
    """
    if not isinstance(key, str):
        raise InvalidSpec(
            f"{field} must be a string, got {type(key).__name__}; {KEY_HINT}.",
            details=[{"field": field, "message": "not a string"}],
        )
    if not key:
        raise _reject(field, key, "it is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise _reject(field, key, f"it is longer than {MAX_KEY_BYTES} bytes")
    if "%" in key:
        decoded = _fully_decoded(key)
        if decoded != key and _looks_like_traversal(decoded):
            raise _reject(
                field,
                key,
                f"it percent-decodes to {_show(decoded)}, which hides a traversal or control character",
            )
        raise _reject(field, key, "'%' is not allowed (keys are literal paths, not URL-encoded)")
    for ch in key:
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES:
            raise _reject(field, key, f"control or invisible character U+{ord(ch):04X} is not allowed")
    if "\\" in key:
        raise _reject(field, key, "'\\' is not allowed; use '/' as the separator")
    if _SCHEME.match(key):
        raise _reject(field, key, "it looks like a URI; pass a key relative to the store root")
    if "#" in key or "?" in key:
        raise _reject(field, key, "'#' and '?' are not allowed")
    if key.startswith("/"):
        raise _reject(field, key, "it is absolute; keys are relative to the store root")
    if key.endswith("/"):
        raise _reject(field, key, "it ends with '/'; name an object, not a directory")
    key = unicodedata.normalize("NFC", key)
    for segment in key.split("/"):
        if not segment:
            raise _reject(field, key, "it has an empty segment ('//')")
        if segment in (".", ".."):
            raise _reject(field, key, f"segment {segment!r} is not allowed (no path traversal)")
        if not segment.strip(". "):
            raise _reject(field, key, "a segment made only of dots and spaces is not allowed")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _reject(field, key, f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
        for ch in segment:
            if not _char_allowed(ch):
                compat = unicodedata.normalize("NFKC", ch)
                alike = f", a look-alike of {compat!r}" if compat != ch and compat.isascii() else ""
                raise _reject(field, key, f"character U+{ord(ch):04X} ({_show(ch)}{alike}) is not allowed")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise _reject(field, key, f"it is longer than {MAX_KEY_BYTES} bytes")
    return key


def validate_prefix(prefix: str, *, field: str = "prefix") -> str:
    """Validate a directory-like listing prefix: '' means the whole store; one trailing '/' is allowed.

    Returned without the trailing '/', so ``list("a/")`` and ``list("a")`` mean the same thing.
    """
    if prefix == "":
        return ""
    if isinstance(prefix, str) and prefix.endswith("/") and not prefix.endswith("//"):
        prefix = prefix[:-1]
    return validate_key(prefix, field=field)
