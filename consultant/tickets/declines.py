"""The polite 'subscribers only' answer to senders outside the allowlist.

It is queued as an outbound message for delivery to send; one per sender per day at
most, so two services declining each other cannot loop.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import make_msgid

from sqlmodel import Session, select

from consultant.database.types import utcnow
from consultant.mail.parse import ParsedMessage
from consultant.templating import template_environment
from consultant.tickets.models import Message

DECLINE_TEMPLATE = "mail/not_allowed.txt.j2"
DECLINE_REASON = "declined: the sender is not on the allowlist"


def queue_decline(
    session: Session, parsed: ParsedMessage, *, our_domain: str, service_name: str
) -> bool:
    """Queue the decline to PARSED's sender unless one went out in the last day."""
    address = parsed.reply_to or parsed.from_address
    if address is None:
        return False
    since = utcnow() - timedelta(days=1)
    recent = session.exec(
        select(Message.to).where(
            Message.direction == "outbound",
            Message.reason == DECLINE_REASON,
            Message.received_at >= since,
        )
    ).all()
    if any(address in to for to in recent):
        return False
    message_id = make_msgid(domain=our_domain).strip("<>")
    text = template_environment().get_template(DECLINE_TEMPLATE).render(service_name=service_name)
    subject = (
        parsed.subject if parsed.subject.lower().startswith("re:") else f"Re: {parsed.subject}"
    )
    session.add(
        Message(
            direction="outbound",
            dedupe_key=message_id,
            message_id=message_id,
            in_reply_to=[parsed.message_id] if parsed.message_id else [],
            references=[*parsed.references, parsed.message_id] if parsed.message_id else [],
            to=[address],
            subject=subject[:998],
            text=text,
            outcome="queued",
            reason=DECLINE_REASON,
            source="intake",
        )
    )
    return True
