"""`consultant ingest`: messages from files or an MTA pipe into tickets.

Exit status 75 (EX_TEMPFAIL) when the database is unavailable tells Postfix, Exim or
sendmail to keep the message queued and try again, so an outage loses nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from consultant.cli.queueing import queued_intake
from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database

EX_TEMPFAIL = 75


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line per message.")
@click.pass_obj
def ingest(config: Config, files: tuple[str, ...], as_json: bool) -> None:
    """Store each message (FILE, or - / none for standard input) as a ticket.

    Prints per message its ticket, status (created, appended, duplicate, ignored,
    rejected) and reason.
    """
    try:
        intake = queued_intake(config, open_database(config.database_url))
        for name in files or ("-",):
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            outcome = intake.accept(raw, "pipe")
            if as_json:
                click.echo(json.dumps({"file": name, **outcome.to_dict()}, ensure_ascii=False))
            else:
                click.echo(
                    f"{name}: {outcome.status} {outcome.ticket or '-'}"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
    except DatabaseUnavailable as exc:
        click.echo(
            f"Error: {exc}\nNothing was stored; exit status 75 tells the mail server to "
            "keep the message and retry.",
            err=True,
        )
        sys.exit(EX_TEMPFAIL)
