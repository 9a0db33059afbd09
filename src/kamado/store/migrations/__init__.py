"""Alembic migrations for the metadata store. Run by ``SqlStore`` on open; no alembic.ini needed."""
