"""`consultant run`: the whole service on one machine, in one command.

It starts the SMTP ingress, a poller for the config's [[mailboxes]] (if any) and a
queue worker as child processes, stops them all on SIGTERM or Ctrl-C, and stops the
rest when one of them exits, so a supervisor (systemd) sees the failure.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import click

from consultant.config import Config


@click.command()
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="Default: [smtpd] port.")
@click.option("--web-port", type=click.IntRange(1, 65535), help="Default: [web] port.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=2, show_default=True)
@click.pass_obj
def run(config: Config, smtp_port: int | None, web_port: int | None, concurrency: int) -> None:
    """Run ingestion (SMTP, and IMAP when mailboxes are configured), drafting, delivery
    and the review app."""
    base = [sys.executable, "-m", "consultant"]
    if config.source is not None:
        base += ["--config", str(config.source)]
    port = smtp_port or config.smtpd.port
    commands = {
        "smtpd": [*base, "smtpd", "--port", str(port)],
        "worker": [*base, "worker", "--concurrency", str(concurrency)],
        "web": [*base, "web", "--port", str(web_port or config.web.port)],
    }
    if config.mailboxes:
        commands["poll"] = [*base, "poll"]
    click.echo(f"Database: {config.database_url}")
    click.echo(f"Queue: {config.queue.broker_url}")
    click.echo(f"SMTP ingress: {config.smtpd.host}:{port} (mail a question there)")
    if config.mailboxes:
        click.echo("IMAP: " + ", ".join(m.name for m in config.mailboxes))
    if config.smtp.host:
        click.echo(f"Replies: sent through SMTP {config.smtp.host}:{config.smtp.port}")
    else:
        click.echo(
            f"Replies: written to the Maildir outbox {config.delivery.outbox} "
            "(no [smtp] host configured)"
        )
    click.echo(
        f"Review app: http://{config.web.host}:{web_port or config.web.port}/ "
        "(add yourself first: `consultant users add EMAIL`)"
    )
    click.echo("Stop with Ctrl-C.")
    children = {name: subprocess.Popen(command) for name, command in commands.items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    failed = None
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                failed = name
                stopping = True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    if failed is not None:
        raise click.ClickException(
            f"{failed} stopped (exit status {children[failed].returncode}); see its output above"
        )
