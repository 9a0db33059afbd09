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
    Column("name", String(128), nullable=False),
    Column("arn", String(512), nullable=False),
    Column("state", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("parent", String(256), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    Index("ix_resources_kind_state", "kind", "state", "created_at"),
    Index("ix_resources_kind_created", "kind", "created_at"),
    Index("ix_resources_parent", "parent"),
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

meta = Table(
    "kamado_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
