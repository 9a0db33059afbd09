"""Query parameter types shared by several routes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator

#: Epoch seconds accepted by :data:`Timestamp` (up to the year 2286; pydantic reads larger numbers as ms).
MAX_EPOCH_S = 1e10


def _epoch_seconds(value: Any) -> Any:
    """A number in a query string (``1714564800``, ``1.7e9``) as a float, so pydantic reads it as epoch seconds
    (negative or huge ones are refused: pydantic would read those as milliseconds or before 1970); anything
    else is left for pydantic's ISO 8601 parsing (and its error naming the parameter)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not (math.isfinite(number) and 0 <= number < MAX_EPOCH_S):
            raise ValueError(f"epoch seconds must be between 0 and {MAX_EPOCH_S:.0f}; or send an ISO 8601 date-time")
        return number
    return value


#: A list filter's time bound: ISO 8601 (``2024-05-01T12:00:00Z``) or epoch seconds (``1714564800``, what
#: SageMaker's JSON wire format and boto3 send). The schema says both, so that a client (or a fuzzer) reading
#: the document knows a number is a valid value and not an error to be refused.
Timestamp = Annotated[
    datetime | None,
    BeforeValidator(_epoch_seconds),
    Query(
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_EPOCH_S},
                {"type": "null"},
            ],
        },
        description="ISO 8601 date-time or epoch seconds.",
    ),
]
