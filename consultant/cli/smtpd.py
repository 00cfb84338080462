"""`consultant smtpd`: receive mail over SMTP straight into tickets."""

from __future__ import annotations

import signal
import threading
from dataclasses import replace

import click

from consultant.cli.database import open_for_command
from consultant.cli.queueing import queued_intake
from consultant.config import Config
from consultant.logs import configure_logging, log_event
from consultant.mail.smtp_ingress import log, make_controller


@click.command()
@click.option("--host", help="Address to listen on (default: [smtpd] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [smtpd] port).")
@click.pass_obj
def smtpd(config: Config, host: str | None, port: int | None) -> None:
    """Run the SMTP ingress until SIGTERM or Ctrl-C.

    Put it behind your MTA (a transport or relay to this port) or point a test client
    at it; it answers 451 when it cannot store a message, so nothing is lost.
    """
    configure_logging()
    smtp_config = replace(
        config.smtpd,
        host=host or config.smtpd.host,
        port=config.smtpd.port if port is None else port,
    )
    intake = queued_intake(config, open_for_command(config))
    controller = make_controller(intake, smtp_config, config.ingest.max_message_bytes)
    controller.start()
    log_event(log, "smtpd-listening", host=smtp_config.host, port=controller.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        controller.stop()
