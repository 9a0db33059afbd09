"""An in-memory runner with a fake clock: runs a definition to the end without sleeping.

Used by the conformance suite, the unit tests and benchmarks; also the reference for what a real runner
does with each action. Tasks go to a ``tasks`` callable ``(resource, payload) -> output``; raise
:class:`TaskFailure` to fail one, or return :data:`PENDING` to leave it running (to test timeouts).
With ``persist=True`` the state goes through ``json.dumps``/``json.loads`` between steps, as it would
through the store.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kamado.pipelines.asl.interpreter import Interpreter, new_execution
from kamado.pipelines.asl.limits import AslLimits

PENDING = object()


class TaskFailure(Exception):
    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@dataclass
class LocalResult:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    clock: float = 0.0

    def states_entered(self) -> list[str]:
        """Names from the parent execution's ``...StateEntered`` events (DISTRIBUTED children excluded)."""
        return [
            e["details"]["name"] for e in self.history if e["type"].endswith("StateEntered") and e["execution"] is None
        ]


def run_local(
    definition: dict[str, Any],
    execution_input: Any,
    *,
    tasks: Callable[[str, Any], Any] | None = None,
    start: float = 1_700_000_000.0,
    seed: int = 0,
    limits: AslLimits | None = None,
    persist: bool = False,
    max_steps: int = 100_000,
    interpreter: Interpreter | None = None,
) -> LocalResult:
    interp = interpreter or Interpreter(definition, limits=limits)
    state = new_execution(execution_input, seed=seed)
    clock = start
    timers: list[tuple[float, int, str]] = []
    cancelled: set[str] = set()
    inbox: list[dict[str, Any]] = [{"type": "ExecutionStarted", "now": clock}]
    result = LocalResult(status="RUNNING")
    seq = 0
    for _ in range(max_steps):
        if not inbox:
            while timers and timers[0][2] in cancelled:
                heapq.heappop(timers)
            if not timers:
                break
            fire_at, _, timer_id = heapq.heappop(timers)
            clock = max(clock, fire_at)
            inbox.append({"type": "TimerFired", "timer_id": timer_id, "now": clock})
        event = inbox.pop(0)
        state, actions = interp.step(state, event)
        if persist:
            state = json.loads(json.dumps(state))
        result.actions.extend(actions)
        for action in actions:
            kind = action["type"]
            if kind == "RecordEvent":
                result.history.append(action["event"])
            elif kind == "StartTimer":
                seq += 1
                heapq.heappush(timers, (action["fire_at"], seq, action["timer_id"]))
            elif kind == "CancelTimer":
                cancelled.add(action["timer_id"])
            elif kind == "InvokeTask":
                inbox.append(_invoke(tasks, action, clock))
        inbox = [e for e in inbox if e is not None]
        if state["status"] not in ("RUNNING", "PENDING"):
            break
    result.status = state["status"]
    result.output, result.error, result.cause = state["output"], state["error"], state["cause"]
    result.clock = clock
    return result


def _invoke(tasks: Callable[[str, Any], Any] | None, action: dict[str, Any], clock: float) -> Any:
    if tasks is None:
        return {
            "type": "TaskFailed",
            "token": action["token"],
            "now": clock,
            "error": "States.TaskFailed",
            "cause": f"No task handler for resource {action['resource']!r}",
        }
    try:
        output = tasks(action["resource"], action["payload"])
    except TaskFailure as exc:
        return {"type": "TaskFailed", "token": action["token"], "now": clock, "error": exc.error, "cause": exc.cause}
    if output is PENDING:
        return None
    return {"type": "TaskSucceeded", "token": action["token"], "now": clock, "output": output}
