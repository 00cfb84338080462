"""Queueing outbound mail: an outbound message row (exactly what will be sent) and its
delivery, in the caller's transaction, so approving an answer and queueing it are one
commit. The MIME bytes are built when a worker first claims the delivery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import make_msgid

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.delivery.compose import Composer, Outgoing
from consultant.tickets.models import Delivery, Draft, Message, Ticket

ACKNOWLEDGED_NOT = frozenset(("held", "ignored", "closed"))
ACKNOWLEDGE_WITHIN = timedelta(days=1)


def queue_outgoing(
    session: Session,
    outgoing: Outgoing,
    *,
    kind: str,
    ticket_id: int | None,
    from_address: str,
    dedupe_key: str | None = None,
) -> Delivery:
    """Store OUTGOING as an outbound message with a fresh Message-ID, queued for a worker.

    The Message-ID is ours and stored now, before anything is sent, so the customer's
    answer threads back to the ticket. DEDUPE_KEY makes queueing idempotent (a second
    attempt violates its unique key)."""
    message_id = make_msgid(domain=from_address.rpartition("@")[2]).strip("<>")
    message = Message(
        ticket_id=ticket_id,
        direction="outbound",
        dedupe_key=dedupe_key or message_id,
        message_id=message_id,
        in_reply_to=outgoing.in_reply_to,
        references=outgoing.references,
        from_address=from_address,
        to=outgoing.to,
        cc=outgoing.cc,
        subject=outgoing.subject,
        text=outgoing.text,
        html=outgoing.html,
        outcome="outbound",
        source=kind,
    )
    session.add(message)
    session.flush()
    assert message.id is not None
    delivery = Delivery(message_id=message.id, ticket_id=ticket_id, kind=kind)
    session.add(delivery)
    session.flush()
    return delivery


def first_question(session: Session, ticket_id: int) -> Message | None:
    """The customer's message that opened the ticket."""
    return session.exec(
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.direction == "inbound")
        .order_by(col(Message.id))
    ).first()


def unacknowledged(engine: Engine, *, grace: timedelta) -> list[int]:
    """Tickets opened in the last day, more than GRACE ago, with no acknowledgement
    queued: their ingress could not reach the queue. Older ones are left alone, so
    turning acknowledgements on does not write to last month's customers."""
    now = utcnow()
    acknowledged = select(Delivery.ticket_id).where(
        Delivery.kind == "acknowledgement", col(Delivery.ticket_id).is_not(None)
    )
    with Session(engine) as session:
        return list(
            session.exec(
                select(Ticket.id)
                .where(
                    Ticket.created_at > now - ACKNOWLEDGE_WITHIN,
                    Ticket.created_at < now - grace,
                    col(Ticket.status).not_in(ACKNOWLEDGED_NOT),
                    col(Ticket.id).not_in(acknowledged),
                )
                .order_by(col(Ticket.id))
            ).all()
        )


def queue_acknowledgement(
    engine: Engine, ticket_id: int, composer: Composer, from_address: str
) -> int | None:
    """Queue (once per ticket) the acknowledgement of a new ticket; returns the
    delivery's id, or None when the ticket gets none (held, ignored or closed, opened
    by automated mail, or with no address to answer)."""
    key = f"acknowledgement:{ticket_id}"
    try:
        with transaction(engine) as session:
            existing = session.exec(
                select(Delivery.id).join(Message).where(Message.dedupe_key == key)
            ).first()
            if existing is not None:
                return existing
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                raise LookupError(f"no ticket with id {ticket_id}")
            question = first_question(session, ticket_id)
            if ticket.status in ACKNOWLEDGED_NOT or question is None or question.automated:
                return None
            outgoing = composer.acknowledgement(ticket_id, question)
            if not outgoing.to:
                return None
            delivery = queue_outgoing(
                session,
                outgoing,
                kind="acknowledgement",
                ticket_id=ticket_id,
                from_address=from_address,
                dedupe_key=key,
            )
            return delivery.id
    except IntegrityError:  # another worker queued it a moment ago
        return queue_acknowledgement(engine, ticket_id, composer, from_address)


ReplyQueuer = Callable[[Session, Ticket, Draft], int]


def answered_message(session: Session, ticket_id: int, draft: Draft | None) -> Message | None:
    """The customer's message a reply from DRAFT answers: the one it was drafted from,
    else the ticket's newest from the customer."""
    if draft is not None and draft.basis_message_id is not None:
        found = session.get(Message, draft.basis_message_id)
        if found is not None:
            return found
    return session.exec(
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.direction == "inbound")
        .order_by(col(Message.id).desc())
    ).first()


def reply_queuer(composer: Composer, from_address: str) -> ReplyQueuer:
    """What approving a draft calls, in its own transaction, to queue the reply."""

    def queue(session: Session, ticket: Ticket, draft: Draft) -> int:
        assert ticket.id is not None
        question = answered_message(session, ticket.id, draft)
        if question is None:
            raise ValueError(f"{ticket.reference} has no customer message to reply to")
        outgoing = composer.reply(ticket.id, question, draft.body)
        if not outgoing.to:
            raise ValueError(
                f"{ticket.reference}: the customer's message has no address we can reply to"
            )
        delivery = queue_outgoing(
            session, outgoing, kind="reply", ticket_id=ticket.id, from_address=from_address
        )
        assert delivery.id is not None
        return delivery.id

    return queue
