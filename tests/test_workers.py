"""The queue end to end on real parts: `consultant ingest` queues a draft, a Celery
worker in its own process drafts it; on Redis and on the embedded SQLite broker; and a
ticket committed while Redis is down is drafted once Redis is back (the sweep)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session, select

from consultant.config import load_config
from consultant.database.engine import make_engine
from consultant.database.migrate import open_database
from consultant.tickets.intake import Intake
from consultant.tickets.models import Draft, Ticket
from consultant.tickets.references import parse_reference
from tests.mailmaker import question, smtp_client
from tests.servers.ports import free_ports
from tests.servers.redis import RedisServer
from workers.app import make_celery


def write_config(
    tmp_path: Path, code_db: Path, broker: str | None, queue: str = "", more: str = ""
) -> Path:
    """A config on a SQLite file in TMP_PATH; QUEUE adds [queue] keys, MORE other tables."""
    config = tmp_path / "config.toml"
    broker_url = f'broker_url = "{broker}"\n' if broker else ""
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n'
        f'[codes]\ndatabase = "{code_db}"\n'
        f"[queue]\n{broker_url}sweep_seconds = 1\n{queue}\n{more}"
    )
    return config


def consultant(config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def worker(config: Path, *options: str) -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-m", "consultant", "--config", str(config), "worker"]
    with (config.parent / "worker.log").open("ab") as log:  # to read when a test fails
        process = subprocess.Popen(
            [*command, "-c", "1", "--loglevel", "WARNING", *options],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its own process group: a test can kill it with its pool
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool at once, as a machine losing power would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_status(tmp_path: Path, status: str, seconds: float = 90, ticket_id: int = 1) -> Ticket:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")
    deadline = time.monotonic() + seconds
    while True:
        with Session(engine) as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is not None and ticket.status == status:
            return ticket
        assert time.monotonic() < deadline, f"ticket is {ticket and ticket.status}, not {status}"
        time.sleep(0.2)


def drafts(tmp_path: Path) -> list[Draft]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")
    with Session(engine) as session:
        return list(session.exec(select(Draft)))


def test_a_worker_on_redis_drafts_an_ingested_question(
    redis: RedisServer, code_db: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, code_db, redis.url)
    assert consultant(config, "ingest", stdin=question("Is E11.65 billable?")).returncode == 0
    with worker(config):
        wait_for_status(tmp_path, "ready")
    (draft,) = drafts(tmp_path)
    assert "E11.65" in draft.body


def test_the_embedded_broker_needs_no_server(code_db: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, code_db, None)
    assert consultant(config, "ingest", stdin=question("Is J1100 still valid?")).returncode == 0
    assert (tmp_path / "data" / "queue.sqlite").exists()  # the task waits in a file
    with worker(config):
        wait_for_status(tmp_path, "ready")
    (draft,) = drafts(tmp_path)
    assert "J1100" in draft.body


def test_a_ticket_committed_while_redis_is_down_is_drafted_when_it_is_back(
    redis: RedisServer, code_db: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, code_db, redis.url)
    redis.stop()
    ingested = consultant(config, "ingest", stdin=question("Is E11.65 billable?"))
    assert ingested.returncode == 0  # the mail is safe; only the queue request failed
    assert b"queue-unavailable" in ingested.stderr
    redis.start()
    with worker(config):
        wait_for_status(tmp_path, "ready")
    assert len(drafts(tmp_path)) == 1


def test_a_task_that_keeps_failing_leaves_the_ticket_failed_with_its_error(
    tmp_path: Path, code_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    config = load_config(
        write_config(tmp_path, code_db, None, more="[delivery]\nacknowledge = false\n")
    )
    make_celery(config).set_current()
    tasks._engine.cache_clear()
    outcome = Intake(open_database(config.database_url), config.ingest).accept(
        question("Is E11.65 billable?"), "pipe"
    )
    assert outcome.ticket is not None

    def broken(text: str) -> dict:
        raise RuntimeError("code database file is corrupt")

    monkeypatch.setattr(tasks, "_analyzer", lambda: broken)
    assert tasks.work.apply().get() == 1  # the failure is recorded; the task goes on
    ticket = wait_for_status(
        tmp_path, "failed", seconds=5, ticket_id=parse_reference(outcome.ticket)
    )
    assert ticket.error == "drafting failed: RuntimeError('code database file is corrupt')"
    tasks._engine.cache_clear()


def test_consultant_run_takes_mail_drafts_it_and_serves_the_review_app(
    code_db: Path, tmp_path: Path
) -> None:
    """The embedded default end to end: `consultant run`, a question mailed to its SMTP
    ingress, a draft ready for review, the review app answering; SIGTERM stops all."""
    config = write_config(tmp_path, code_db, None)
    port, web_port = free_ports(2)  # distinct: both are bound only later, by `run`
    command = [sys.executable, "-m", "consultant", "--config", str(config), "run"]
    with (tmp_path / "run.log").open("ab") as log:  # to read when the test fails
        process = subprocess.Popen(
            [*command, "--smtp-port", str(port), "--web-port", str(web_port), "-c", "1"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        with smtp_client(port) as client:
            client.sendmail(
                "coder@clinic.example",
                ["consult@caseconsultant.example"],
                question("Is E11.65 billable?"),
            )
        wait_for_status(tmp_path, "ready")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login") as page:
                    assert b"Log in" in page.read()
                    break
            except OSError:
                assert time.monotonic() < deadline, "the review app does not answer"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"SMTP ingress: 127.0.0.1:{port}" in output
    assert f"Review app: http://127.0.0.1:{web_port}/" in output
    (draft,) = drafts(tmp_path)
    assert "E11.65" in draft.body
