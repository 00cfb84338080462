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
from sqlalchemy import Engine

from consultant.database.engine import make_engine, reporting_unavailable

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


def open_database(url: str) -> Engine:
    """An engine for URL with the schema at the newest revision."""
    engine = make_engine(url)
    if current_revision(engine) != head_revision():
        upgrade(engine)
    return engine
