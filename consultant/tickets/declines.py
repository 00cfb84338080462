"""The polite 'subscribers only' answer to senders outside the allowlist.

It is queued for delivery in the intake's own transaction, so it is sent exactly when
the message it answers is stored; one per sender per day at most, so two services
declining each other cannot loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlmodel import Session, select

from consultant.database.types import utcnow
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import queue_outgoing
from consultant.mail.parse import ParsedMessage
from consultant.tickets.models import Delivery, Message

Decliner = Callable[[Session, ParsedMessage], bool]


def decliner(composer: Composer, from_address: str) -> Decliner:
    def decline(session: Session, parsed: ParsedMessage) -> bool:
        """Queue the decline to PARSED's sender unless one went out in the last day."""
        address = parsed.reply_to or parsed.from_address
        if address is None:
            return False
        recent = session.exec(
            select(Message.to)
            .join(Delivery)
            .where(Delivery.kind == "decline", Delivery.created_at >= utcnow() - timedelta(days=1))
        ).all()
        if any(address in to for to in recent):
            return False
        question = Message(  # not stored: the intake stores the message itself
            direction="inbound",
            dedupe_key="",
            message_id=parsed.message_id,
            references=list(parsed.references),
            from_address=parsed.from_address,
            reply_to=parsed.reply_to,
            subject=parsed.subject,
            outcome="ignored",
        )
        outgoing = composer.decline(question)
        if not outgoing.to:
            return False
        queue_outgoing(session, outgoing, kind="decline", ticket_id=None, from_address=from_address)
        return True

    return decline
