"""Bring a database to the newest schema, and open databases that are there.

Every command that touches the database upgrades it first, so the embedded default
needs no setup step; `consultant db upgrade` does the same explicitly for production
deploys that migrate before starting workers.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from consultant.database.engine import (
    DatabaseUnavailable,
    DatabaseUnusable,
    make_engine,
    reporting_unavailable,
)

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


CHECK_URL = "check [database] url and that the server is running"


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with (
        reporting_unavailable(engine, "cannot migrate {url}", CHECK_URL),
        engine.begin() as connection,
    ):
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with (
        reporting_unavailable(engine, "database {url} is unavailable", CHECK_URL),
        engine.connect() as connection,
    ):
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# What opening and migrating can raise besides an outage: the driver's refusals (a file
# that is no database), a URL or driver SQLAlchemy cannot use, a schema from a newer
# release, a folder for the SQLite file that cannot be made.
_UNUSABLE = (SQLAlchemyError, CommandError, ImportError, OSError)


def open_database(url: str) -> Engine:
    """An engine for URL with the schema at the newest revision; DatabaseUnavailable
    (DatabaseUnusable) with one line saying why when that cannot be had."""
    try:
        engine = make_engine(url)
        if current_revision(engine) != head_revision():
            upgrade(engine)
    except DatabaseUnavailable:
        raise
    except _UNUSABLE as exc:
        words = " ".join(str(exc.orig if isinstance(exc, DBAPIError) else exc).split())
        raise DatabaseUnusable(
            f"the ticket database cannot be opened: {words}; check [database] url and "
            "`consultant db status`"
        ) from exc
    return engine
