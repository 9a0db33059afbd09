"""Initial schema: resources, attempts, log chunks, metrics, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arn", sa.String(512), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("parent", sa.String(256), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    )
    op.create_index("ix_resources_kind_state", "resources", ["kind", "state", "created_at"])
    op.create_index("ix_resources_kind_created", "resources", ["kind", "created_at"])
    op.create_index("ix_resources_parent", "resources", ["parent"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("handle", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.UniqueConstraint("kind", "name", "attempt", name="uq_attempts_kind_name_attempt"),
    )
    op.create_table(
        "log_chunks",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("end_offset", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_log_chunks_owner", "log_chunks", ["kind", "name", "seq"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
    )
    op.create_index("ix_metrics_owner", "metrics", ["kind", "name", "metric", "id"])
    op.create_table(
        "kamado_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("kamado_meta", "metrics", "log_chunks", "attempts", "resources"):
        op.drop_table(table)
