"""Schedules and triggers: start pipeline executions on a clock or when an object lands.

A **schedule** (EventBridge Scheduler's shape) fires a state machine on ``rate(...)``, ``cron(...)`` or
``at(...)`` in a time zone. After downtime, the fires it missed run once (``MissedRunPolicy: RUN_ONCE``,
the default) or are skipped (``SKIP``), never N times: each fire's execution is named after the schedule
and the fire time, and execution names are idempotency keys, so a crash between starting the execution
and recording the fire cannot start it twice.

A **trigger** starts a state machine for each new object under an artifact-store prefix, with an
S3-style "Object Created" event as the execution's input. Objects that were there when the trigger was
created do not fire. Each object (key and size) fires once: its execution is named after a hash of both.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kamado.artifacts.base import ArtifactStore
from kamado.core.clock import iso_time
from kamado.core.errors import InvalidSpec, NotFound
from kamado.pipelines.schedule_expr import parse_schedule
from kamado.pipelines.service import PipelineService
from kamado.pipelines.spec import parse_input
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord

SCHEDULE_KIND = "schedule"
TRIGGER_KIND = "trigger"
_NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
NAME_HINT = "use 1-64 letters, digits, '-', '_' or '.'"
#: Objects a new trigger records as already there; a larger prefix is refused (point the trigger lower).
MAX_BASELINE_OBJECTS = 100_000


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleTarget(_Shape):
    StateMachine: Annotated[str, Field(min_length=1, max_length=80)]
    #: The execution input as JSON text; left out, the input is an EventBridge "Scheduled Event".
    Input: str | None = None


class CreateScheduleRequest(_Shape):
    Name: str
    ScheduleExpression: Annotated[str, Field(min_length=1, max_length=256)]
    ScheduleExpressionTimezone: str = "UTC"
    State: Literal["ENABLED", "DISABLED"] = "ENABLED"
    Target: ScheduleTarget
    MissedRunPolicy: Literal["RUN_ONCE", "SKIP"] = "RUN_ONCE"
    Description: Annotated[str, Field(max_length=512)] | None = None
    FlexibleTimeWindow: dict[str, Any] | None = None


class TriggerTarget(_Shape):
    StateMachine: Annotated[str, Field(min_length=1, max_length=80)]


class CreateTriggerRequest(_Shape):
    Name: str
    #: An artifact-store URI prefix; new objects under it fire the target.
    Prefix: Annotated[str, Field(min_length=1, max_length=1024)]
    Target: TriggerTarget
    State: Literal["ENABLED", "DISABLED"] = "ENABLED"
    PollIntervalSeconds: Annotated[float, Field(ge=1, le=3600)] = 5.0


def _check_name(name: str, field: str = "Name") -> None:
    if not _NAME.fullmatch(name):
        raise InvalidSpec(
            f"{field} {name!r} is not valid: {NAME_HINT}.", details=[{"field": field, "message": NAME_HINT}]
        )


def fire_name(schedule: str, when: datetime) -> str:
    """The execution a schedule starts for one fire time: the idempotency key of that fire."""
    return f"{schedule}-{when.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def object_fire_name(trigger: str, key: str, size: int) -> str:
    digest = hashlib.sha256(f"{key}\0{size}".encode()).hexdigest()[:32]
    return f"{trigger[:40]}-{digest}"


class ScheduleService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, pipelines: PipelineService) -> None:
        self.store = store
        self.artifacts = artifacts
        self.pipelines = pipelines

    # -- schedules ----------------------------------------------------------------------------------------
    def create_schedule(self, req: CreateScheduleRequest, *, now: float | None = None) -> ResourceRecord:
        _check_name(req.Name)
        parse_schedule(req.ScheduleExpression, req.ScheduleExpressionTimezone)
        self.pipelines.get_state_machine(req.Target.StateMachine)
        if req.Target.Input is not None:
            parse_input(req.Target.Input, field="Target.Input")
        created = time.time() if now is None else now
        return self.store.create(
            kind=SCHEDULE_KIND,
            name=req.Name,
            arn=f"arn:aws:scheduler:{self.pipelines.settings.region}:{self.pipelines.settings.account}:schedule/default/{req.Name}",
            state=req.State,
            spec=req.model_dump(mode="json", exclude_none=True),
            status={"Anchor": created, "LastFireTime": None, "Fires": 0},
        )

    def set_schedule_state(self, name: str, state: Literal["ENABLED", "DISABLED"]) -> ResourceRecord:
        rec = self._get(SCHEDULE_KIND, name, "Schedule")
        patch: dict[str, Any] = {}
        if state == "ENABLED" and rec.state == "DISABLED":
            # Fires missed while disabled are not owed: start counting again from now.
            patch["LastFireTime"] = time.time()
        return self.store.transition(SCHEDULE_KIND, name, from_states=None, to_state=state, status_patch=patch)

    def describe_schedule(self, name: str) -> dict[str, Any]:
        return self._schedule_view(self._get(SCHEDULE_KIND, name, "Schedule"))

    def _schedule_view(self, rec: ResourceRecord) -> dict[str, Any]:
        spec, status = rec.spec, rec.status
        sched = parse_schedule(spec["ScheduleExpression"], spec.get("ScheduleExpressionTimezone", "UTC"))
        after = status.get("LastFireTime") or status["Anchor"]
        nxt = sched.next_after(_aware(max(after, time.time())), anchor=_aware(status["Anchor"]))
        return {
            "Name": rec.name,
            "Arn": rec.arn,
            "State": rec.state,
            "ScheduleExpression": spec["ScheduleExpression"],
            "ScheduleExpressionTimezone": spec.get("ScheduleExpressionTimezone", "UTC"),
            "MissedRunPolicy": spec.get("MissedRunPolicy", "RUN_ONCE"),
            "Target": spec["Target"],
            "Description": spec.get("Description"),
            "CreationDate": iso_time(rec.created_at),
            "LastFireTime": iso_time(status.get("LastFireTime")),
            "LastExecution": status.get("LastExecution"),
            "NextFireTime": nxt.isoformat() if nxt and rec.state == "ENABLED" else None,
            "Fires": status.get("Fires", 0),
        }

    def list_schedules(self, *, max_results: int = 50, next_token: str | None = None) -> dict[str, Any]:
        page = self.store.list(SCHEDULE_KIND, list_query(max_results=max_results, next_token=next_token))
        return {"Schedules": [self._schedule_view(r) for r in page.items], "NextToken": page.next_token}

    def delete_schedule(self, name: str) -> None:
        self._get(SCHEDULE_KIND, name, "Schedule")
        self.store.delete(SCHEDULE_KIND, name)

    # -- triggers -----------------------------------------------------------------------------------------
    def create_trigger(self, req: CreateTriggerRequest) -> ResourceRecord:
        _check_name(req.Name)
        self.pipelines.get_state_machine(req.Target.StateMachine)
        try:
            prefix = self.artifacts.key_from_uri(req.Prefix).rstrip("/")
        except InvalidSpec as exc:
            raise InvalidSpec(
                f"Prefix {req.Prefix!r} must be inside the artifact store ({self.artifacts.root_uri}).",
                details=[{"field": "Prefix", "message": exc.message}],
            ) from exc
        baseline = []
        for key in self.artifacts.list(prefix + "/" if prefix else ""):
            baseline.append(key)
            if len(baseline) > MAX_BASELINE_OBJECTS:
                raise InvalidSpec(
                    f"Prefix {req.Prefix!r} holds more than {MAX_BASELINE_OBJECTS} objects; point the trigger at "
                    "the folder new objects land in.",
                    details=[{"field": "Prefix", "message": "too many objects"}],
                )
        seen = {key: self.artifacts.size(key) for key in baseline}
        rec = self.store.create(
            kind=TRIGGER_KIND,
            name=req.Name,
            arn=f"arn:kamado:trigger:{self.pipelines.settings.region}:{self.pipelines.settings.account}:{req.Name}",
            state=req.State,
            spec={**req.model_dump(mode="json"), "Key": prefix},
            status={"Seen": seen, "Fires": 0, "LastPoll": None},
        )
        return rec

    def set_trigger_state(self, name: str, state: Literal["ENABLED", "DISABLED"]) -> ResourceRecord:
        self._get(TRIGGER_KIND, name, "Trigger")
        return self.store.transition(TRIGGER_KIND, name, from_states=None, to_state=state)

    def describe_trigger(self, name: str) -> dict[str, Any]:
        return self._trigger_view(self._get(TRIGGER_KIND, name, "Trigger"))

    @staticmethod
    def _trigger_view(rec: ResourceRecord) -> dict[str, Any]:
        return {
            "Name": rec.name,
            "Arn": rec.arn,
            "State": rec.state,
            "Prefix": rec.spec["Prefix"],
            "Target": rec.spec["Target"],
            "PollIntervalSeconds": rec.spec["PollIntervalSeconds"],
            "CreationDate": iso_time(rec.created_at),
            "LastPoll": iso_time(rec.status.get("LastPoll")),
            "ObjectsSeen": len(rec.status.get("Seen", {})),
            "Fires": rec.status.get("Fires", 0),
            "LastExecution": rec.status.get("LastExecution"),
        }

    def list_triggers(self, *, max_results: int = 50, next_token: str | None = None) -> dict[str, Any]:
        page = self.store.list(TRIGGER_KIND, list_query(max_results=max_results, next_token=next_token))
        return {"Triggers": [self._trigger_view(r) for r in page.items], "NextToken": page.next_token}

    def delete_trigger(self, name: str) -> None:
        self._get(TRIGGER_KIND, name, "Trigger")
        self.store.delete(TRIGGER_KIND, name)

    def _get(self, kind: str, name: str, label: str) -> ResourceRecord:
        try:
            return self.store.get(kind, name)
        except NotFound:
            raise NotFound(f"{label} '{name}' does not exist.", details={"name": name}) from None


def _aware(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def scheduled_event(rec: ResourceRecord, when: datetime) -> dict[str, Any]:
    """EventBridge's "Scheduled Event", the input of a schedule without its own ``Target.Input``."""
    return {
        "version": "0",
        "id": hashlib.sha256(fire_name(rec.name, when).encode()).hexdigest()[:32],
        "detail-type": "Scheduled Event",
        "source": "kamado.scheduler",
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [rec.arn],
        "detail": {},
    }


def object_created_event(rec: ResourceRecord, uri: str, key: str, size: int) -> dict[str, Any]:
    """An S3-style "Object Created" event (EventBridge's shape) for a new object under a trigger's prefix."""
    return {
        "version": "0",
        "id": object_fire_name(rec.name, key, size),
        "detail-type": "Object Created",
        "source": "kamado.artifacts",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [rec.arn],
        "detail": {"object": {"key": key, "size": size, "uri": uri}, "trigger": rec.name},
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
