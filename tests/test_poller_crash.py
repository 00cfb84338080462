"""`consultant poll` as a process: SIGKILL it at random points mid-batch, restart it, and
count (every message
becomes a ticket exactly once and ends in the processed folder); several mailboxes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from consultant.database.engine import make_engine
from consultant.tickets.models import Message, Ticket
from tests.mailmaker import question
from tests.servers.dovecot import Dovecot

MESSAGES = 400


def write_config(path: Path, database_url: str, dovecot: Dovecot, user: str) -> None:
    path.write_text(
        f"""
[database]
url = "{database_url}"

[ingest]
rate_limit = 0

[[mailboxes]]
name = "consult"
host = "{dovecot.host}"
port = {dovecot.port("none")}
tls = "none"
username = "{user}"
password = "{dovecot.password(user)}"
batch_size = 4
lease_seconds = 1
"""
    )


def poll(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "consultant", "--config", str(config), "poll", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_mid_batch_loses_and_doubles_nothing(
    dovecot: Dovecot, mail_user: str, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, database_url, dovecot, mail_user)
    dovecot.append(
        mail_user,
        "INBOX",
        [
            question(f"Question {i} about J1100", message_id=f"<kill{i}@c.example>")
            for i in range(MESSAGES)
        ],
    )
    engine = make_engine(database_url)

    seen = [0]

    def stored() -> int:
        """Tickets stored so far; the count never falls, so a read that fails (no schema
        before the first poller makes it, SQLite busy with the poller's write) is the last
        one read, not 0: a 0 would wait out the deadline while the poller drains it all."""
        try:
            with Session(engine) as session:
                seen[0] = session.exec(select(func.count()).select_from(Ticket)).one()
        except Exception:
            pass
        return seen[0]

    rng = random.Random(20261125)
    kills = 0
    while stored() < MESSAGES and kills < 12:
        process = poll(config)
        start = stored()
        target = start + rng.randint(1, 12)
        deadline = time.monotonic() + 60
        while stored() < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.01))  # land anywhere in the next batch
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        time.sleep(1.05)  # the killed poller's lease expires
    assert kills >= 5, "the poller finished too fast to be killed mid-run"
    finisher = poll(config, "--once")
    assert finisher.wait(timeout=120) == 0

    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == MESSAGES
        ids = session.exec(select(Message.message_id)).all()
    assert sorted(ids) == sorted(f"kill{i}@c.example" for i in range(MESSAGES))
    assert dovecot.folder_uids(mail_user, "INBOX") == []
    assert len(dovecot.folder_uids(mail_user, "Processed")) == MESSAGES


def test_poll_once_reads_every_configured_mailbox(dovecot: Dovecot, tmp_path: Path) -> None:
    users = []
    for number in (1, 2):
        user = f"multi{number}"
        dovecot.add_user(user, f"secret-{number}")
        dovecot.append(user, "INBOX", [question(f"Mailbox {number}: is J1100 valid?")])
        users.append(user)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n'
        + "".join(
            f'[[mailboxes]]\nname = "box{n}"\nhost = "{dovecot.host}"\n'
            f'port = {dovecot.port("none")}\ntls = "none"\nusername = "{user}"\n'
            f'password = "{dovecot.password(user)}"\n'
            for n, user in enumerate(users, 1)
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), "poll", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["box1: 1 message(s) stored", "box2: 1 message(s) stored"]
    only = subprocess.run(
        [
            sys.executable,
            "-m",
            "consultant",
            "--config",
            str(config),
            "poll",
            "--once",
            "--mailbox",
            "box3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert only.returncode == 1 and "configured: box1, box2" in only.stderr


def test_sigterm_stops_the_poller_cleanly_and_frees_the_mailbox(
    dovecot: Dovecot, mail_user: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    config = tmp_path / "config.toml"
    write_config(config, url, dovecot, mail_user)
    config.write_text(config.read_text().replace("lease_seconds = 1", "lease_seconds = 600"))
    process = poll(config)
    dovecot.append(mail_user, "INBOX", [question("Is Z79.4 billable?")])
    engine = make_engine(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with Session(engine) as session:
                if session.exec(select(func.count()).select_from(Ticket)).one() == 1:
                    break
        except Exception:  # the schema may not exist yet
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    # The lease was released: another poller takes the mailbox at once, not in 600 s.
    assert poll(config, "--once").wait(timeout=60) == 0
