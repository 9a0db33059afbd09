"""Frozen records the store hands out. SQLAlchemy rows never leave ``kamado.store``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResourceRecord(_Frozen):
    """One resource of any kind (training job, endpoint, ...). ``spec`` is what the user asked for,
    ``status`` what the platform filled in; both are JSON documents owned by the capability."""

    kind: str
    name: str
    arn: str
    state: str
    spec: dict[str, Any]
    status: dict[str, Any]
    tags: dict[str, str] = Field(default_factory=dict)
    parent: str | None = None
    #: The project the resource lives in (see kamado.core.projects).
    project: str = "default"
    version: int
    created_at: float
    updated_at: float


class AttemptRecord(_Frozen):
    """One execution attempt of a resource's work (a training job may retry on platform faults)."""

    kind: str
    name: str
    attempt: int
    state: str
    handle: dict[str, Any]
    started_at: float
    ended_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None


class LogChunk(_Frozen):
    seq: int
    attempt: int
    ts: float
    data: str


class HistoryEvent(_Frozen):
    """One event of an append-only history (Step Functions' ``HistoryEvent``): ids count from 1."""

    event_id: int
    previous_event_id: int
    ts: float
    type: str
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One metric value. A plain dataclass, not a pydantic model: jobs emit them by the hundred thousand
    and every field is checked where the point is parsed."""

    metric: str
    value: float
    ts: float
    step: int | None = None


class Page(_Frozen):
    items: list[ResourceRecord]
    next_token: str | None = None


class ListQuery(_Frozen):
    """Allow-listed filters and sort keys only (A13): nothing here reaches SQL as text."""

    states: list[str] | None = None
    name_contains: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    parent: str | None = None
    sort_by: str = "created_at"  # name | created_at | state
    sort_order: str = "desc"  # asc | desc
    limit: int = 50
    page_token: str | None = None
