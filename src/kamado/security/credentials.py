"""Refuse credentials passed where they would be stored in plain text (hyperparameters, environment).

SageMaker's documentation forbids secrets in hyperparameters; kamado enforces it at create, with a hint
to store the value as a secret and reference it instead. The patterns are deliberately few and precise
(AWS access keys, PEM private keys, long random strings under a credential-like name) so ordinary
hyperparameters never trip them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

from kamado.core.errors import InvalidSpec

_AWS_KEY = re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KAMADO_TOKEN = re.compile(r"kmd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|api[_-]?key|access[_-]?key|credential)", re.IGNORECASE)
#: Values under a credential-like name that are at least this long and this random are refused.
MIN_TOKEN_LEN = 16
MIN_ENTROPY_BITS_PER_CHAR = 3.0


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_like_credential(key: str, value: str) -> str | None:
    """Why ``value`` (under ``key``) looks like a credential, or None."""
    if _AWS_KEY.search(value):
        return "contains an AWS access key id"
    if _PRIVATE_KEY.search(value):
        return "contains a PEM private key"
    if _KAMADO_TOKEN.search(value):
        return "contains a kamado API token"
    if (
        _SECRET_NAME.search(key)
        and len(value) >= MIN_TOKEN_LEN
        and " " not in value
        and _entropy(value) >= MIN_ENTROPY_BITS_PER_CHAR
    ):
        return f"is a long random value under a credential-like name ({key!r})"
    return None


def check_no_credentials(values: Mapping[str, str], *, field: str, allow: frozenset[str] = frozenset()) -> None:
    """Raise InvalidSpec naming every entry of ``values`` that looks like a credential."""
    details = []
    for key, value in values.items():
        if key in allow:
            continue
        why = looks_like_credential(key, value)
        if why:
            details.append({"field": f"{field}.{key}", "message": why})
    if details:
        names = ", ".join(d["field"] for d in details)
        raise InvalidSpec(
            f"{names} look(s) like a credential; values here are stored and shown in plain text. Store it with "
            "`kamado secrets create NAME` and reference it from Environment as "
            '"{{resolve:secretsmanager:NAME}}"; the job then receives the value at run time only.',
            details=details,
        )
