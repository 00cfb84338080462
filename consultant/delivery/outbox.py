"""Queueing outbound mail: an outbound message row (exactly what will be sent) and its
delivery, in the caller's transaction, so approving an answer and queueing it are one
commit. The MIME bytes are built when a worker first claims the delivery."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import ColumnElement, Engine, and_, exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consultant.database.engine import read_transaction, transaction
from consultant.database.types import utcnow
from consultant.delivery.compose import Composer, Outgoing
from consultant.mail.addresses import is_addr_spec
from consultant.tickets.models import (
    AuditEvent,
    Delivery,
    Draft,
    Message,
    Ticket,
    ticket_reference,
)
from consultant.tickets.queries import address_of_record, first_question

ACKNOWLEDGED_NOT = frozenset(("held", "ignored", "closed"))
ACKNOWLEDGE_WITHIN = timedelta(days=1)
UNWRITABLE = (
    "no acknowledgement sent: the customer's address is not a plain address like "
    "name@example.com that mail can be sent to"
)


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


def _unacknowledged(now: datetime) -> ColumnElement[bool]:
    """Tickets opened in the last day by a person's message, with no acknowledgement
    queued yet. Older ones are left alone, so turning acknowledgements on does not
    write to last month's customers."""
    acknowledged = select(Delivery.ticket_id).where(
        Delivery.kind == "acknowledgement", col(Delivery.ticket_id).is_not(None)
    )
    asked = exists().where(
        Message.ticket_id == Ticket.id,
        Message.direction == "inbound",
        col(Message.automated).is_(False),
    )
    return and_(
        Ticket.created_at > now - ACKNOWLEDGE_WITHIN,
        col(Ticket.status).not_in(ACKNOWLEDGED_NOT),
        col(Ticket.id).not_in(acknowledged),
        asked,
    )


def unacknowledged(engine: Engine) -> list[int]:
    """The tickets queue_next_acknowledgement would acknowledge, oldest first."""
    with read_transaction(engine) as session:
        return list(
            session.exec(
                select(Ticket.id).where(_unacknowledged(utcnow())).order_by(col(Ticket.id))
            ).all()
        )


def queue_next_acknowledgement(engine: Engine, composer: Composer, from_address: str) -> bool:
    """Queue the acknowledgement of the oldest unacknowledged ticket; False when there is
    none."""
    with read_transaction(engine) as session:
        ticket_id = session.exec(
            select(Ticket.id).where(_unacknowledged(utcnow())).order_by(col(Ticket.id)).limit(1)
        ).first()
    if ticket_id is None:
        return False
    queue_acknowledgement(engine, ticket_id, composer, from_address)
    return True


def queue_acknowledgement(
    engine: Engine, ticket_id: int, composer: Composer, from_address: str
) -> int | None:
    """Queue (once per ticket) the acknowledgement of a new ticket; returns the
    delivery's id, or None when the ticket gets none (held, ignored or closed, opened
    by automated mail), or none can be sent: a customer address we cannot write to is
    recorded as a failed acknowledgement, so it is not tried again."""
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
            try:
                outgoing = composer.acknowledgement(ticket_id, question)
                error = "" if outgoing.to else UNWRITABLE
            except Exception as exc:  # e.g. an operator's template that does not render
                outgoing = Outgoing(
                    to=[], cc=[], subject="", in_reply_to=[], references=[], text=""
                )
                error = f"no acknowledgement sent: it could not be composed ({exc!r})"
            delivery = queue_outgoing(
                session,
                outgoing,
                kind="acknowledgement",
                ticket_id=ticket_id,
                from_address=from_address,
                dedupe_key=key,
            )
            if not error:
                return delivery.id
            # Recorded as failed, for a person to see, and never tried again.
            delivery.state = "failed"
            delivery.error = error
            session.add(delivery)
            session.add(
                AuditEvent(
                    actor="delivery",
                    action="acknowledgement.failed",
                    ticket_id=ticket_id,
                    detail={"delivery": delivery.id, "error": delivery.error},
                )
            )
            return None
    except IntegrityError:  # another worker queued it a moment ago
        return queue_acknowledgement(engine, ticket_id, composer, from_address)


ReplyQueuer = Callable[[Session, Ticket, Draft, Sequence[str]], int]


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


def compose_reply(
    session: Session,
    composer: Composer,
    ticket_id: int,
    draft: Draft | None,
    body: str,
    cc: Sequence[str] = (),
) -> Outgoing:
    """The reply to the ticket as it would go out: to its address of record, copied to
    CC, continuing the thread of the message DRAFT answers."""
    question = answered_message(session, ticket_id, draft)
    if question is None:
        raise ValueError(f"{ticket_reference(ticket_id)} has no customer message to reply to")
    return composer.reply(
        ticket_id, question, body, to=address_of_record(session, ticket_id), cc=cc
    )


def reply_queuer(composer: Composer, from_address: str, max_recipients: int) -> ReplyQueuer:
    """What approving a draft calls, in its own transaction, to queue the reply to the
    address of record and the Cc addresses the consultant chose, MAX_RECIPIENTS at
    most."""

    def queue(session: Session, ticket: Ticket, draft: Draft, cc: Sequence[str]) -> int:
        assert ticket.id is not None
        refused = [address for address in cc if not is_addr_spec(address)]
        if refused:
            raise ValueError(
                f"{refused[0][:80]!r} is not a plain address like name@example.com; "
                "correct it or leave it out"
            )
        outgoing = compose_reply(session, composer, ticket.id, draft, draft.body, cc)
        if not outgoing.to:
            raise ValueError(
                f"{ticket.reference}: the customer's message has no address we can reply to"
            )
        if (count := len(outgoing.to) + len(outgoing.cc)) > max_recipients:
            raise ValueError(
                f"{count} recipients are more than one answer may go to ([delivery] "
                f"max_recipients = {max_recipients}); copy fewer addresses"
            )
        delivery = queue_outgoing(
            session, outgoing, kind="reply", ticket_id=ticket.id, from_address=from_address
        )
        assert delivery.id is not None
        return delivery.id

    return queue
