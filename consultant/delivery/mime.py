"""The bytes that go on the wire, built once from an outbound message row.

The email package's SMTP policy refuses a header value with a line break, so even a
value that slipped past composing cannot add a header; addresses go through
`Address`, which quotes display names and refuses malformed addr-specs.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from consultant.database.types import utcnow
from consultant.tickets.models import Message, ticket_reference
from consultant.tickets.rules import OUTBOUND_HEADER

AUTOMATIC = frozenset(("acknowledgement", "decline"))  # RFC 3834 auto-replies


def _address(addr_spec: str, name: str = "") -> Address:
    return Address(display_name=name, addr_spec=addr_spec)


def build_mime(message: Message, *, kind: str, from_name: str) -> bytes:
    """MESSAGE as RFC 5322 bytes: text, with the HTML alternative when it has one."""
    assert message.from_address and message.message_id
    mail = EmailMessage(policy=SMTP)
    mail["From"] = _address(message.from_address, from_name)
    mail["To"] = [_address(a) for a in message.to]
    if message.cc:
        mail["Cc"] = [_address(a) for a in message.cc]
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = f"<{message.message_id}>"
    if message.in_reply_to:
        mail["In-Reply-To"] = " ".join(f"<{i}>" for i in message.in_reply_to)
    if message.references:
        mail["References"] = " ".join(f"<{i}>" for i in message.references)
    if kind in AUTOMATIC:
        # Tells autoresponders (vacation notices) not to answer; a consultant's reply
        # is written by a person and must not carry it.
        mail["Auto-Submitted"] = "auto-replied"
    mail[OUTBOUND_HEADER] = ticket_reference(message.ticket_id) if message.ticket_id else kind
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail.as_bytes()
