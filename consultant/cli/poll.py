"""`consultant poll`: configured IMAP mailboxes into tickets."""

from __future__ import annotations

import signal
import sys
import threading

import click

from consultant.cli.ingest import EX_TEMPFAIL
from consultant.cli.queueing import queued_intake
from consultant.config import Config, ConfigError
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database
from consultant.logs import configure_logging
from consultant.mail.imap_connection import MailboxConfigError
from consultant.mail.imap_poller import CONNECTION_ERRORS, MailboxBusy, MailboxPoller


@click.command()
@click.option("--once", is_flag=True, help="Read what is waiting now, then exit.")
@click.option("--mailbox", "names", multiple=True, help="Only this mailbox (repeatable).")
@click.pass_obj
def poll(config: Config, once: bool, names: tuple[str, ...]) -> None:
    """Poll the [[mailboxes]] of the config, with IDLE where the server offers it.

    Without --once it runs until SIGTERM or Ctrl-C, one thread per mailbox, and waits
    out server, network and database outages. Exit status 75 means the database was
    unavailable (--once only).
    """
    try:
        mailboxes = [config.mailbox(n) for n in names] if names else list(config.mailboxes)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not mailboxes:
        raise click.ClickException(
            "no [[mailboxes]] in the config; add one (see config.example.toml)"
        )
    configure_logging()
    stop = threading.Event()
    try:
        intake = queued_intake(config, open_database(config.database_url))
        pollers = [MailboxPoller(m, intake, stop=stop) for m in mailboxes]
        if once:
            for poller in pollers:
                stored = poller.run_once()
                click.echo(f"{poller.config.name}: {stored} message(s) stored")
            return
    except DatabaseUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    except (MailboxBusy, MailboxConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except CONNECTION_ERRORS as exc:
        raise click.ClickException(
            f"cannot read the mailbox: {exc}; check host, port, tls and credentials"
        ) from None

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threads = [
        threading.Thread(target=p.run_forever, name=f"poll-{p.config.name}") for p in pollers
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)
