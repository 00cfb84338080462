"""The IMAP poller against a real Dovecot: batches, TLS, XOAUTH2, IDLE, UIDVALIDITY,
leases, outages and crashes."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from sqlalchemy import Engine, func, make_url
from sqlmodel import Session, select

from consultant.config import IngestConfig, MailboxConfig
from consultant.database.migrate import open_database
from consultant.mail.imap_poller import MailboxBusy, MailboxPoller
from consultant.tickets.intake import Intake
from consultant.tickets.mailbox_state import acquire_lease, load_progress
from consultant.tickets.models import Message, Ticket
from tests.mailmaker import question
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import PostgresServer

CONFIG = IngestConfig()


def mailbox_for(dovecot: Dovecot, user: str, **overrides: object) -> MailboxConfig:
    settings: dict = {
        "name": f"box-{user}",
        "host": dovecot.host,
        "port": dovecot.port("none"),
        "username": user,
        "password": dovecot.password(user),
        "tls": "none",
        "ca_file": dovecot.ca_path,
        "lease_seconds": 3.0,
        "poll_interval": 0.5,
        "timeout": 10.0,
    }
    settings.update(overrides)
    if settings["tls"] != "none" and "port" not in overrides:
        settings["port"] = dovecot.port(settings["tls"])
    return MailboxConfig(**settings)


def questions(n: int, prefix: str = "q") -> list[bytes]:
    return [
        question(
            f"Question {i}: is E11.{i % 10} billable?", message_id=f"<{prefix}{i}@clinic.example>"
        )
        for i in range(n)
    ]


def tickets(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Ticket)).one()


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_pass_stores_every_message_once_then_moves_it(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    dovecot.append(mail_user, "INBOX", questions(7))
    poller = MailboxPoller(mailbox_for(dovecot, mail_user), Intake(engine, CONFIG))
    assert poller.run_once() == 7
    assert tickets(engine) == 7
    assert dovecot.folder_uids(mail_user, "INBOX") == []
    assert len(dovecot.folder_uids(mail_user, "Processed")) == 7
    assert poller.run_once() == 0
    assert tickets(engine) == 7
    with Session(engine) as session:
        sources = set(session.exec(select(Message.source)).all())
    assert sources == {f"imap:box-{mail_user}"}


def test_messages_are_fetched_many_per_command(
    dovecot: Dovecot, mail_user: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append(mail_user, "INBOX", questions(45))
    calls: list[int] = []
    original = IMAPClient.fetch

    def counting(self: IMAPClient, messages, data, modifiers=None):  # type: ignore[no-untyped-def]
        calls.append(len(messages))
        return original(self, messages, data, modifiers)

    monkeypatch.setattr(IMAPClient, "fetch", counting)
    poller = MailboxPoller(mailbox_for(dovecot, mail_user, batch_size=20), Intake(engine, CONFIG))
    assert poller.run_once() == 45
    # One FETCH of sizes for the lot (batch_size x 4), then bodies 20, 20 and 5 at a time.
    assert calls == [45, 20, 20, 5]


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_is_verified_against_the_configured_ca(
    dovecot: Dovecot, mail_user: str, engine: Engine, tls: str
) -> None:
    dovecot.append(mail_user, "INBOX", questions(2, prefix=tls))
    untrusted = MailboxPoller(
        mailbox_for(dovecot, mail_user, tls=tls, ca_file=None), Intake(engine, CONFIG)
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.run_once()
    assert tickets(engine) == 0
    trusted = MailboxPoller(mailbox_for(dovecot, mail_user, tls=tls), Intake(engine, CONFIG))
    assert trusted.run_once() == 2


def test_verification_can_be_turned_off_explicitly(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    config = mailbox_for(dovecot, mail_user, tls="implicit", ca_file=None, verify_tls=False)
    assert MailboxPoller(config, Intake(engine, CONFIG)).run_once() == 0


def test_xoauth2_login_with_a_token_command(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    dovecot.add_token(mail_user, f"token-for-{mail_user}")
    dovecot.append(mail_user, "INBOX", questions(1, prefix="oauth"))
    config = mailbox_for(
        dovecot,
        mail_user,
        password=None,
        oauth2_token_command=f"echo token-for-{mail_user}",
        tls="starttls",
    )
    assert MailboxPoller(config, Intake(engine, CONFIG)).run_once() == 1
    wrong = replace(config, oauth2_token_command="echo not-a-token")
    with pytest.raises(LoginError):
        MailboxPoller(wrong, Intake(engine, CONFIG)).run_once()


def test_flag_mode_leaves_messages_in_place(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    dovecot.append(mail_user, "INBOX", questions(3, prefix="flag"))
    config = mailbox_for(dovecot, mail_user, processed_folder=None)
    poller = MailboxPoller(config, Intake(engine, CONFIG))
    assert poller.run_once() == 3
    with dovecot.imap_client(mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert len(flags) == 3
    assert all(b"$CaseConsultant" in f and b"\\Seen" not in f for f in flags.values())
    assert poller.run_once() == 0 and tickets(engine) == 3


def test_a_crash_between_commit_and_move_neither_loses_nor_doubles(
    dovecot: Dovecot, mail_user: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append(mail_user, "INBOX", questions(10, prefix="crash"))
    config = mailbox_for(dovecot, mail_user, batch_size=4)

    class Killed(BaseException):
        pass

    def die(self: MailboxPoller, client: IMAPClient, uids: list[int]) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(MailboxPoller, "_mark_processed", die)
        with pytest.raises(Killed):
            MailboxPoller(config, Intake(engine, CONFIG), owner="dead").run_once()
    assert tickets(engine) == 4  # the first batch committed, then the "crash"
    assert len(dovecot.folder_uids(mail_user, "INBOX")) == 10
    time.sleep(config.lease_seconds)  # the dead poller's lease runs out
    assert MailboxPoller(config, Intake(engine, CONFIG)).run_once() == 6
    assert tickets(engine) == 10
    assert dovecot.folder_uids(mail_user, "INBOX") == []
    assert len(dovecot.folder_uids(mail_user, "Processed")) == 10


def test_a_uidvalidity_change_rescans_and_catches_duplicates(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    dovecot.create_folder(mail_user, "Consult")
    messages = questions(4, prefix="uv")
    dovecot.append(mail_user, "Consult", messages)
    config = mailbox_for(dovecot, mail_user, folder="Consult")
    assert MailboxPoller(config, Intake(engine, CONFIG)).run_once() == 4
    before = load_progress(engine, config.name)
    # The folder is recreated (as after a server migration): new UIDVALIDITY, UIDs from 1,
    # holding the same four messages and one new one.
    with dovecot.imap_client(mail_user) as client:
        client.delete_folder("Consult")
    dovecot.create_folder(mail_user, "Consult")
    dovecot.append(mail_user, "Consult", [*messages, *questions(1, prefix="uv-new")])
    assert MailboxPoller(config, Intake(engine, CONFIG)).run_once() == 5
    after = load_progress(engine, config.name)
    assert after.uidvalidity != before.uidvalidity
    assert tickets(engine) == 5  # the four old ones were duplicates
    assert dovecot.folder_uids(mail_user, "Consult") == []


def test_one_poller_per_mailbox(dovecot: Dovecot, mail_user: str, engine: Engine) -> None:
    config = mailbox_for(dovecot, mail_user, lease_seconds=30.0)
    assert acquire_lease(engine, config.name, "other-machine:1", config.lease_seconds)
    with pytest.raises(MailboxBusy, match="another poller"):
        MailboxPoller(config, Intake(engine, CONFIG)).run_once()


def test_idle_brings_new_mail_in_promptly(dovecot: Dovecot, mail_user: str, engine: Engine) -> None:
    config = mailbox_for(dovecot, mail_user)
    poller = MailboxPoller(config, Intake(engine, CONFIG))
    thread = threading.Thread(target=poller.run_forever)
    thread.start()
    try:
        time.sleep(0.5)
        dovecot.append(mail_user, "INBOX", questions(2, prefix="idle"))
        wait_for(lambda: tickets(engine) == 2)
        dovecot.append(mail_user, "INBOX", questions(1, prefix="idle-more"))
        wait_for(lambda: tickets(engine) == 3)
    finally:
        poller.stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_polling_without_idle_and_reconnecting_after_a_drop(
    dovecot: Dovecot, mail_user: str, engine: Engine
) -> None:
    config = mailbox_for(dovecot, mail_user, idle=False)
    poller = MailboxPoller(config, Intake(engine, CONFIG))
    thread = threading.Thread(target=poller.run_forever)
    thread.start()
    try:
        dovecot.append(mail_user, "INBOX", questions(1, prefix="poll"))
        wait_for(lambda: tickets(engine) == 1)
        subprocess.run(
            ["doveadm", "-c", str(dovecot.config_path), "kick", mail_user],
            check=True,
            capture_output=True,
        )
        dovecot.append(mail_user, "INBOX", questions(1, prefix="poll-after"))
        wait_for(lambda: tickets(engine) == 2, seconds=30)
    finally:
        poller.stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_a_real_postgresql_outage_is_waited_out(
    dovecot: Dovecot, mail_user: str, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The database refuses every connection (as when it is down) while mail arrives:
    the poller waits, moves nothing, and stores everything once it is back."""
    engine = open_database(postgres_url)
    name = make_url(postgres_url).database

    def allow(on: bool) -> None:
        with psycopg.connect(postgres_server.conninfo(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(on).lower()}')
            if not on:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )

    dovecot.append(mail_user, "INBOX", questions(3, prefix="down"))
    allow(False)
    poller = MailboxPoller(mailbox_for(dovecot, mail_user), Intake(engine, CONFIG))
    thread = threading.Thread(target=poller.run_forever)
    thread.start()
    try:
        time.sleep(2)
        assert len(dovecot.folder_uids(mail_user, "INBOX")) == 3
        allow(True)
        wait_for(lambda: tickets(engine) == 3, seconds=60)
    finally:
        allow(True)
        poller.stop.set()
        thread.join(timeout=20)
    assert dovecot.folder_uids(mail_user, "INBOX") == []
