"""Top-level command group; each subcommand lives in its own module. Every command
keeps the files it makes to their owner (cli.private_files)."""

from __future__ import annotations

import os

import click

from consultant.cli.analyze import analyze
from consultant.cli.codes import codes
from consultant.cli.db import db
from consultant.cli.ingest import ingest, tempfail
from consultant.cli.poll import poll
from consultant.cli.private_files import PRIVATE_UMASK, private_data_dir, warn_if_readable
from consultant.cli.run import SUPERVISED, run
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
    caller_umask = os.umask(PRIVATE_UMASK)
    ctx.call_on_close(lambda: os.umask(caller_umask))  # for callers in the same process
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        if ctx.invoked_subcommand == ingest.name:  # an MTA's pipe: it keeps the mail
            raise tempfail(str(exc)) from None
        raise click.ClickException(str(exc)) from None
    private_data_dir(ctx.obj.data_dir)
    if SUPERVISED not in os.environ:  # `run` has warned once for all its children
        warn_if_readable(ctx.obj)


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
