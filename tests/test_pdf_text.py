"""PDF attachments: stored at once, their text read afterwards in a child process that
is bounded by decompressed size ([ingest] extract_max_bytes) and killed at a deadline
([ingest] extract_seconds); what was not read says why, to the consultant."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.config import IngestConfig
from consultant.database.engine import make_engine
from consultant.drafting.ticket_draft import draft_ticket
from consultant.mail.attachments import extract_pdf_text
from consultant.mail.parse import parse_message
from consultant.tickets.intake import Intake
from consultant.tickets.models import Attachment, Blob, Draft
from consultant.tickets.references import parse_reference
from tests.pdfmaker import (
    bomb_stream,
    encrypted_pdf,
    hostile_pdf,
    mail_with,
    pdf,
    pdf_of_streams,
    shown,
)

MiB = 1 << 20
LIMIT = 64 * MiB


def test_the_text_of_a_pdf_is_read() -> None:
    note = pdf([shown("Arthroscopy for Jane Testpatient 29881"), shown("Dx M17.11")])
    result = extract_pdf_text(note, max_bytes=LIMIT, seconds=20)
    assert result.status == "read"
    assert "Arthroscopy for Jane Testpatient 29881" in result.text
    assert "Dx M17.11" in result.text


def test_a_hostile_pdf_is_stopped_at_the_deadline_keeping_the_pages_read() -> None:
    started = time.monotonic()
    result = extract_pdf_text(
        hostile_pdf(first=[shown("Dx M17.11 for a made-up patient")]), max_bytes=LIMIT, seconds=2
    )
    assert time.monotonic() - started < 4
    assert result.status == "timeout"
    assert "Dx M17.11" in result.text  # the first page was read before the deadline


def test_decompressed_size_is_bounded_across_the_whole_file() -> None:
    # Ten pages of 1 MiB each: no stream is large, but together they are over 3 MiB.
    padding = b" " * MiB
    pages = [shown(f"Made-up page {n}") + padding for n in range(10)]
    result = extract_pdf_text(pdf(pages), max_bytes=3 * MiB, seconds=20)
    assert result.status == "too-large"
    assert "Made-up page 0" in result.text
    assert "Made-up page 9" not in result.text


def test_a_decompression_bomb_is_never_inflated_whole() -> None:
    """A 256 MiB page in a 256 KB file: refused after 1 MiB, in a child that never
    holds the rest (its peak memory is measured from a fresh process)."""
    bomb = pdf_of_streams([bomb_stream(256 * MiB)])
    assert len(bomb) < 512 * 1024
    probe = (
        "import resource, sys\n"
        "from consultant.mail.attachments import extract_pdf_text\n"
        "result = extract_pdf_text(sys.stdin.buffer.read(), max_bytes=1 << 20, seconds=20)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(result.status, peak)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], input=bomb, capture_output=True, timeout=60, check=True
    )
    status, peak = done.stdout.split()
    assert status == b"too-large"
    assert int(peak) < 100 * MiB, f"the extraction child peaked at {int(peak) / MiB:.0f} MiB"


def test_encrypted_and_broken_pdfs_say_so() -> None:
    locked = extract_pdf_text(encrypted_pdf("Dx M17.11"), max_bytes=LIMIT, seconds=20)
    assert (locked.status, locked.text) == ("encrypted", "")
    broken = extract_pdf_text(b"%PDF-1.4\n1 0 obj << /Type /Catalog", max_bytes=LIMIT, seconds=20)
    assert (broken.status, broken.text) == ("broken", "")


def test_parsing_keeps_a_pdf_for_later_without_reading_it() -> None:
    started = time.monotonic()
    (attachment,) = parse_message(mail_with([("scan.pdf", hostile_pdf(pages=5))])).attachments
    assert time.monotonic() - started < 2  # pypdf would take over 20 s on these pages
    assert (attachment.text, attachment.extraction) == ("", "pending")
    assert attachment.data is not None


def test_a_pdf_over_the_attachment_cap_is_not_read_and_says_so() -> None:
    raw = mail_with([("big.pdf", pdf([shown("Dx M17.11") + b" " * 5000], compressed=False))])
    (attachment,) = parse_message(raw, max_attachment_bytes=1000).attachments
    assert (attachment.data, attachment.extraction) == (None, "not-stored")


def test_consultant_ingest_stores_a_hostile_pdf_at_once(tmp_path: Path) -> None:
    """The issue's case: 50 hostile pages kept `consultant ingest` busy for minutes
    with nothing stored; now the message and the PDF are committed at once."""
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[delivery]\nacknowledge = false\n')
    raw = mail_with([("scan.pdf", hostile_pdf())])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), "ingest", "-", "--json"],
        input=raw,
        capture_output=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "created"
    assert elapsed < 15, f"ingest took {elapsed:.1f} s"
    with Session(make_engine(url)) as session:
        (attachment,) = session.exec(select(Attachment)).all()
        assert (attachment.filename, attachment.extraction) == ("scan.pdf", "pending")
        blob = session.get(Blob, attachment.blob_sha256)
        assert blob is not None and blob.data.startswith(b"%PDF-")


def test_drafting_reads_pdfs_within_the_limits_and_says_what_it_could_not(
    engine: Engine,
) -> None:
    raw = mail_with(
        [
            ("op-note.pdf", pdf([shown("Post-op diagnosis E11.9 for Jane Testpatient")])),
            ("locked.pdf", encrypted_pdf("Dx M17.11")),
            ("scan.pdf", hostile_pdf()),
            ("late.pdf", pdf([shown("Dx M17.12")])),  # after the deadline: not tried
        ]
    )
    outcome = Intake(engine, IngestConfig()).accept(raw, "pipe")
    assert outcome.ticket is not None
    read: list[str] = []

    def analyzer(text: str) -> dict:
        read.append(text)
        return {"draft": "drafted", "findings": []}

    limits = IngestConfig(extract_seconds=3)
    started = time.monotonic()
    drafted = draft_ticket(engine, parse_reference(outcome.ticket), analyzer, limits=limits)
    assert time.monotonic() - started < 8  # one deadline for the message's attachments
    assert drafted.status == "drafted"
    (text,) = read
    assert "Post-op diagnosis E11.9" in text
    with Session(engine) as session:
        states = {
            a.filename: (a.extraction, bool(a.text))
            for a in session.exec(select(Attachment).order_by(col(Attachment.id)))
        }
        (draft,) = session.exec(select(Draft)).all()
    assert states == {
        "op-note.pdf": ("read", True),
        "locked.pdf": ("encrypted", False),
        "scan.pdf": ("timeout", False),
        "late.pdf": ("timeout", False),
    }
    unread = {f["message"] for f in draft.analysis["findings"] if f["kind"] == "attachment_unread"}
    late = "reading the message's attachments took longer than 3 s ([ingest] extract_seconds)"
    assert unread == {
        "The text of the attached PDF locked.pdf was not read: it is encrypted; ask the"
        " sender for a copy without a password.",
        f"The text of the attached PDF scan.pdf was not read: {late}.",
        f"The text of the attached PDF late.pdf was not read: {late}.",
    }
