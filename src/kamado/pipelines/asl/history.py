"""History events, the payload-size cap and the deterministic RNG, shared by every state handler."""

from __future__ import annotations

import random
from typing import Any

from kamado.pipelines.asl.errors import DATA_LIMIT_EXCEEDED, RUNTIME, AslError
from kamado.pipelines.asl.payload import dumps

State = dict[str, Any]


def record_event(run: Any, frame: dict[str, Any] | None, kind: str, details: dict[str, Any] | None = None) -> int:
    """Append a history event action; returns its id. Shared by the state handlers."""
    state = run.state
    owner = frame["history"] if frame is not None else ""
    last = state["histories"].get(owner, 0)
    event_id = last + 1
    state["histories"][owner] = event_id
    if owner == "" and event_id > run.interp.limits.max_history_events:
        raise AslError(RUNTIME, f"The execution history reached {run.interp.limits.max_history_events} events")
    run.actions.append(
        {
            "type": "RecordEvent",
            "event": {
                "id": event_id,
                "previousEventId": last,
                "timestamp": state["now"],
                "type": kind,
                "details": details or {},
                "execution": owner or None,
            },
        }
    )
    return event_id


def next_rng(state: State) -> random.Random:
    """A fresh RNG determined by the seed and how many were drawn before (replays draw the same)."""
    state["rng_calls"] += 1
    return random.Random(f"{state['seed']}:{state['rng_calls']}")


class LazyRandom:
    """A ``random.Random`` made on first use: most evaluations never draw, and seeding costs a hash."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._rng: random.Random | None = None

    def __getattr__(self, name: str) -> Any:
        if self._rng is None:
            self._rng = next_rng(self._state)
        return getattr(self._rng, name)


def check_size(run: Any, value: Any, what: str) -> None:
    limit = run.interp.limits.max_payload_bytes
    size = len(dumps(value).encode())
    if size > limit:
        raise AslError(
            DATA_LIMIT_EXCEEDED,
            f"The {what} has a size of {size} bytes, which exceeds the maximum of {limit} bytes.",
        )
