"""Security tables on the metadata store's engine: one transaction per operation, frozen records out.

It reuses :class:`~kamado.store.sql.SqlStore`'s connection handling (SQLite write lock and ``BEGIN
IMMEDIATE``; PostgreSQL pool) rather than opening a second engine on the same database, which on SQLite
would be a second writer the store's lock does not know about.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from kamado.core.errors import NotFound, ResourceInUse
from kamado.security.policy import Binding
from kamado.security.records import AuditEvent, Principal, SecretVersion, TokenRecord
from kamado.store import tables as t
from kamado.store.base import MetadataStore

MAX_AUDIT_PAGE = 100


class SecurityStore:
    """Thread-safe as the underlying store is. ``NotFound`` means the named object does not exist."""

    def __init__(self, store: MetadataStore) -> None:
        self._store: Any = store

    def _write(self) -> AbstractContextManager[Connection]:
        return cast(AbstractContextManager[Connection], self._store._write())

    def _read(self) -> AbstractContextManager[Connection]:
        return cast(AbstractContextManager[Connection], self._store._read())

    # -- projects -------------------------------------------------------------------------------------
    def create_project(self, name: str, description: str = "") -> None:
        try:
            with self._write() as conn:
                conn.execute(sa.insert(t.projects).values(name=name, description=description, created_at=time.time()))
        except IntegrityError:
            raise ResourceInUse(f"Project '{name}' already exists.", details={"Name": name}) from None

    def ensure_project(self, name: str) -> None:
        with suppress(ResourceInUse):
            self.create_project(name)

    def list_projects(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.projects).order_by(t.projects.c.name)).all()
        return [{"Name": r.name, "Description": r.description, "CreationTime": r.created_at} for r in rows]

    def project_exists(self, name: str) -> bool:
        with self._read() as conn:
            return conn.execute(sa.select(t.projects.c.name).where(t.projects.c.name == name)).first() is not None

    # -- principals and bindings ----------------------------------------------------------------------
    def create_principal(self, name: str, type_: str, created_by: str | None, bindings: Sequence[Binding] = ()) -> None:
        now = time.time()
        try:
            with self._write() as conn:
                conn.execute(
                    sa.insert(t.principals).values(name=name, type=type_, created_by=created_by, created_at=now)
                )
                for b in bindings:
                    conn.execute(
                        sa.insert(t.role_bindings).values(
                            principal=name, project=b.project, role=b.role, resource=b.resource, created_at=now
                        )
                    )
        except IntegrityError:
            raise ResourceInUse(
                f"Principal '{name}' already exists; pick another name or delete it first.", details={"Name": name}
            ) from None

    def get_principal(self, name: str) -> Principal:
        with self._read() as conn:
            row = conn.execute(sa.select(t.principals).where(t.principals.c.name == name)).first()
            if row is None:
                raise NotFound(f"Could not find principal '{name}'.", details={"Name": name})
            brows = conn.execute(
                sa.select(t.role_bindings).where(t.role_bindings.c.principal == name).order_by(t.role_bindings.c.id)
            ).all()
        return Principal(
            name=row.name,
            type=row.type,
            created_at=row.created_at,
            created_by=row.created_by,
            bindings=tuple(Binding(b.project, b.role, b.resource) for b in brows),
        )

    def list_principals(self) -> list[Principal]:
        with self._read() as conn:
            names = [r.name for r in conn.execute(sa.select(t.principals.c.name).order_by(t.principals.c.name))]
        return [self.get_principal(n) for n in names]

    def delete_principal(self, name: str) -> None:
        """Delete a principal, its bindings, and revoke its tokens (all at once)."""
        now = time.time()
        with self._write() as conn:
            gone = conn.execute(sa.delete(t.principals).where(t.principals.c.name == name)).rowcount
            if not gone:
                raise NotFound(f"Could not find principal '{name}'.", details={"Name": name})
            conn.execute(sa.delete(t.role_bindings).where(t.role_bindings.c.principal == name))
            conn.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.principal == name, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def put_binding(self, principal: str, binding: Binding) -> None:
        with self._write() as conn:
            if conn.execute(sa.select(t.principals.c.name).where(t.principals.c.name == principal)).first() is None:
                raise NotFound(f"Could not find principal '{principal}'.", details={"Name": principal})
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(t.role_bindings).values(
                            principal=principal,
                            project=binding.project,
                            role=binding.role,
                            resource=binding.resource,
                            created_at=time.time(),
                        )
                    )
            except IntegrityError:
                return  # already bound: putting a binding is idempotent

    def delete_binding(self, principal: str, binding: Binding) -> None:
        with self._write() as conn:
            gone = conn.execute(
                sa.delete(t.role_bindings).where(
                    t.role_bindings.c.principal == principal,
                    t.role_bindings.c.project == binding.project,
                    t.role_bindings.c.role == binding.role,
                    t.role_bindings.c.resource == binding.resource,
                )
            ).rowcount
        if not gone:
            raise NotFound(
                f"Principal '{principal}' has no {binding.role} binding on project '{binding.project}' "
                f"for resources '{binding.resource}'.",
                details={"Name": principal},
            )

    # -- tokens ---------------------------------------------------------------------------------------
    def add_token(self, rec: TokenRecord) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.api_tokens).values(
                    token_id=rec.token_id,
                    principal=rec.principal,
                    salt=rec.salt,
                    hash=rec.hash,
                    description=rec.description,
                    created_by=rec.created_by,
                    created_at=rec.created_at,
                    expires_at=rec.expires_at,
                    revoked_at=rec.revoked_at,
                    scope=None
                    if rec.scope is None
                    else json.dumps([[b.project, b.role, b.resource] for b in rec.scope]),
                )
            )

    @staticmethod
    def _token(row: Any) -> TokenRecord:
        return TokenRecord(
            token_id=row.token_id,
            principal=row.principal,
            salt=row.salt,
            hash=row.hash,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            scope=None if row.scope is None else tuple(Binding(*b) for b in json.loads(row.scope)),
        )

    def find_token(self, token_id: str) -> TokenRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.token_id == token_id)).first()
        return None if row is None else self._token(row)

    def list_tokens(self, principal: str | None = None) -> list[TokenRecord]:
        stmt = sa.select(t.api_tokens).order_by(t.api_tokens.c.created_at)
        if principal is not None:
            stmt = stmt.where(t.api_tokens.c.principal == principal)
        with self._read() as conn:
            return [self._token(r) for r in conn.execute(stmt)]

    def revoke_token(self, token_id: str) -> None:
        with self._write() as conn:
            n = conn.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.token_id == token_id, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            if (
                not n
                and conn.execute(sa.select(t.api_tokens.c.token_id).where(t.api_tokens.c.token_id == token_id)).first()
                is None
            ):
                raise NotFound(f"Could not find token '{token_id}'.", details={"TokenId": token_id})

    # -- audit ----------------------------------------------------------------------------------------
    def append_audit(self, **fields: Any) -> None:
        with self._write() as conn:
            conn.execute(sa.insert(t.audit_events).values(**fields))

    def list_audit(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        project: str | None = None,
        after: float | None = None,
        before: float | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """Newest first; ``before_id`` pages backwards (parameterised filters only, A13)."""
        c = t.audit_events.c
        stmt = sa.select(t.audit_events).order_by(c.id.desc()).limit(max(1, min(limit, MAX_AUDIT_PAGE)))
        if principal is not None:
            stmt = stmt.where(c.principal == principal)
        if action is not None:
            stmt = stmt.where(c.action == action)
        if outcome is not None:
            stmt = stmt.where(c.outcome == outcome)
        if project is not None:
            stmt = stmt.where(c.project == project)
        if after is not None:
            stmt = stmt.where(c.ts >= after)
        if before is not None:
            stmt = stmt.where(c.ts < before)
        if before_id is not None:
            stmt = stmt.where(c.id < before_id)
        with self._read() as conn:
            return [AuditEvent(**dict(r._mapping)) for r in conn.execute(stmt)]

    # -- secrets --------------------------------------------------------------------------------------
    # Every secret belongs to one project; names are unique within it (``a``'s ``db/password`` and
    # ``default``'s are different secrets).
    @staticmethod
    def _secret(row: Any) -> SecretVersion:
        return SecretVersion(
            name=row.name,
            version=row.version,
            key_id=row.key_id,
            ciphertext=row.ciphertext,
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            project=row.project,
        )

    def add_secret_version(self, rec: SecretVersion, *, must_exist: bool) -> None:
        """Store version ``rec.version``; it must be the next one (a racing writer gets a conflict)."""
        c = t.secret_versions.c
        with self._write() as conn:
            current = conn.execute(
                sa.select(sa.func.max(c.version)).where(c.project == rec.project, c.name == rec.name)
            ).scalar()
            if must_exist and current is None:
                raise NotFound(f"Could not find secret '{rec.name}'; create it first.", details={"Name": rec.name})
            if not must_exist and current is not None:
                raise ResourceInUse(
                    f"Secret '{rec.name}' already exists; rotate it (kamado secrets rotate) to store a new value.",
                    details={"Name": rec.name},
                )
            if (current or 0) + 1 != rec.version:
                raise ResourceInUse(f"Secret '{rec.name}' changed meanwhile; retry.", details={"Name": rec.name})
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(t.secret_versions).values(**rec.__dict__))
            except IntegrityError:
                raise ResourceInUse(
                    f"Secret '{rec.name}' changed meanwhile; retry.", details={"Name": rec.name}
                ) from None

    def secret_versions(self, project: str, name: str) -> list[SecretVersion]:
        c = t.secret_versions.c
        stmt = sa.select(t.secret_versions).where(c.project == project, c.name == name).order_by(c.version)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [self._secret(r) for r in rows]

    def latest_secrets(self, project: str) -> list[SecretVersion]:
        c = t.secret_versions.c
        latest = (
            sa.select(c.name, sa.func.max(c.version).label("v")).where(c.project == project).group_by(c.name).subquery()
        )
        stmt = (
            sa.select(t.secret_versions)
            .join(latest, sa.and_(c.name == latest.c.name, c.version == latest.c.v))
            .where(c.project == project)
            .order_by(c.name)
        )
        with self._read() as conn:
            return [self._secret(r) for r in conn.execute(stmt)]

    def delete_secret(self, project: str, name: str) -> None:
        c = t.secret_versions.c
        with self._write() as conn:
            if not conn.execute(sa.delete(t.secret_versions).where(c.project == project, c.name == name)).rowcount:
                raise NotFound(f"Could not find secret '{name}'.", details={"Name": name})

    def all_secret_versions(self) -> Iterator[SecretVersion]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.secret_versions).order_by(t.secret_versions.c.id)).all()
        return iter([self._secret(r) for r in rows])

    def reencrypt(self, rows: Sequence[SecretVersion]) -> None:
        """Replace the ciphertext and key id of every given version in one transaction (key rotation)."""
        c = t.secret_versions.c
        with self._write() as conn:
            for r in rows:
                conn.execute(
                    sa.update(t.secret_versions)
                    .where(c.project == r.project, c.name == r.name, c.version == r.version)
                    .values(key_id=r.key_id, ciphertext=r.ciphertext)
                )
