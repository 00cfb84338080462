"""The SMTP ingress: 250 only after the message is stored, 451 when it cannot be, 550
for strangers' recipients, 552 over the size limit."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from consultant.config import IngestConfig, SmtpdConfig
from consultant.database.engine import make_engine
from consultant.database.migrate import open_database
from consultant.mail.smtp_ingress import make_controller, recipient_accepted
from consultant.tickets.intake import Intake
from consultant.tickets.models import Ticket
from tests.mailmaker import question, smtp_client
from tests.pdfmaker import hostile_pdf, mail_with
from tests.servers.ports import LOOPBACK, free_port

OURS = "consult@caseconsultant.example"


def serve(intake: Intake, max_bytes: int = 100_000) -> Iterator[int]:
    port = free_port()
    controller = make_controller(
        intake, SmtpdConfig(host=LOOPBACK, port=port, recipients=(OURS, "@help.example")), max_bytes
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def smtp_port(engine: Engine) -> Iterator[int]:
    yield from serve(Intake(engine, IngestConfig()))


def tickets(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Ticket)).one()


def test_a_message_is_stored_before_250(smtp_port: int, engine: Engine) -> None:
    with smtplib.SMTP(LOOPBACK, smtp_port, timeout=10) as client:
        code, reply = client.ehlo()
        assert code == 250 and b"SIZE 100000" in reply
        client.sendmail("coder@clinic.example", [OURS], question())
        # sendmail returned, so the server said 250: the ticket must already exist.
        assert tickets(engine) == 1
        client.sendmail("coder@clinic.example", ["anyone@help.example"], question("2nd"))
    assert tickets(engine) == 2


def test_unknown_recipients_are_refused_at_rcpt(smtp_port: int, engine: Engine) -> None:
    with (
        smtplib.SMTP(LOOPBACK, smtp_port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail("coder@clinic.example", ["someone@else.example"], question())
    assert refused.value.recipients["someone@else.example"][0] == 550
    assert tickets(engine) == 0


def test_the_size_limit_is_enforced(smtp_port: int, engine: Engine) -> None:
    with smtplib.SMTP(LOOPBACK, smtp_port, timeout=10) as client:
        client.ehlo()
        client.does_esmtp = False  # skip the client's own SIZE check, as a careless sender would
        with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as error:
            client.sendmail("coder@clinic.example", [OURS], question("made-up notes\n" * 20_000))
    assert error.value.smtp_code == 552
    assert tickets(engine) == 0


def test_a_database_outage_answers_451_so_the_sender_retries() -> None:
    closed = free_port()
    down = make_engine(f"postgresql+psycopg://postgres@{LOOPBACK}:{closed}/nothing")
    for port in serve(Intake(down, IngestConfig())):
        with (
            smtplib.SMTP(LOOPBACK, port, timeout=10) as client,
            pytest.raises(smtplib.SMTPDataError) as error,
        ):
            client.sendmail("coder@clinic.example", [OURS], question())
        assert error.value.smtp_code == 451


def test_recipient_rules() -> None:
    assert recipient_accepted("Consult@CaseConsultant.example", (OURS,))
    assert recipient_accepted("x@help.example", ("@help.example",))
    assert not recipient_accepted("x@sub.help.example", ("@help.example",))
    assert recipient_accepted("anyone@anywhere.example", ())


def test_real_world_long_lines_are_accepted(smtp_port: int, engine: Engine) -> None:
    long_line = b"<p>" + b"made-up table cell " * 400 + b"</p>"  # 7,600 octets on one line
    raw = question().replace(b"\n\n", b"\n\n" + long_line + b"\n", 1)
    with smtplib.SMTP(LOOPBACK, smtp_port, timeout=10) as client:
        client.sendmail("coder@clinic.example", [OURS], raw)
    assert tickets(engine) == 1


def test_consultant_smtpd_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    config.write_text(f'[database]\nurl = "{url}"\n[smtpd]\nrecipients = ["{OURS}"]\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "consultant", "--config", str(config), "smtpd", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with smtp_client(port) as client:
            client.sendmail("coder@clinic.example", [OURS], question())
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"smtpd-listening host=127.0.0.1 port={port}" in err
    assert "status=created" in err and "E11.65" not in err  # logs never carry text
    assert tickets(make_engine(url)) == 1


def test_a_hostile_pdf_is_stored_and_answered_250_at_once(engine: Engine) -> None:
    """50 pages that cost pypdf seconds each: the message is stored and answered
    without reading them (the drafting step does, within its limits)."""
    raw = mail_with([("scan.pdf", hostile_pdf())])
    for port in serve(Intake(engine, IngestConfig()), max_bytes=len(raw) * 2):
        started = time.monotonic()
        with smtplib.SMTP(LOOPBACK, port, timeout=10) as client:
            client.sendmail("coder@clinic.example", [OURS], raw)
        assert time.monotonic() - started < 5
    assert tickets(engine) == 1


@contextmanager
def locked(url: str) -> Iterator[None]:
    """Another client holding the database's write lock (SQLite) or the messages table
    (PostgreSQL): an intake waits for it."""
    engine = open_database(url)
    try:
        with engine.begin() as connection:  # BEGIN IMMEDIATE on SQLite
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def test_sigterm_stops_a_busy_smtpd_at_once_and_nothing_is_lost(
    tmp_path: Path, database_url: str
) -> None:
    """A message waiting on the database when SIGTERM comes: smtpd stops within a few
    seconds without answering it 250, so the sender keeps it and tries again."""
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[delivery]\nacknowledge = false\n')
    command = [sys.executable, "-m", "consultant", "--config", str(config), "smtpd"]
    process = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.PIPE, text=True)
    answers: list[object] = []
    try:
        with smtp_client(port) as client, locked(database_url):
            sender = threading.Thread(
                target=lambda: answers.append(_send(client, question())), daemon=True
            )
            sender.start()
            time.sleep(1)  # the message is with the intake, which waits for the lock
            assert not answers
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
            stopped = time.monotonic() - stopping
            sender.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate(timeout=30)
    assert stopped < 6, f"smtpd took {stopped:.1f} s to stop"
    assert process.returncode == 0
    (answer,) = answers
    assert isinstance(answer, smtplib.SMTPException)  # no 250: the sender retries
    assert "smtpd-stopped unanswered=1" in err
    assert tickets(open_database(database_url)) == 0


def _send(client: smtplib.SMTP, raw: bytes) -> object:
    try:
        return client.sendmail("coder@clinic.example", [OURS], raw)
    except smtplib.SMTPException as exc:
        return exc
