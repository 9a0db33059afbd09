"""Resource names and ARNs as SageMaker spells them."""

from __future__ import annotations

import re
import secrets
import time

from kamado.core.errors import InvalidSpec

#: SageMaker's pattern for training/processing/transform jobs, endpoints and endpoint configs.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
NAME_HINT = "use 1-63 letters, digits and hyphens, starting and ending with a letter or digit"

DEFAULT_REGION = "local"
DEFAULT_ACCOUNT = "000000000000"


def validate_name(value: str, *, field: str = "Name") -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidSpec(
            f"{field} {shown} is not a valid name: {NAME_HINT}.",
            details=[{"field": field, "message": NAME_HINT}],
        )
    return value


def arn(resource_type: str, name: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<type>/<name>``; AWS lower-cases the name in ARNs."""
    return f"arn:aws:sagemaker:{region}:{account}:{resource_type}/{name.lower()}"


def unique_name(base: str) -> str:
    """A job name in the SDK's style: ``<base>-YYYY-MM-DD-HH-MM-SS-mmm`` plus a short random suffix."""
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    millis = int((time.time() % 1) * 1000)
    suffix = secrets.token_hex(2)
    base = re.sub(r"[^a-zA-Z0-9-]", "-", base).strip("-") or "job"
    tail = f"-{stamp}-{millis:03d}-{suffix}"
    return base[: 63 - len(tail)].rstrip("-") + tail
