"""The durable execution runner: feeds the pure interpreter its events and applies the actions it returns.

One pass over every RUNNING execution gathers what happened since the last pass (the start, finished
Tasks, due timers, a stop request), steps the interpreter through those events, and records the new
interpreter state, the history events and the next state in ONE store transaction guarded by the
execution's version. Only after that commit does it start new Task work. So:

- a transition is recorded exactly once: a crash before the commit loses nothing (the same events are
  gathered again after the restart), a crash after it finds the transition done;
- Task work is at-least-once: the Tasks recorded as running are started again after a restart (SageMaker
  creates adopt the job the first start made; see :mod:`kamado.pipelines.integrations`);
- a Task outcome is forgotten only after the transition that consumed it committed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kamado.core.clock import iso_time
from kamado.core.errors import ConcurrentModification, NotFound
from kamado.core.loop import ReconcileLoop
from kamado.core.projects import project_scope
from kamado.core.roles import role_principal
from kamado.pipelines.integrations import Integrations
from kamado.pipelines.service import EXECUTION_KIND, TERMINAL, PipelineService
from kamado.store.records import ResourceRecord

if TYPE_CHECKING:
    from kamado.pipelines.asl import Interpreter

log = logging.getLogger("kamado.pipelines")
#: How many interpreters (one per running definition) stay cached.
_CACHE = 256


def _seed(arn: str) -> int:
    """A stable per-execution seed, so a replay after a crash draws the same random numbers."""
    return int.from_bytes(hashlib.sha256(arn.encode()).digest()[:6], "big")


def _work_id(rec: ResourceRecord, token: str) -> str:
    """Task tokens count per execution; the work they start is tracked under the execution's name too."""
    return f"{rec.name}/{token}"


class ExecutionRunner(ReconcileLoop):
    name = "pipelines"

    def __init__(
        self,
        service: PipelineService,
        integrations: Integrations,
        *,
        interval_s: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s)
        self.service = service
        self.store = service.store
        self.integrations = integrations
        self.clock = clock
        self._interpreters: dict[str, Interpreter] = {}

    def idle(self) -> bool:
        return not self.store.list_in_states(EXECUTION_KIND, ["RUNNING"])

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.integrations.close()

    def tick(self) -> None:
        for rec in self.store.list_in_states(EXECUTION_KIND, ["RUNNING"]):
            try:
                with project_scope(rec.project):  # the jobs its Task states start live in its project
                    self.advance(rec)
            except ConcurrentModification:
                continue  # someone (a stop request) changed it: the next pass re-reads
            except NotFound:
                continue  # deleted under us
            except Exception:
                log.exception("execution %s: pass failed; retrying", rec.name)

    # -- one execution ------------------------------------------------------------------------------------
    def interpreter(self, rec: ResourceRecord) -> Interpreter:
        from kamado.pipelines.asl import Interpreter

        key = f"{rec.name}@{rec.created_at}"
        interp = self._interpreters.get(key)
        if interp is None:
            if len(self._interpreters) >= _CACHE:
                self._interpreters.pop(next(iter(self._interpreters)))
            interp = self._interpreters[key] = Interpreter(rec.spec["definition"])
        return interp

    def _events(self, rec: ResourceRecord, now: float) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[str]]:
        """The interpreter state to step from, the events that happened, and the Task tokens they consume."""
        from kamado.pipelines.asl import new_execution

        machine = rec.status.get("Machine")
        if machine is None:
            spec = rec.spec
            machine = new_execution(
                spec["input"],
                execution_id=rec.arn,
                execution_name=spec["name"],
                state_machine_id=self.service.state_machine_arn(spec["stateMachine"]),
                state_machine_name=spec["stateMachine"],
                start_time=iso_time(rec.created_at) or "",
                seed=_seed(rec.arn),
                **({"role_arn": spec["roleArn"]} if spec.get("roleArn") else {}),
            )
            return machine, [{"type": "ExecutionStarted", "now": now}], []
        stop = rec.status.get("StopRequested")
        if stop:
            return (
                machine,
                [{"type": "ExecutionAborted", "now": now, **({"cause": stop["cause"]} if stop.get("cause") else {})}],
                [],
            )
        events: list[dict[str, Any]] = []
        consumed: list[str] = []
        role = _role(rec)  # the state machine's when the execution started
        for token, task in sorted(rec.status.get("Tasks", {}).items()):
            # A no-op while the work runs; after a server restart it starts the work again (at least once).
            self.integrations.start(_work_id(rec, token), task["resource"], task["payload"], role=role, via=rec.arn)
            outcome = self.integrations.poll(_work_id(rec, token))
            if outcome is None:
                continue
            consumed.append(token)
            if outcome.ok:
                events.append({"type": "TaskSucceeded", "token": token, "output": outcome.output, "now": now})
            else:
                events.append(
                    {"type": "TaskFailed", "token": token, "error": outcome.error, "cause": outcome.cause, "now": now}
                )
        for timer_id, fire_at in sorted(rec.status.get("Timers", {}).items(), key=lambda kv: (kv[1], kv[0])):
            if fire_at <= now:
                events.append({"type": "TimerFired", "timer_id": timer_id, "now": now})
        return machine, events, consumed

    def advance(self, rec: ResourceRecord) -> ResourceRecord | None:
        """One step of one execution; returns the updated record, or None when nothing happened."""
        now = self.clock()
        machine, events, consumed = self._events(rec, now)
        if not events or machine is None:
            return None
        interp = self.interpreter(rec)
        tasks: dict[str, Any] = dict(rec.status.get("Tasks", {}))
        timers: dict[str, float] = dict(rec.status.get("Timers", {}))
        history: list[tuple[str, dict[str, Any]]] = []
        cancelled: list[str] = []
        patch: dict[str, Any] = {}
        to_state: str | None = None
        for event in events:
            machine, actions = interp.step(machine, event)
            for action in actions:
                kind = action["type"]
                if kind == "RecordEvent":
                    ev = action["event"]
                    if ev.get("execution") is None:  # child executions of a distributed Map keep no history here
                        history.append((ev["type"], ev.get("details") or {}))
                elif kind == "InvokeTask":
                    tasks[action["token"]] = {"resource": action["resource"], "payload": action.get("payload")}
                elif kind == "CancelTask":
                    tasks.pop(action["token"], None)
                    cancelled.append(action["token"])
                elif kind == "StartTimer":
                    timers[action["timer_id"]] = float(action["fire_at"])
                elif kind == "CancelTimer":
                    timers.pop(action["timer_id"], None)
            for token in consumed:
                tasks.pop(token, None)
            if machine.get("status") in TERMINAL:
                # The interpreter's state says how it ended (as its in-memory driver reads it).
                to_state = str(machine["status"])
                break
        if to_state is not None:
            if to_state == "SUCCEEDED":
                patch["Output"] = machine.get("output")
            elif to_state == "ABORTED":  # StopExecution's own error and cause, as Step Functions reports them
                stop = rec.status.get("StopRequested") or {}
                patch["Error"], patch["Cause"] = stop.get("error"), stop.get("cause")
            else:
                patch["Error"], patch["Cause"] = machine.get("error"), machine.get("cause")
            cancelled.extend(tasks)
            tasks, timers = {}, {}
            patch["StopTime"] = now
        patch.update({"Machine": machine, "Tasks": tasks, "Timers": timers})
        new, _ = self.store.append_history(
            EXECUTION_KIND, rec.name, history, expected_version=rec.version, to_state=to_state, status_patch=patch
        )
        # Only now, with the transition on disk, act on it.
        for token in consumed:
            self.integrations.forget(_work_id(rec, token))
        for token in cancelled:
            self.integrations.cancel(_work_id(rec, token))
        role = _role(rec)
        for token, task in tasks.items():
            self.integrations.start(_work_id(rec, token), task["resource"], task["payload"], role=role, via=rec.arn)
        return new


def _role(rec: ResourceRecord) -> str | None:
    """The service account an execution's Tasks act as: its state machine's roleArn when that names a
    service account (recorded as ``roleEnforced`` when the state machine was created or updated)."""
    return role_principal(rec.spec.get("roleArn")) if rec.spec.get("roleEnforced") else None
