"""Runtime caps against abuse, mirroring AWS's quotas. Override per execution with :class:`AslLimits`."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_HISTORY_EVENTS = 25_000
MAX_ARRAY_RANGE_ITEMS = 1000
MAX_MAP_CONCURRENCY = 40
MAX_INTRINSIC_STRING_CHARS = 10_000
MAX_INTRINSIC_NESTING = 10
MAX_STATE_NAME_CHARS = 80
#: JSON levels a definition may nest (a Parallel or Map level is about five); AWS states no number.
MAX_DEFINITION_NESTING = 200


@dataclass(frozen=True, kw_only=True)
class AslLimits:
    """Caps one execution runs under; exceeding one fails the execution with a ``States.*`` error.

    ``max_payload_bytes``: UTF-8 size of any state input/output or task payload
    (``States.DataLimitExceeded``). ``max_history_events``: history length (``States.Runtime``).
    ``max_array_range_items``: ``States.ArrayRange``/``$range`` size. ``max_map_concurrency``: how many
    Map iterations (inline or distributed) run at once, whatever ``MaxConcurrency`` says.
    """

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_history_events: int = MAX_HISTORY_EVENTS
    max_array_range_items: int = MAX_ARRAY_RANGE_ITEMS
    max_map_concurrency: int = MAX_MAP_CONCURRENCY
