"""Opening the ticket database from a command, with errors that say what to do."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database


def open_for_command(config: Config) -> Engine:
    try:
        return open_database(config.database_url)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
