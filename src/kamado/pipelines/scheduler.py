"""The loop that fires schedules and triggers (see :mod:`kamado.pipelines.schedules` for the guarantees).

Each pass: for every ENABLED schedule, find the fire times due since its last recorded fire; start one
execution for the latest (RUN_ONCE) or, under SKIP, only when that fire is on time; then record it. For
every ENABLED trigger whose poll interval has passed, list its prefix and start one execution per object
not seen before, then record the objects as seen. Starting comes before recording, and both are keyed by
deterministic execution names, so a crash in between repeats nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kamado.core.errors import ConcurrentModification, KamadoError, NotFound, ResourceInUse
from kamado.core.loop import ReconcileLoop
from kamado.core.projects import project_scope
from kamado.pipelines.schedule_expr import parse_schedule
from kamado.pipelines.schedules import (
    SCHEDULE_KIND,
    TRIGGER_KIND,
    ScheduleService,
    dumps,
    fire_name,
    object_created_event,
    object_fire_name,
    scheduled_event,
)
from kamado.pipelines.spec import StartExecutionRequest
from kamado.store.records import ResourceRecord

log = logging.getLogger("kamado.pipelines")
#: Under SKIP, a fire this late still counts as on time (a pass, a slow store); later ones are skipped.
ON_TIME_S = 60.0
#: At most this many missed fires are walked to find the latest (a rate(1 minute) off for two months).
MAX_MISSED_WALK = 100_000


class Scheduler(ReconcileLoop):
    name = "scheduler"

    def __init__(
        self,
        service: ScheduleService,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(interval_s)
        self.service = service
        self.store = service.store
        self.clock = clock
        self.on_start = on_start

    def idle(self) -> bool:
        return True  # schedules wait for the clock: never "work in progress"

    def tick(self) -> None:
        for rec in self.store.list_in_states(SCHEDULE_KIND, ["ENABLED"]):
            try:
                with project_scope(rec.project):  # executions start in the schedule's project
                    self.fire_schedule(rec)
            except (ConcurrentModification, NotFound):
                continue
            except Exception:
                log.exception("schedule %s: pass failed; retrying", rec.name)
        for rec in self.store.list_in_states(TRIGGER_KIND, ["ENABLED"]):
            try:
                with project_scope(rec.project):  # executions start in the trigger's project
                    self.poll_trigger(rec)
            except (ConcurrentModification, NotFound):
                continue
            except Exception:
                log.exception("trigger %s: pass failed; retrying", rec.name)

    # -- schedules ----------------------------------------------------------------------------------------
    def due(self, rec: ResourceRecord, now: float) -> tuple[datetime | None, int]:
        """The latest fire time due by ``now`` that has not fired yet, and how many were due in all."""
        spec, status = rec.spec, rec.status
        sched = parse_schedule(spec["ScheduleExpression"], spec.get("ScheduleExpressionTimezone", "UTC"))
        anchor = datetime.fromtimestamp(status["Anchor"], UTC)
        last = status.get("LastFireTime")
        cursor = datetime.fromtimestamp(last if last is not None else status["Anchor"], UTC)
        moment = datetime.fromtimestamp(now, UTC)
        latest: datetime | None = None
        count = 0
        for _ in range(MAX_MISSED_WALK):
            nxt = sched.next_after(cursor, anchor=anchor)
            if nxt is None or nxt > moment:
                break
            latest, cursor, count = nxt, nxt, count + 1
        return latest, count

    def fire_schedule(self, rec: ResourceRecord) -> str | None:
        """Start the due fire of one schedule; returns the execution name, or None when nothing was due."""
        now = self.clock()
        when, count = self.due(rec, now)
        if when is None:
            return None
        late = now - when.timestamp()
        skip = rec.spec.get("MissedRunPolicy", "RUN_ONCE") == "SKIP" and late > ON_TIME_S
        name = fire_name(rec.name, when)
        patch: dict[str, Any] = {"LastFireTime": when.timestamp()}
        if skip:
            log.info("schedule %s: skipping %d missed fire(s) up to %s (MissedRunPolicy SKIP)", rec.name, count, when)
            patch["Skipped"] = int(rec.status.get("Skipped", 0)) + count
        else:
            target = rec.spec["Target"]
            text = target.get("Input")
            started = self._start(target["StateMachine"], name, text or dumps(scheduled_event(rec, when)))
            if count > 1:
                log.info("schedule %s: %d fires were missed; ran the latest once (%s)", rec.name, count, when)
            patch.update({"Fires": int(rec.status.get("Fires", 0)) + 1, "LastExecution": name, "LastError": started})
        self.store.update_status(SCHEDULE_KIND, rec.name, patch, expected_version=rec.version)
        return None if skip else name

    def _start(self, state_machine: str, name: str, text: str) -> str | None:
        """Start one execution; None on success (or when it already started), else why it could not."""
        try:
            self.service.pipelines.start_execution(state_machine, StartExecutionRequest(name=name, input=text))
        except ResourceInUse:
            return None  # started before a crash: the name is the idempotency key
        except KamadoError as exc:
            log.warning("could not start %s of %s: %s", name, state_machine, exc.message)
            return exc.message
        if self.on_start is not None:
            self.on_start()
        return None

    # -- triggers -----------------------------------------------------------------------------------------
    def poll_trigger(self, rec: ResourceRecord) -> list[str]:
        """Start an execution for each new object under the trigger's prefix; returns their names."""
        now = self.clock()
        last = rec.status.get("LastPoll")
        if last is not None and now - last < float(rec.spec.get("PollIntervalSeconds", 5.0)):
            return []
        artifacts = self.service.artifacts
        prefix = rec.spec["Key"]
        seen: dict[str, int] = dict(rec.status.get("Seen", {}))
        started: list[str] = []
        errors: list[str] = []
        for key in sorted(artifacts.list(prefix + "/" if prefix else "")):
            size = artifacts.size(key)
            if seen.get(key) == size:
                continue
            name = object_fire_name(rec.name, key, size)
            event = object_created_event(rec, artifacts.uri(key), key, size)
            why = self._start(rec.spec["Target"]["StateMachine"], name, dumps(event))
            if why is not None:
                errors.append(why)
                continue  # not recorded as seen: retried at the next poll
            seen[key] = size
            started.append(name)
        patch: dict[str, Any] = {"LastPoll": now}
        if started:
            patch.update(
                {"Seen": seen, "Fires": int(rec.status.get("Fires", 0)) + len(started), "LastExecution": started[-1]}
            )
        if errors:
            patch["LastError"] = errors[-1]
        self.store.update_status(TRIGGER_KIND, rec.name, patch, expected_version=rec.version)
        return started
