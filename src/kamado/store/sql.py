"""The metadata store on SQLAlchemy 2: SQLite by default, PostgreSQL for production.

SQLite is opened the way a durable single-node store must be: WAL journal, ``synchronous=FULL`` (an
acknowledged commit survives power loss), a busy timeout, and write transactions that take the write
lock up front (``BEGIN IMMEDIATE``) so two writers never deadlock on a lock upgrade. Within one process
writes are serialised by a lock, so SQLite sees one writer at a time.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from kamado.core.errors import (
    ConcurrentModification,
    IllegalTransition,
    InvalidSpec,
    NotFound,
    ResourceInUse,
    ServiceUnavailable,
)
from kamado.core.projects import DEFAULT_PROJECT, current_project
from kamado.store import tables as t
from kamado.store.base import MetadataStore
from kamado.store.records import (
    AttemptRecord,
    HistoryEvent,
    ListQuery,
    LogChunk,
    MetricPoint,
    Page,
    ResourceRecord,
)

MAX_PAGE = 100
_SORT_COLUMNS = {
    "name": t.resources.c.name,
    "created_at": t.resources.c.created_at,
    "state": t.resources.c.state,
}
_MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` (as users write it) and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _kind_label(kind: str) -> str:
    return kind.replace("-", " ")


def _not_found(kind: str, name: str, project: str | None) -> NotFound:
    """The same answer for a resource that does not exist and one in another project (no existence leak)."""
    where = f" in project '{project}'" if project is not None else ""
    details: dict[str, Any] = {"kind": kind, "name": name}
    if project is not None:
        details["project"] = project
    return NotFound(f"Could not find {_kind_label(kind)} '{name}'{where}.", details=details)


_ACTIVE_SQLITE = sa.text(
    "SELECT * FROM resources INDEXED BY ix_resources_kind_state WHERE kind = :kind AND state IN :states"
).bindparams(sa.bindparam("states", expanding=True))


class SqlStore(MetadataStore):
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        self._is_sqlite = self.url.startswith("sqlite")
        self._write_lock = threading.RLock()
        self._engine = self._make_engine()
        if migrate:
            self.migrate()
        self._token_key = self._load_token_key()

    # -- plumbing -------------------------------------------------------------------------------------
    def _make_engine(self) -> Engine:
        if self._is_sqlite:
            path = self.url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                write = conn.get_execution_options().get("kamado_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        return sa.create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe on every start)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self._write_lock, self._engine.connect() as conn:
            conn = conn.execution_options(kamado_write=True)
            cfg.attributes["connection"] = conn
            if self._is_sqlite:
                command.upgrade(cfg, "head")
                conn.commit()
            else:
                # Serialise concurrent migrators (several servers starting at once) on an advisory lock.
                with conn.begin():
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7461001)")
                    command.upgrade(cfg, "head")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock:
            try:
                with self._engine.connect() as conn:
                    conn = conn.execution_options(kamado_write=True)
                    with conn.begin():
                        yield conn
            except OperationalError as exc:  # locked database, lost connection
                raise ServiceUnavailable(f"The metadata store is unavailable ({exc.orig}); retry in a moment.") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise ServiceUnavailable(f"The metadata store is unavailable ({exc.orig}); retry in a moment.") from exc

    def _load_token_key(self) -> bytes:
        """The key that signs page tokens, created once per database (two servers racing share one)."""
        select = sa.select(t.meta.c.value).where(t.meta.c.key == "page_token_key")
        for _ in range(3):
            with self._read() as conn:
                row = conn.execute(select).first()
            if row:
                return bytes.fromhex(row[0])
            try:
                with self._write() as conn:
                    conn.execute(sa.insert(t.meta).values(key="page_token_key", value=secrets.token_bytes(32).hex()))
            except IntegrityError:
                continue  # another process inserted it first: read theirs
        raise ServiceUnavailable("Could not initialise the metadata store's page-token key; retry.")

    def close(self) -> None:
        self._engine.dispose()

    # -- leases ---------------------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_s: float, *, take_over_from: str | None = None) -> str | None:
        key = _lease_key(name)
        now = time.time()
        with self._write() as conn:
            stmt = sa.select(t.meta.c.value).where(t.meta.c.key == key)
            if not self._is_sqlite:
                stmt = stmt.with_for_update()
            row = conn.execute(stmt).first()
            value = json.dumps({"owner": owner, "expires": now + ttl_s})
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(t.meta).values(key=key, value=value))
                except IntegrityError:
                    return "another server (just took the lease)"
                return None
            current = json.loads(row[0])
            holder = current.get("owner")
            if holder != owner and holder != take_over_from and float(current.get("expires", 0)) > now:
                return str(holder)
            conn.execute(sa.update(t.meta).where(t.meta.c.key == key).values(value=value))
            return None

    def release_lease(self, name: str, owner: str) -> None:
        key = _lease_key(name)
        with self._write() as conn:
            row = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).first()
            if row is not None and json.loads(row[0]).get("owner") == owner:
                conn.execute(sa.delete(t.meta).where(t.meta.c.key == key))

    # -- resources ------------------------------------------------------------------------------------
    @staticmethod
    def _record(row: Any) -> ResourceRecord:
        return ResourceRecord(
            kind=row.kind,
            name=row.name,
            arn=row.arn,
            state=row.state,
            spec=json.loads(row.spec),
            status=json.loads(row.status),
            tags=json.loads(row.tags),
            parent=row.parent,
            project=row.project,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

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
        scoped = current_project.get()
        if project is not None and scoped is not None and project != scoped:
            raise InvalidSpec(
                f"Cannot create {_kind_label(kind)} '{name}' in project '{project}' while acting in project "
                f"'{scoped}'; send the request to project '{project}' instead.",
                details=[{"field": "project", "message": "not the current project"}],
            )
        project = project or scoped or DEFAULT_PROJECT
        now = time.time()
        values = {
            "kind": kind,
            "name": name,
            "arn": arn,
            "state": state,
            "spec": json.dumps(spec, sort_keys=True),
            "status": json.dumps(status, sort_keys=True),
            "tags": json.dumps(tags or {}, sort_keys=True),
            "parent": parent,
            "project": project,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(sa.insert(t.resources).values(**values))
        except IntegrityError as exc:
            raise ResourceInUse(
                f"A {_kind_label(kind)} named '{name}' already exists; choose another name "
                f"(names are unique and identify the resource).",
                details={"field": "name", "name": name},
            ) from exc
        return ResourceRecord(
            kind=kind,
            name=name,
            arn=arn,
            state=state,
            spec=spec,
            status=status,
            tags=tags or {},
            parent=parent,
            project=project,
            version=1,
            created_at=now,
            updated_at=now,
        )

    def _get_row(self, conn: Connection, kind: str, name: str, *, lock: bool = False) -> Any:
        project = current_project.get()
        stmt = sa.select(t.resources).where(t.resources.c.kind == kind, t.resources.c.name == name)
        if project is not None:
            stmt = stmt.where(t.resources.c.project == project)
        if lock and not self._is_sqlite:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise _not_found(kind, name, project)
        return row

    def _check_visible(self, conn: Connection, kind: str, name: str) -> None:
        """Under a project, refuse to read the logs, metrics, attempts or history of another project's
        resource (NotFound, as for the resource itself). Owners with no resource row are left alone."""
        project = current_project.get()
        if project is None:
            return
        r = t.resources.c
        owner = conn.execute(sa.select(r.project).where(r.kind == kind, r.name == name)).first()
        if owner is not None and owner[0] != project:
            raise _not_found(kind, name, project)

    def get(self, kind: str, name: str) -> ResourceRecord:
        with self._read() as conn:
            return self._record(self._get_row(conn, kind, name))

    def get_many(self, kind: str, names: Sequence[str]) -> dict[str, ResourceRecord]:
        if not names:
            return {}
        stmt = sa.select(t.resources).where(t.resources.c.kind == kind, t.resources.c.name.in_(list(names)))
        if (project := current_project.get()) is not None:
            stmt = stmt.where(t.resources.c.project == project)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return {row.name: self._record(row) for row in rows}

    def _sign(self, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._token_key, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def _unsign(self, token: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, raw = blob[:16], blob[16:]
            if not hmac.compare_digest(mac, hmac.new(self._token_key, raw, hashlib.sha256).digest()[:16]):
                raise ValueError("bad signature")
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("bad payload")
            return payload
        except (ValueError, TypeError) as exc:
            raise InvalidSpec(
                "NextToken is not a token this server issued; start again without NextToken.",
                details=[{"field": "NextToken", "message": "invalid or tampered token"}],
            ) from exc

    def list(self, kind: str, query: ListQuery | None = None) -> Page:
        q = query or ListQuery()
        if q.sort_by not in _SORT_COLUMNS:
            raise InvalidSpec(f"SortBy must be one of {sorted(_SORT_COLUMNS)}.", details=[{"field": "SortBy"}])
        if q.sort_order not in ("asc", "desc"):
            raise InvalidSpec("SortOrder must be 'asc' or 'desc'.", details=[{"field": "SortOrder"}])
        limit = max(1, min(int(q.limit), MAX_PAGE))
        r = t.resources.c
        sort_col = _SORT_COLUMNS[q.sort_by]
        stmt = sa.select(t.resources).where(r.kind == kind)
        if (project := current_project.get()) is not None:
            stmt = stmt.where(r.project == project)
        if q.states:
            stmt = stmt.where(r.state.in_(q.states))
        if q.name_contains:
            pattern = q.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(r.name.ilike(f"%{pattern}%", escape="\\"))
        if q.created_after is not None:
            stmt = stmt.where(r.created_at > q.created_after)
        if q.created_before is not None:
            stmt = stmt.where(r.created_at < q.created_before)
        if q.parent is not None:
            stmt = stmt.where(r.parent == q.parent)
        desc = q.sort_order == "desc"
        if q.page_token:
            tok = self._unsign(q.page_token)
            if tok.get("s") != q.sort_by or tok.get("o") != q.sort_order:
                raise InvalidSpec(
                    "NextToken belongs to a listing with another sort; repeat the original query.",
                    details=[{"field": "NextToken"}],
                )
            after_value, after_id = tok["v"], int(tok["i"])
            if desc:
                stmt = stmt.where(sa.or_(sort_col < after_value, sa.and_(sort_col == after_value, r.id < after_id)))
            else:
                stmt = stmt.where(sa.or_(sort_col > after_value, sa.and_(sort_col == after_value, r.id > after_id)))
        order = (sort_col.desc(), r.id.desc()) if desc else (sort_col.asc(), r.id.asc())
        stmt = stmt.order_by(*order).limit(limit + 1)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        items = [self._record(row) for row in rows[:limit]]
        next_token = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_token = self._sign({"s": q.sort_by, "o": q.sort_order, "v": getattr(last, q.sort_by), "i": last.id})
        return Page(items=items, next_token=next_token)

    def list_in_states(self, kind: str, states: Iterable[str]) -> builtins.list[ResourceRecord]:
        r = t.resources.c
        with self._read() as conn:
            # Active states are a sliver of a kind's rows, but ANALYZE's averages cannot tell (most rows share
            # one terminal state), so SQLite then scans the whole table: 150-250 ms per reconciler pass at
            # 100,000 jobs, about a core when idle. Name the index; sort the few rows here.
            if conn.dialect.name == "sqlite":
                rows = conn.execute(_ACTIVE_SQLITE, {"kind": kind, "states": list(states)}).all()
            else:
                rows = conn.execute(sa.select(t.resources).where(r.kind == kind, r.state.in_(list(states)))).all()
        project = current_project.get()
        return [
            self._record(row)
            for row in sorted(rows, key=lambda row: row.id)
            if project is None or row.project == project
        ]

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
        allowed = None if from_states is None else set(from_states)
        with self._write() as conn:
            row = self._get_row(conn, kind, name, lock=True)
            if expected_version is not None and row.version != expected_version:
                raise ConcurrentModification(
                    f"{_kind_label(kind).capitalize()} '{name}' changed concurrently "
                    f"(version {row.version}, expected {expected_version}); re-read it and retry."
                )
            if allowed is not None and row.state not in allowed:
                raise IllegalTransition(
                    f"{_kind_label(kind).capitalize()} '{name}' is {row.state} and cannot become {to_state}.",
                    details={"name": name, "state": row.state, "requested": to_state},
                )
            return self._apply(conn, row, to_state, status_patch)

    def update_status(
        self, kind: str, name: str, status_patch: dict[str, Any], *, expected_version: int | None = None
    ) -> ResourceRecord:
        with self._write() as conn:
            row = self._get_row(conn, kind, name, lock=True)
            if expected_version is not None and row.version != expected_version:
                raise ConcurrentModification(
                    f"{_kind_label(kind).capitalize()} '{name}' changed concurrently; re-read it and retry."
                )
            return self._apply(conn, row, row.state, status_patch)

    def _apply(self, conn: Connection, row: Any, to_state: str, patch: dict[str, Any] | None) -> ResourceRecord:
        status = json.loads(row.status)
        if patch:
            status.update(patch)
        now = time.time()
        conn.execute(
            sa.update(t.resources)
            .where(t.resources.c.id == row.id)
            .values(
                state=to_state,
                status=json.dumps(status, sort_keys=True),
                version=row.version + 1,
                updated_at=now,
            )
        )
        return ResourceRecord(
            kind=row.kind,
            name=row.name,
            arn=row.arn,
            state=to_state,
            spec=json.loads(row.spec),
            status=status,
            tags=json.loads(row.tags),
            parent=row.parent,
            project=row.project,
            version=row.version + 1,
            created_at=row.created_at,
            updated_at=now,
        )

    def delete(self, kind: str, name: str) -> None:
        with self._write() as conn:
            self._get_row(conn, kind, name, lock=True)
            owner = {"kind": kind, "name": name}
            for table in (t.log_chunks, t.metrics, t.attempts, t.history_events):
                conn.execute(sa.delete(table).where(table.c.kind == owner["kind"], table.c.name == name))
            conn.execute(sa.delete(t.resources).where(t.resources.c.kind == kind, t.resources.c.name == name))

    # -- histories --------------------------------------------------------------------------------------
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
        h = t.history_events.c
        with self._write() as conn:
            row = self._get_row(conn, kind, name, lock=True)
            if row.version != expected_version:
                raise ConcurrentModification(
                    f"{_kind_label(kind).capitalize()} '{name}' changed concurrently "
                    f"(version {row.version}, expected {expected_version}); re-read it and retry."
                )
            last = conn.execute(
                sa.select(sa.func.max(h.event_id)).where(h.kind == kind, h.name == name)
            ).scalar_one_or_none()
            last = int(last or 0)
            now = time.time()
            out: builtins.list[HistoryEvent] = []
            for event_type, details in events:
                out.append(
                    HistoryEvent(event_id=last + 1, previous_event_id=last, ts=now, type=event_type, details=details)
                )
                last += 1
            if out:
                conn.execute(
                    sa.insert(t.history_events),
                    [
                        {
                            "kind": kind,
                            "name": name,
                            "event_id": e.event_id,
                            "previous_event_id": e.previous_event_id,
                            "ts": e.ts,
                            "type": e.type,
                            "details": json.dumps(e.details, sort_keys=True),
                        }
                        for e in out
                    ],
                )
            record = self._apply(conn, row, to_state or row.state, status_patch)
        return record, out

    def read_history(
        self, kind: str, name: str, *, after_event_id: int = 0, limit: int = 1000, reverse: bool = False
    ) -> builtins.list[HistoryEvent]:
        h = t.history_events.c
        query = sa.select(t.history_events).where(h.kind == kind, h.name == name)
        if reverse:
            if after_event_id:
                query = query.where(h.event_id < after_event_id)
            query = query.order_by(h.event_id.desc())
        else:
            query = query.where(h.event_id > after_event_id).order_by(h.event_id)
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(query.limit(max(1, min(limit, 10_000)))).all()
        return [
            HistoryEvent(
                event_id=r.event_id,
                previous_event_id=r.previous_event_id,
                ts=r.ts,
                type=r.type,
                details=json.loads(r.details),
            )
            for r in rows
        ]

    # -- attempts -------------------------------------------------------------------------------------
    @staticmethod
    def _attempt(row: Any) -> AttemptRecord:
        return AttemptRecord(
            kind=row.kind,
            name=row.name,
            attempt=row.attempt,
            state=row.state,
            handle=json.loads(row.handle),
            started_at=row.started_at,
            ended_at=row.ended_at,
            exit_code=row.exit_code,
            reason=row.reason,
        )

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
        values = {
            "kind": kind,
            "name": name,
            "attempt": attempt,
            "state": "Running",
            "handle": json.dumps(handle, sort_keys=True),
            "started_at": started_at,
        }
        try:
            with self._write() as conn:
                row = self._get_row(conn, kind, name, lock=True)
                if expected_version is not None and row.version != expected_version:
                    raise ConcurrentModification(
                        f"{_kind_label(kind).capitalize()} '{name}' changed concurrently; re-read it and retry."
                    )
                conn.execute(sa.insert(t.attempts).values(**values))
                if status_patch:
                    self._apply(conn, row, row.state, status_patch)
        except IntegrityError as exc:
            raise ResourceInUse(f"Attempt {attempt} of {_kind_label(kind)} '{name}' was already started.") from exc
        return AttemptRecord(
            kind=kind, name=name, attempt=attempt, state="Running", handle=handle, started_at=started_at
        )

    def _attempt_where(self, kind: str, name: str, attempt: int) -> Any:
        a = t.attempts.c
        return sa.and_(a.kind == kind, a.name == name, a.attempt == attempt)

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
    ) -> AttemptRecord:
        where = self._attempt_where(kind, name, attempt)
        with self._write() as conn:
            res = conn.execute(
                sa.update(t.attempts)
                .where(where)
                .values(state=state, ended_at=ended_at, exit_code=exit_code, reason=reason)
            )
            if res.rowcount == 0:
                raise NotFound(f"Attempt {attempt} of {_kind_label(kind)} '{name}' does not exist.")
            row = conn.execute(sa.select(t.attempts).where(where)).one()
        return self._attempt(row)

    def update_attempt_handle(self, kind: str, name: str, attempt: int, handle: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(t.attempts)
                .where(self._attempt_where(kind, name, attempt))
                .values(handle=json.dumps(handle, sort_keys=True))
            )

    def list_attempts(self, kind: str, name: str) -> builtins.list[AttemptRecord]:
        a = t.attempts.c
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(sa.select(t.attempts).where(a.kind == kind, a.name == name).order_by(a.attempt)).all()
        return [self._attempt(row) for row in rows]

    # -- logs and metrics -----------------------------------------------------------------------------
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
        if not chunks and not metrics:
            return
        rows = [
            {"kind": kind, "name": name, "attempt": attempt, "ts": ts, "data": data, "end_offset": None}
            for ts, data in chunks
        ]
        if rows:
            rows[-1]["end_offset"] = end_offset
        with self._write() as conn:
            if rows:
                conn.execute(sa.insert(t.log_chunks), rows)
            if metrics:
                self._insert_metrics(conn, kind, name, metrics)

    def log_offset(self, kind: str, name: str, attempt: int) -> int:
        c = t.log_chunks.c
        with self._read() as conn:
            value = conn.execute(
                sa.select(sa.func.max(c.end_offset)).where(c.kind == kind, c.name == name, c.attempt == attempt)
            ).scalar()
        return int(value or 0)

    def _insert_metrics(self, conn: Connection, kind: str, name: str, points: Sequence[MetricPoint]) -> None:
        """Metrics arrive by the thousand from chatty jobs: insert them through the driver's executemany
        with positional rows, which is several times faster than SQLAlchemy's per-row dict handling."""
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO metrics (kind, name, metric, value, ts, step) VALUES ({', '.join([mark] * 6)})"
        conn.exec_driver_sql(sql, [(kind, name, p.metric, p.value, p.ts, p.step) for p in points])

    @staticmethod
    def _metric_row(kind: str, name: str, p: MetricPoint) -> dict[str, Any]:
        return {"kind": kind, "name": name, "metric": p.metric, "value": p.value, "ts": p.ts, "step": p.step}

    def read_logs(self, kind: str, name: str, *, after_seq: int = 0, limit: int = 1000) -> builtins.list[LogChunk]:
        c = t.log_chunks.c
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(
                sa.select(t.log_chunks)
                .where(c.kind == kind, c.name == name, c.seq > after_seq)
                .order_by(c.seq)
                .limit(max(1, min(limit, 10_000)))
            ).all()
        return [LogChunk(seq=r.seq, attempt=r.attempt, ts=r.ts, data=r.data) for r in rows]

    def tail_logs(self, kind: str, name: str, *, limit: int = 50) -> builtins.list[LogChunk]:
        c = t.log_chunks.c
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(
                sa.select(t.log_chunks)
                .where(c.kind == kind, c.name == name)
                .order_by(c.seq.desc())
                .limit(max(1, min(limit, 10_000)))
            ).all()
        return [LogChunk(seq=r.seq, attempt=r.attempt, ts=r.ts, data=r.data) for r in reversed(rows)]

    def append_metrics(self, kind: str, name: str, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        with self._write() as conn:
            conn.execute(
                sa.insert(t.metrics),
                [self._metric_row(kind, name, p) for p in points],
            )

    def read_metrics(self, kind: str, name: str, metric: str | None = None) -> builtins.list[MetricPoint]:
        m = t.metrics.c
        # Only the four fields, as plain tuples: a long series is 100,000 rows, and full Row objects made
        # building the records cost several times the query itself.
        stmt = sa.select(m.metric, m.value, m.ts, m.step).where(m.kind == kind, m.name == name)
        if metric is not None:
            stmt = stmt.where(m.metric == metric)
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(stmt.order_by(m.id)).all()
        return [MetricPoint(name_, value, ts, step) for name_, value, ts, step in rows]

    def final_metrics(self, kind: str, name: str) -> builtins.list[MetricPoint]:
        m = t.metrics.c
        last_ids = (
            sa.select(sa.func.max(m.id)).where(m.kind == kind, m.name == name).group_by(m.metric).scalar_subquery()
        )
        with self._read() as conn:
            self._check_visible(conn, kind, name)
            rows = conn.execute(sa.select(t.metrics).where(m.id.in_(last_ids)).order_by(m.metric)).all()
        return [MetricPoint(metric=r.metric, value=r.value, ts=r.ts, step=r.step) for r in rows]


def _lease_key(name: str) -> str:
    return f"lease:{name}"[:64]


def open_store(url: str) -> MetadataStore:
    """Open a metadata store by URL: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith(("sqlite", "postgresql", "postgres://")):
        return SqlStore(url)
    raise InvalidSpec(
        f"Unsupported database URL scheme in {url.split('://')[0]!r}; use sqlite:///path or postgresql://...",
        details=[{"field": "database_url"}],
    )
