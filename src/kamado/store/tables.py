"""SQLAlchemy table definitions. Changes here need an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("arn", String(512), nullable=False),
    Column("state", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("parent", String(256), nullable=True),
    #: The project the resource lives in (names stay unique per kind across projects, like an AWS account).
    Column("project", String(64), nullable=False, server_default="default"),
    Column("version", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    Index("ix_resources_kind_state", "kind", "state", "created_at"),
    Index("ix_resources_kind_created", "kind", "created_at"),
    Index("ix_resources_parent", "parent"),
    Index("ix_resources_kind_project_created", "kind", "project", "created_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("handle", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    UniqueConstraint("kind", "name", "attempt", name="uq_attempts_kind_name_attempt"),
)

log_chunks = Table(
    "log_chunks",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ts", Double, nullable=False),
    Column("data", Text, nullable=False),
    #: Byte offset in the attempt's raw log just after this chunk, so a restarted reader resumes exactly.
    Column("end_offset", BigInteger, nullable=True),
    Index("ix_log_chunks_owner", "kind", "name", "seq"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("value", Double, nullable=False),
    Column("ts", Double, nullable=False),
    Column("step", Integer, nullable=True),
    Index("ix_metrics_owner", "kind", "name", "metric", "id"),
)

#: Append-only event histories (pipeline executions): ``event_id`` counts from 1 per owner, with no gaps.
history_events = Table(
    "history_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("previous_event_id", Integer, nullable=False),
    Column("ts", Double, nullable=False),
    Column("type", String(64), nullable=False),
    Column("details", Text, nullable=False),
    UniqueConstraint("kind", "name", "event_id", name="uq_history_events_owner_event"),
)

meta = Table(
    "kamado_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# -- security (authentication, authorization, audit, secrets); see kamado.security -------------------

projects = Table(
    "projects",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("name", String(64), primary_key=True),
    #: "User" or "ServiceAccount".
    Column("type", String(32), nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Double, nullable=False),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(64), nullable=False),
    #: A project name, or "*" for every project.
    Column("project", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    #: A resource-name pattern (fnmatch style): "*" or e.g. "prod-*".
    Column("resource", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("principal", "project", "role", "resource", name="uq_role_bindings"),
    Index("ix_role_bindings_principal", "principal"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    #: The public half of a token (``kmd_<token_id>_<secret>``); the secret half is stored only as a hash.
    Column("token_id", String(32), primary_key=True),
    Column("principal", String(64), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    #: JSON list of role bindings the token is limited to (within its principal's); NULL: all of them.
    Column("scope", Text, nullable=True),
    Index("ix_api_tokens_principal", "principal"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Double, nullable=False),
    Column("principal", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("resource", String(256), nullable=False),
    Column("project", String(64), nullable=False),
    #: "Allowed" or "Denied".
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("source_ip", String(64), nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_audit_events_ts", "ts"),
    Index("ix_audit_events_principal", "principal", "id"),
)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    #: The project the secret belongs to: only that project's workloads can reference it.
    Column("project", String(64), nullable=False, server_default="default"),
    #: Fingerprint of the master key that encrypted this row (a key rotation re-encrypts every row).
    Column("key_id", String(32), nullable=False),
    #: base64(nonce || AES-GCM ciphertext+tag); the associated data binds it to (name, version).
    Column("ciphertext", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("project", "name", "version", name="uq_secret_versions"),
)
