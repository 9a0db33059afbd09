"""Per-project resources: ``resources.project`` (existing rows land in ``default``) and an index for
project-filtered listing (``kind, project, created_at``); per-project secrets: ``secret_versions.project``
(existing secrets land in ``default``), unique per ``(project, name, version)``; scoped tokens:
``api_tokens.scope`` (NULL for existing tokens: all of their principal's rights).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A NOT NULL column with a server default: SQLite and PostgreSQL both add it in place and fill old rows.
    op.add_column("resources", sa.Column("project", sa.String(64), nullable=False, server_default="default"))
    op.create_index("ix_resources_kind_project_created", "resources", ["kind", "project", "created_at"])
    op.add_column("api_tokens", sa.Column("scope", sa.Text, nullable=True))
    # batch mode: SQLite cannot alter a unique constraint in place, so Alembic copies the table.
    with op.batch_alter_table("secret_versions") as batch:
        batch.add_column(sa.Column("project", sa.String(64), nullable=False, server_default="default"))
        batch.drop_constraint("uq_secret_versions", type_="unique")
        batch.create_unique_constraint("uq_secret_versions", ["project", "name", "version"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("secret_versions") as batch:
        batch.drop_constraint("uq_secret_versions", type_="unique")
        batch.create_unique_constraint("uq_secret_versions", ["name", "version"])
        batch.drop_column("project")
    op.drop_index("ix_resources_kind_project_created", table_name="resources")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("project")
