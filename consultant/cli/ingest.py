"""`consultant ingest`: messages from files or an MTA pipe into tickets.

Exit status 75 (EX_TEMPFAIL) whenever the config or the ticket database stands in the
way tells Postfix, Exim or sendmail to keep the message queued and try again, so a
broken deploy or an outage loses nothing. A file named on the command line that cannot
be read is the caller's mistake, not a temporary failure: it is skipped, the others are
still stored, and the command ends with 66 (EX_NOINPUT).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from consultant.cli.queueing import queued_intake
from consultant.config import Config, ConfigError
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database
from consultant.tickets.intake import Intake

EX_NOINPUT = 66
EX_TEMPFAIL = 75


def tempfail(problem: str) -> click.ClickException:
    """PROBLEM as one line on stderr (a driver's message spans several) and exit status
    75, for the mail server to retry."""
    error = click.ClickException(
        f"{' '.join(problem.split()).rstrip('.')}. Exit status 75: the mail server keeps "
        "the message and will retry."
    )
    error.exit_code = EX_TEMPFAIL
    return error


def _words(exc: BaseException) -> str:
    """EXC's own words: for a driver's error without the statement and link SQLAlchemy
    adds."""
    return str(exc.orig if isinstance(exc, DBAPIError) else exc)


def _intake(config: Config) -> Intake:
    try:
        return queued_intake(config, open_database(config.database_url))
    except (ConfigError, DatabaseUnavailable) as exc:
        raise tempfail(_words(exc)) from None


@click.command()
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line per message.")
@click.pass_obj
def ingest(config: Config, files: tuple[str, ...], as_json: bool) -> None:
    """Store each message (FILE, or - / none for standard input) as a ticket.

    Prints per message its ticket, status (created, appended, duplicate, ignored,
    rejected) and reason; for standard input (an MTA's pipe, whose output may reach the
    sender in a bounce) the status and reason only, never a ticket reference, unless
    --json asks for it. Exits 75 when the config or the database is at fault (a mail
    server then retries), 66 when a FILE could not be read.
    """
    intake = _intake(config)
    unreadable = False
    for name in files or ("-",):
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            click.echo(
                f"Error: cannot read {name}: {exc.strerror or exc}; it was skipped", err=True
            )
            unreadable = True
            continue
        try:
            outcome = intake.accept(raw, "pipe")
        except SQLAlchemyError as exc:
            raise tempfail(f"the ticket database refused the message: {_words(exc)}") from None
        except DatabaseUnavailable as exc:
            raise tempfail(_words(exc)) from None
        if as_json:
            click.echo(json.dumps({"file": name, **outcome.to_dict()}, ensure_ascii=False))
        else:
            ticket = "" if name == "-" else f" {outcome.ticket or '-'}"
            click.echo(
                f"{name}: {outcome.status}{ticket}"
                + (f" ({outcome.reason})" if outcome.reason else "")
            )
    if unreadable:
        sys.exit(EX_NOINPUT)
