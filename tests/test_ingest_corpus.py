"""All 1,662 real-world messages of ../shared/corpora/email, through `consultant ingest`
and through IMAP (a real Dovecot): each ends as a ticket, a recorded and flagged
message, a duplicate or a recorded rejection with a reason, and nothing stops the
messages behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from consultant.config import IngestConfig, MailboxConfig
from consultant.database.migrate import open_database
from consultant.mail.imap_poller import MailboxPoller
from consultant.tickets.intake import STATUSES, Intake
from consultant.tickets.models import Message, RejectedMessage, Ticket
from tests.corpus import corpus_files
from tests.servers.dovecot import Dovecot


def rows(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def ingest_all(config: Path, files: list[Path]) -> list[dict]:
    """`consultant ingest --json FILE...` as an MTA would run it: one result per file."""
    run = subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), "ingest", "--json"]
        + [str(path) for path in files],
        capture_output=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    return [json.loads(line) for line in run.stdout.decode().splitlines()]


def test_every_corpus_message_through_consultant_ingest(tmp_path: Path) -> None:
    files = corpus_files()
    assert len(files) == 1662
    url = f"sqlite:///{tmp_path / 'tickets.sqlite'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[ingest]\nrate_limit = 0\n')
    results = ingest_all(config, files)
    assert [r["file"] for r in results] == list(map(str, files))
    assert {r["status"] for r in results} <= set(STATUSES)
    for result in results:
        if result["status"] in ("rejected", "ignored", "duplicate"):
            assert result["reason"], result
        if result["status"] in ("created", "appended"):
            assert result["ticket"].startswith("CC-")
    counts = {s: sum(r["status"] == s for r in results) for s in STATUSES}
    assert counts["created"] > 400 and counts["ignored"] > 500
    reasons = {r["reason"] for r in results if r["status"] == "rejected"}
    assert reasons == {
        "empty message (0 bytes)",
        "an Outlook .msg file, not an RFC 5322 message; ask the sender to forward it as email",
        "no sender address (From or Reply-To) to answer",
    }
    assert counts["rejected"] < 110  # 60 test fixtures have no headers at all

    engine = open_database(url)
    assert rows(engine, Ticket) == counts["created"]
    rejected = {
        p.read_bytes() for p, r in zip(files, results, strict=True) if r["status"] == "rejected"
    }
    assert rows(engine, RejectedMessage) == len(rejected)  # one row per distinct input
    with Session(engine) as session:
        texts = session.exec(select(Message.text, Message.subject)).all()
    assert all("\x00" not in text and "\r" not in text for pair in texts for text in pair)

    statuses = {r["status"] for r in ingest_all(config, files)}
    assert statuses <= {"duplicate", "rejected", "ignored"}
    assert rows(engine, Ticket) == counts["created"]


def test_every_corpus_message_through_imap(
    dovecot: Dovecot, mail_user: str, database_url: str
) -> None:
    files = corpus_files()
    appended = dovecot.append(mail_user, "INBOX", (p.read_bytes() for p in files))
    # Dovecot refuses only what no IMAP server can hold; the rest is the ingester's job.
    assert len(appended.uids) > 1600, appended.refused
    engine = open_database(database_url)
    config = MailboxConfig(
        name="corpus",
        host=dovecot.host,
        port=dovecot.port("none"),
        username=mail_user,
        password=dovecot.password(mail_user),
        tls="none",
        batch_size=100,
    )
    intake = Intake(engine, IngestConfig(rate_limit=0))
    assert MailboxPoller(config, intake).run_once() == len(appended.uids)
    assert dovecot.folder_uids(mail_user, "INBOX") == []

    # Every message the server holds was recorded exactly once: fed again, each is a
    # duplicate or an already-recorded rejection, and nothing new is stored.
    before = (rows(engine, Ticket), rows(engine, Message), rows(engine, RejectedMessage))
    with dovecot.imap_client(mail_user) as client:
        client.select_folder("Processed", readonly=True)
        uids = client.search("ALL")
        assert len(uids) == len(appended.uids)
        for start in range(0, len(uids), 200):
            fetched = client.fetch(uids[start : start + 200], ["BODY.PEEK[]"])
            raws = [data[b"BODY[]"] for data in fetched.values()]
            outcomes = intake.accept_batch(raws, "recheck")
            assert {o.status for o in outcomes} <= {"duplicate", "rejected"}
    after = (rows(engine, Ticket), rows(engine, Message), rows(engine, RejectedMessage))
    assert after == before
