"""The ASL interpreter: a pure function ``(definition, state, event) -> (state, actions)``.

Contract for runners (the durable runner stores ``state`` and the actions' history events; see
``docs/pipelines.md``):

**State.** :func:`new_execution` returns a plain JSON value (dicts, lists, strings, numbers): it holds the
execution's status, a seed, the history counter, and one *frame* per running (sub)machine - the top level,
each Parallel branch and each Map iteration - with its current state, input, variables, retry counters and
what it waits for. There is no hidden Python state: persist it after every step (``json.dumps``), load it
after a crash, and call :meth:`Interpreter.step` again. ``step`` never mutates its ``state`` argument; the
new state shares unchanged JSON values with the old one (and with the definition), so treat states as
immutable values.

**Events** (dicts; every one carries ``now``, epoch seconds from the runner's clock - the interpreter never
reads a clock):

- ``{"type": "ExecutionStarted", "now"}`` - the first event; starts the StartAt state.
- ``{"type": "TaskStarted", "token", "now"}`` - optional: the work began (recorded as ``TaskStarted``; if it
  never comes, ``TaskStarted`` is recorded with the outcome, so history matches AWS's either way).
- ``{"type": "TaskSucceeded", "token", "output", "now"}`` - an ``InvokeTask`` finished.
- ``{"type": "TaskFailed", "token", "error", "cause", "now"}`` - it failed (``error`` like ``ValueError``).
- ``{"type": "TaskHeartbeat", "token", "now"}`` - the worker is alive (resets ``HeartbeatSeconds``).
- ``{"type": "TimerFired", "timer_id", "now"}`` - a ``StartTimer`` came due (Wait, Retry back-off, Task
  ``TimeoutSeconds``/``HeartbeatSeconds``).
- ``{"type": "ExecutionAborted", "now", "cause"?}`` - stop everything (``StopExecution``).

Events whose token/timer is unknown (already handled, cancelled) are ignored, so at-least-once delivery
is safe.

**Actions** (dicts, in order):

- ``{"type": "RecordEvent", "event": {"id", "previousEventId", "timestamp", "type", "details", "execution"}}``
  - append to history; ``type`` uses Step Functions' ``HistoryEventType`` names (``PassStateEntered``,
  ``TaskScheduled``, ``MapIterationStarted``, ...). ``execution`` is ``None`` for the execution itself, or
  the child id of a DISTRIBUTED Map iteration (which AWS runs as a child execution with its own history).
- ``{"type": "InvokeTask", "token", "resource", "payload", "timeout_seconds", "heartbeat_seconds",
  "state", "attempt"}`` - run the Task's resource; answer with TaskSucceeded/TaskFailed for ``token``.
  Re-sending the same token after a crash must be idempotent on the runner's side.
- ``{"type": "StartTimer", "timer_id", "fire_at"}`` / ``{"type": "CancelTimer", "timer_id"}``.
- ``{"type": "CancelTask", "token"}`` - the task is no longer wanted (timeout, sibling failure, abort).
- ``{"type": "ExecutionSucceeded", "output"}`` / ``{"type": "ExecutionFailed", "error", "cause"}`` /
  ``{"type": "ExecutionAborted"}`` / ``{"type": "ExecutionTimedOut", "error", "cause"}`` (the definition's
  top-level ``TimeoutSeconds``) - the execution is over; ``state["status"]`` says so too. Every task and
  timer still open is cancelled (CancelTask/CancelTimer) just before.

Map iterations and Parallel branches (inline and DISTRIBUTED) run as child frames inside the same state,
scheduled deterministically (lowest frame number first), so a runner sees only tasks and timers.

**Guarantees.** Deterministic: the same definition, state and event give the same new state and actions.
Randomness (``States.UUID``, ``States.MathRandom``, ``$uuid()``, ``$random()``, retry jitter) comes from
``state["seed"]`` and a counter in the state. Caps from :class:`~kamado.pipelines.asl.limits.AslLimits`
are enforced (payload size, history length, ArrayRange size, Map concurrency).
"""

from __future__ import annotations

from typing import Any

from kamado.pipelines.asl import states as st
from kamado.pipelines.asl.limits import AslLimits

State = dict[str, Any]
Event = dict[str, Any]
Action = dict[str, Any]


def fork(state: State) -> State:
    """A copy of ``state`` that a step may change without touching the original.

    Only the containers a step mutates are copied (the top level, history counters, waits, frames and each
    frame's retry counters and fan-out bookkeeping); JSON values such as inputs and results are shared,
    since the interpreter never changes a value in place. So a step costs O(frames), not O(data): a Map
    over thousands of items does not copy them on every event.
    """
    new = dict(state)
    new["histories"] = dict(state["histories"])
    new["waits"] = dict(state["waits"])
    frames = {}
    for fid, frame in state["frames"].items():
        copy = dict(frame)
        copy["retries"] = dict(frame["retries"])
        pending = frame.get("pending")
        if pending is not None:
            pending = dict(pending)
            for key in ("results", "running"):
                if key in pending:
                    pending[key] = list(pending[key])
            copy["pending"] = pending
        frames[fid] = copy
    new["frames"] = frames
    return new


def new_execution(
    execution_input: Any,
    *,
    execution_id: str = "arn:kamado:states:local:000000000000:execution:machine:run",
    execution_name: str = "run",
    state_machine_id: str = "arn:kamado:states:local:000000000000:stateMachine:machine",
    state_machine_name: str = "machine",
    role_arn: str = "arn:kamado:iam::local:role/kamado",
    start_time: str = "1970-01-01T00:00:00.000Z",
    seed: int = 0,
) -> State:
    """The initial interpreter state of one execution (feed it an ``ExecutionStarted`` event next)."""
    context = {
        "Execution": {
            "Id": execution_id,
            "Input": execution_input,
            "Name": execution_name,
            "RoleArn": role_arn,
            "StartTime": start_time,
            "RedriveCount": 0,
        },
        "StateMachine": {"Id": state_machine_id, "Name": state_machine_name},
    }
    return {
        "schema": 1,
        "status": "PENDING",
        "seed": seed,
        "rng_calls": 0,
        "tokens": 0,
        "now": 0.0,
        "histories": {"": 0},
        "context": context,
        "frames": {},
        "waits": {},
        "output": None,
        "error": None,
        "cause": None,
    }


class Interpreter:
    """Runs one state machine definition; holds only caches derived from the definition (safe to share)."""

    def __init__(self, definition: dict[str, Any], *, limits: AslLimits | None = None) -> None:
        self.definition = definition
        self.limits = limits or AslLimits()
        self._machines: dict[str, dict[str, Any]] = {}
        self._languages: dict[str, str] = {}
        self._index(definition, "", definition.get("QueryLanguage", "JSONPath"))

    def _index(self, machine: dict[str, Any], key: str, language: str) -> None:
        self._machines[key] = machine
        self._languages[key] = machine.get("QueryLanguage", language)
        for name, state in (machine.get("States") or {}).items():
            if not isinstance(state, dict):
                continue
            lang = state.get("QueryLanguage", self._languages[key])
            if state.get("Type") == "Parallel":
                for i, branch in enumerate(state.get("Branches") or []):
                    self._index(branch, f"{key}/{name}/{i}", lang)
            elif state.get("Type") == "Map":
                proc = state.get("ItemProcessor") or state.get("Iterator")
                if isinstance(proc, dict):
                    self._index(proc, f"{key}/{name}/p", lang)

    def machine(self, key: str) -> dict[str, Any]:
        return self._machines[key]

    def language(self, key: str, state: dict[str, Any]) -> str:
        return str(state.get("QueryLanguage", self._languages[key]))

    def step(self, state: State, event: Event) -> tuple[State, list[Action]]:
        """Apply ``event`` to ``state``; returns the new state and the actions to carry out, in order."""
        run = st.Step(self, fork(state))
        run.handle(event)
        return run.state, run.actions
