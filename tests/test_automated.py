"""Auto-replies, bounces and list mail are recognized, so they never get a drafted answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.mail.automated import automated_reason
from consultant.mail.message import read_mail

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "email"

QUESTION = (
    "From: Dana Coder <dana@example-clinic.test>\n"
    "To: questions@caseconsultant.test\n"
    "Return-Path: <dana@example-clinic.test>\n"
    "Subject: Is E11.22 billable?\n"
    "{extra}"
    "Content-Type: text/plain\n\n"
    "Is E11.22 billable with N18.31?\n"
)


def reason(extra: str = "", subject: str | None = None) -> str | None:
    raw = QUESTION.format(extra=extra)
    if subject is not None:
        raw = raw.replace("Subject: Is E11.22 billable?", f"Subject: {subject}")
    return automated_reason(read_mail(raw.encode()).message)


def test_a_person_s_question_is_not_automated() -> None:
    assert reason() is None


def test_plain_text_is_never_automated() -> None:
    assert automated_reason(read_mail(b"Is E11.22 billable?").message) is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("Auto-Submitted: auto-replied\n", "Auto-Submitted"),
        ("Auto-Submitted: auto-generated; owner-email=x@example.test\n", "Auto-Submitted"),
        ("Precedence: bulk\n", "Precedence"),
        ("Precedence: junk\n", "Precedence"),
        ("Precedence: list\n", "Precedence"),
        ("Precedence: auto_reply\n", "Precedence"),
        ("X-Autoreply: yes\n", "X-Autoreply"),
        ("X-Autorespond: Out of office\n", "X-Autorespond"),
        ("X-Auto-Response-Suppress: All\n", "X-Auto-Response-Suppress"),
        ("List-Id: Coders <coders.lists.example.test>\n", "List-Id"),
    ],
)
def test_header_signals(extra: str, expected: str) -> None:
    found = reason(extra)
    assert found is not None and expected in found


def test_auto_submitted_no_is_a_person() -> None:
    assert reason("Auto-Submitted: no\n") is None
    assert reason("Precedence: first-class\n") is None


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.test", "postmaster@example.test"])
def test_mail_system_senders(sender: str) -> None:
    raw = QUESTION.format(extra="").replace("Dana Coder <dana@example-clinic.test>", sender)
    found = automated_reason(read_mail(raw.encode()).message)
    assert found is not None and "mail system address" in found


def test_empty_return_path_marks_a_notification() -> None:
    raw = QUESTION.format(extra="").replace("<dana@example-clinic.test>\nSubj", "<>\nSubj")
    assert "Return-Path" in (automated_reason(read_mail(raw.encode()).message) or "")


@pytest.mark.parametrize(
    "subject",
    ["Automatic reply: Is E11.22 billable?", "Out of Office: back Monday", "Undeliverable: Re: x"],
)
def test_auto_reply_subjects(subject: str) -> None:
    assert reason(subject=subject) is not None


def test_a_subject_merely_mentioning_the_office_is_a_person() -> None:
    assert reason(subject="Re: office visit 99213 with an out of office lab") is None


def test_real_rfc3834_vacation_reply_with_cr_only_line_endings() -> None:
    mail = read_mail((FIXTURES / "autoreply-cr-only.eml").read_bytes())
    assert automated_reason(mail.message) == "Auto-Submitted header is 'auto-replied'"


def test_real_delivery_report() -> None:
    mail = read_mail((FIXTURES / "bounce-multipart-report.eml").read_bytes())
    assert automated_reason(mail.message) == ("it is a delivery or read report (multipart/report)")


def test_synthetic_outlook_auto_reply() -> None:
    raw = (
        b"From: Dana Coder <dana@example-clinic.test>\r\n"
        b"To: questions@caseconsultant.test\r\n"
        b"Subject: Automatic reply: Knee scope question\r\n"
        b"X-MS-Exchange-Organization-AutoResponseSuppress: All\r\n"
        b"X-Auto-Response-Suppress: All\r\n"
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
        b"<p>I am out of the office until Monday. For urgent coding questions call 555-0100.</p>"
    )
    found = automated_reason(read_mail(raw).message)
    assert found == "X-Auto-Response-Suppress header is present"


def test_bounces_in_the_shared_corpus_are_recognized() -> None:
    """sisimai's set holds real-world bounces and auto-replies from dozens of mail systems
    (and a few forwarded-by-a-person or feedback messages we rightly leave alone)."""
    folder = CORPORA / "sisimai" / "maildir" / "bsd"
    assert folder.is_dir(), f"{folder} is missing; CI keeps ../shared beside the checkout"
    files = sorted(folder.glob("lhost-*.eml")) + sorted(folder.glob("rfc3834-*.eml"))
    assert len(files) > 300
    missed = [p.name for p in files if automated_reason(read_mail(p.read_bytes()).message) is None]
    assert len(missed) / len(files) < 0.03, missed
