"""Append-only event histories (pipeline executions); resource names up to 256 characters.

Execution names are unique per state machine, so an execution is stored as ``<machine>:<execution>``, up
to 161 characters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table (it cannot ALTER a column); PostgreSQL alters it in place.
    with op.batch_alter_table("resources") as batch:
        batch.alter_column("name", type_=sa.String(256), existing_type=sa.String(128), existing_nullable=False)
    op.create_table(
        "history_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("previous_event_id", sa.Integer, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.UniqueConstraint("kind", "name", "event_id", name="uq_history_events_owner_event"),
    )


def downgrade() -> None:
    op.drop_table("history_events")
    with op.batch_alter_table("resources") as batch:
        batch.alter_column("name", type_=sa.String(128), existing_type=sa.String(256), existing_nullable=False)
