"""Made-up coding questions as raw RFC 5322 bytes, for the ingestion tests and benches.

Every patient, clinic and address here is invented.
"""

from __future__ import annotations

import smtplib
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

QUESTIONS = (
    "Is E11.65 billable for a type 2 diabetic with hyperglycemia?",
    "Can 29881 and 29877 be reported together on one claim?",
    "What is the code for a stage 3 pressure ulcer of the sacral region?",
    "Which modifier applies when 20610 is done on both knees?",
    "Is J1100 still valid for dexamethasone injections?",
)


def question(
    body: str = QUESTIONS[0],
    *,
    sender: str = "coder@clinic.example",
    name: str = "Dana Coder",
    subject: str = "Coding question",
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    to: str = "consult@caseconsultant.example",
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 2, 15, 30, tzinfo=UTC))
    if message_id == "auto":
        message["Message-ID"] = make_msgid(domain="clinic.example")
    elif message_id is not None:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body)
    return message.as_bytes()


def smtp_client(port: int, seconds: float = 60) -> smtplib.SMTP:
    """A client of the SMTP server a test just started on PORT, once it listens."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no SMTP server listens on port {port}") from None
            time.sleep(0.1)
