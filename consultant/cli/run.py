"""`consultant run`: the whole service on one machine, in one command.

It starts the SMTP ingress, a poller for the config's [[mailboxes]] (if any), a queue
worker and the review app as child processes, and supervises them: a child that exits,
whatever its status, is started again after an exponential backoff (reset once it has
stayed up a while), each exit and restart logged, while the others keep serving, so a
worker killed mid-task never takes mail intake or the review app down with it. SIGTERM
or Ctrl-C stops them all.

Each child leads its own process group, so what it started (a Celery worker's pool
processes and its embedded beat) goes with it: a worker killed by SIGKILL cannot leave an
orphaned beat sending every periodic job twice, or a pool process holding a database lock
its successor waits on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import click

from consultant.config import Config
from consultant.logs import configure_logging, log_event

log = logging.getLogger(__name__)

STOP_SECONDS = 30  # how long a child may take to stop before it is killed
# Set in the children's environment: checks run once at start (the config file's
# permissions) are not repeated by each of them.
SUPERVISED = "CONSULTANT_SUPERVISED"


@dataclass
class Backoff:
    """How long to wait before starting a child again: FIRST seconds, doubling with each
    exit that follows a short run, up to CAP; a run of STEADY seconds starts over."""

    first: float = 1.0
    cap: float = 60.0
    steady: float = 60.0
    _exits: int = field(default=0, init=False)  # in a row, each after a short run

    def after(self, uptime: float) -> float:
        """The delay after an exit that followed UPTIME seconds up."""
        if uptime >= self.steady:
            self._exits = 0
        delay = min(self.first * 2**self._exits, self.cap)
        self._exits += 1
        return delay


@dataclass
class _Child:
    name: str
    command: list[str]
    backoff: Backoff = field(default_factory=Backoff)
    process: subprocess.Popen | None = None
    started: float = 0.0
    restart_at: float = 0.0  # when to start it again, while process is None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, env={**os.environ, SUPERVISED: "1"}, start_new_session=True
        )
        self.started = time.monotonic()
        log_event(log, "child-started", child=self.name, pid=self.process.pid)

    def check(self, now: float) -> None:
        """Start the child again when it is due; note its exit when it has exited."""
        if self.process is None:
            if now >= self.restart_at:
                self.start()
            return
        status = self.process.poll()
        if status is None:
            return
        _kill_group(self.process.pid)
        self.process = None
        delay = self.backoff.after(now - self.started)
        self.restart_at = now + delay
        log_event(
            log,
            "child-exited",
            logging.WARNING,
            child=self.name,
            status=_described(status),
            restart_in=f"{delay:g}s",
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log_event(log, "child-killed", logging.WARNING, child=self.name, after=STOP_SECONDS)
            self.process.kill()
            self.process.wait()
        _kill_group(self.process.pid)


def _kill_group(leader: int) -> None:
    """Kill what is left of an exited child's process group: the processes it started and
    did not stop (a SIGKILLed Celery worker's pool and beat)."""
    with contextlib.suppress(ProcessLookupError):  # empty: the child took its own with it
        os.killpg(leader, signal.SIGKILL)


def _described(status: int) -> str:
    """A Popen return code in words: 'exit 1', 'killed by SIGKILL'."""
    if status >= 0:
        return f"exit {status}"
    try:
        return f"killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"killed by signal {-status}"


@click.command()
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="Default: [smtpd] port.")
@click.option("--web-port", type=click.IntRange(1, 65535), help="Default: [web] port.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=2, show_default=True)
@click.pass_obj
def run(config: Config, smtp_port: int | None, web_port: int | None, concurrency: int) -> None:
    """Run ingestion (SMTP, and IMAP when mailboxes are configured), drafting, delivery
    and the review app; a part that stops is started again."""
    configure_logging()
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
    children = [_Child(name, command) for name, command in commands.items()]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    for child in children:
        child.start()
    while not stopping:
        time.sleep(0.2)
        for child in children:
            if not stopping:
                child.check(time.monotonic())
    for child in children:
        child.stop()
    for child in children:
        child.wait()
