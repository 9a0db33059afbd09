"""Value-based redaction: every occurrence of a known secret value becomes ``***``.

Matching is on values, not on names, so a secret printed under any label, inside an exception or
split into a JSON string is still caught (the Airflow masker's lesson). Very short values are not
redacted: masking every "a" in a log would destroy it while protecting nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

MASK = "***"
MIN_REDACT_LEN = 4


def redactor(values: Iterable[str]) -> Callable[[str], str]:
    """A function that masks each of ``values`` (longest first, so overlapping values mask fully)."""
    secrets = sorted({v for v in values if len(v) >= MIN_REDACT_LEN}, key=len, reverse=True)
    if not secrets:
        return lambda text: text

    def redact(text: str) -> str:
        for s in secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    return redact
