"""The metadata store contract.

Every operation is one transaction that commits or rolls back, and returns frozen records.
Thread-safe. Errors: :class:`NotFound` for a missing resource, :class:`ResourceInUse` for a duplicate
name (the name is the idempotency key), :class:`IllegalTransition` when the current state does not allow
a transition, :class:`ConcurrentModification` when an ``expected_version`` compare-and-set loses a race.
An acknowledged write is durable (SQLite: WAL + ``synchronous=FULL``; PostgreSQL: committed transaction).

Projects: while :data:`kamado.core.projects.current_project` is set (an API request), every operation on a
resource sees only that project's resources: one of another project is :class:`NotFound`, exactly as if it
did not exist, and ``create`` records that project. With no project set (reconcilers, background loops)
every project is visible and ``create`` records its ``project`` argument, else ``default``. Names stay
unique per kind across projects, so a duplicate in another project is still ResourceInUse.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from kamado.store.records import (
    AttemptRecord,
    HistoryEvent,
    ListQuery,
    LogChunk,
    MetricPoint,
    Page,
    ResourceRecord,
)


class MetadataStore(ABC):
    url: str

    @abstractmethod
    def create(
        self,
        *,
        kind: str,
        name: str,
        arn: str,
        state: str,
        spec: dict[str, Any],
        status: dict[str, Any],
        tags: dict[str, str] | None = None,
        parent: str | None = None,
        project: str | None = None,
    ) -> ResourceRecord:
        """``project``: where the resource lives; None means the current project, else ``default``. A
        project other than the current one (while one is set) is refused with InvalidSpec."""

    @abstractmethod
    def get(self, kind: str, name: str) -> ResourceRecord: ...

    @abstractmethod
    def get_many(self, kind: str, names: Sequence[str]) -> dict[str, ResourceRecord]:
        """Batched read: the records that exist among ``names``, by name (missing ones are absent)."""

    @abstractmethod
    def list(self, kind: str, query: ListQuery | None = None) -> Page: ...

    @abstractmethod
    def list_in_states(self, kind: str, states: Iterable[str]) -> builtins.list[ResourceRecord]:
        """Every resource of ``kind`` in one of ``states``, oldest first (reconcilers' work list)."""

    @abstractmethod
    def transition(
        self,
        kind: str,
        name: str,
        *,
        from_states: Iterable[str] | None,
        to_state: str,
        status_patch: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> ResourceRecord:
        """Compare-and-set: move to ``to_state`` only if the current state is one of ``from_states``
        (``None`` = any) and, if given, the version matches. ``status_patch`` is merged shallowly."""

    @abstractmethod
    def update_status(
        self, kind: str, name: str, status_patch: dict[str, Any], *, expected_version: int | None = None
    ) -> ResourceRecord: ...

    @abstractmethod
    def delete(self, kind: str, name: str) -> None: ...

    # -- attempts -------------------------------------------------------------------------------------
    @abstractmethod
    def start_attempt(
        self,
        kind: str,
        name: str,
        attempt: int,
        *,
        handle: dict[str, Any],
        started_at: float,
        status_patch: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> AttemptRecord:
        """Record a new attempt and, in the same transaction, patch the resource's status (so "an attempt
        exists" and "the resource knows it" can never disagree after a crash). A second start of the same
        attempt number raises ResourceInUse; a version mismatch raises ConcurrentModification."""

    @abstractmethod
    def end_attempt(
        self,
        kind: str,
        name: str,
        attempt: int,
        *,
        state: str,
        ended_at: float,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> AttemptRecord: ...

    @abstractmethod
    def update_attempt_handle(self, kind: str, name: str, attempt: int, handle: dict[str, Any]) -> None: ...

    @abstractmethod
    def list_attempts(self, kind: str, name: str) -> builtins.list[AttemptRecord]: ...

    # -- logs and metrics -----------------------------------------------------------------------------
    @abstractmethod
    def append_logs(
        self,
        kind: str,
        name: str,
        attempt: int,
        chunks: Sequence[tuple[float, str]],
        *,
        end_offset: int | None = None,
        metrics: Sequence[MetricPoint] = (),
    ) -> None:
        """Append log chunks and the metrics parsed from them in one transaction. ``end_offset`` is the
        raw byte offset reached in the attempt's log, returned later by :meth:`log_offset`."""

    @abstractmethod
    def log_offset(self, kind: str, name: str, attempt: int) -> int:
        """The largest ``end_offset`` recorded for the attempt (0 if none): where a reader resumes."""

    @abstractmethod
    def read_logs(self, kind: str, name: str, *, after_seq: int = 0, limit: int = 1000) -> builtins.list[LogChunk]: ...

    @abstractmethod
    def tail_logs(self, kind: str, name: str, *, limit: int = 50) -> builtins.list[LogChunk]:
        """The last ``limit`` chunks, oldest first (for failure reasons and `logs --tail`)."""

    @abstractmethod
    def append_metrics(self, kind: str, name: str, points: Sequence[MetricPoint]) -> None: ...

    @abstractmethod
    def read_metrics(self, kind: str, name: str, metric: str | None = None) -> builtins.list[MetricPoint]: ...

    @abstractmethod
    def final_metrics(self, kind: str, name: str) -> builtins.list[MetricPoint]:
        """The last recorded point of each metric, sorted by metric name."""

    # -- histories --------------------------------------------------------------------------------------
    @abstractmethod
    def append_history(
        self,
        kind: str,
        name: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        *,
        expected_version: int,
        to_state: str | None = None,
        status_patch: dict[str, Any] | None = None,
    ) -> tuple[ResourceRecord, builtins.list[HistoryEvent]]:
        """Append ``(type, details)`` events to the resource's history and patch its status (and state) in one
        transaction, only while the resource is at ``expected_version``. A runner that raced another or
        crashed half-way therefore never records a transition twice: the loser gets ConcurrentModification
        and re-reads. Event ids continue from the last one, with no gaps."""

    @abstractmethod
    def read_history(
        self, kind: str, name: str, *, after_event_id: int = 0, limit: int = 1000, reverse: bool = False
    ) -> builtins.list[HistoryEvent]:
        """Events in id order (newest first when ``reverse``; then ``after_event_id`` means "before")."""

    # -- leases -------------------------------------------------------------------------------------------
    @abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_s: float, *, take_over_from: str | None = None) -> str | None:
        """Take or renew the lease ``name`` for ``owner`` until now + ``ttl_s``. Returns None on success, or
        the current holder's owner string when someone else holds an unexpired lease. ``take_over_from``
        takes an unexpired lease from that exact holder (one the caller knows is dead)."""

    @abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (idempotent)."""

    @abstractmethod
    def close(self) -> None: ...
