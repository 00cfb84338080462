"""`consultant db`: the ticket database's schema."""

from __future__ import annotations

import click

from consultant.cli.output import emit_json
from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable, make_engine
from consultant.database.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Migrate and inspect the ticket database ([database] url)."""


@db.command("upgrade")
@click.pass_obj
def upgrade_command(config: Config) -> None:
    """Bring the schema to the newest revision (every command also does this itself)."""
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        click.echo(f"Database at revision {current_revision(engine)}.")
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_command(config: Config, as_json: bool) -> None:
    """The database's URL (without password) and its schema revision."""
    engine = make_engine(config.database_url)
    try:
        current = current_revision(engine)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    head = head_revision()
    info = {
        "url": engine.url.render_as_string(hide_password=True),
        "revision": current,
        "newest": head,
        "up_to_date": current == head,
    }
    if as_json:
        emit_json(info)
    else:
        state = "up to date" if current == head else "behind: run `consultant db upgrade`"
        click.echo(f"{info['url']}: revision {current or '(empty)'} of {head} ({state})")
