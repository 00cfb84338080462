"""Alembic environment: runs on the connection consultant.database.migrate hands it.

On PostgreSQL an advisory lock makes concurrent upgrades (two pollers starting at
once on different machines) take turns instead of racing to create the same table.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from consultant.database.metadata import metadata

MIGRATION_LOCK = 0x43430001  # "CC" + 1: a fixed key for pg_advisory_xact_lock

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.run_migrations()
