"""Top-level command group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from consultant.cli.analyze import analyze
from consultant.cli.codes import codes
from consultant.cli.db import db
from consultant.cli.ingest import ingest
from consultant.cli.poll import poll
from consultant.cli.run import run
from consultant.cli.smtpd import smtpd
from consultant.cli.tickets import tickets
from consultant.cli.users import users
from consultant.cli.web import web
from consultant.cli.worker import worker
from consultant.config import ConfigError, load_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CONSULTANT_CONFIG",
    help="TOML config file (default: $CONSULTANT_CONFIG, else the embedded default).",
)
@click.version_option(package_name="caseconsultant")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """CaseConsultant: medical coding questions by email, answered from official code sets."""
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(codes)
main.add_command(analyze)
main.add_command(db)
main.add_command(ingest)
main.add_command(poll)
main.add_command(run)
main.add_command(smtpd)
main.add_command(tickets)
main.add_command(users)
main.add_command(web)
main.add_command(worker)
