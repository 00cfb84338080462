"""Tickets as plain data for the CLI, the review app and the API, and the lookups the
answer to a ticket needs (its address of record, who else could be copied)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from consultant.database.types import utcnow
from consultant.mail.addresses import is_addr_spec
from consultant.tickets.models import (
    TICKET_STATUSES,
    Attachment,
    AuditEvent,
    Customer,
    Delivery,
    Draft,
    Message,
    Note,
    Ticket,
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def list_tickets(session: Session, status: str | None = None, limit: int = 200) -> list[dict]:
    """Newest first, with each ticket's customer and message count."""
    counts = (
        select(Message.ticket_id, func.count().label("messages"))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket, Customer.email, counts.c.messages)
        .join(Customer, col(Ticket.customer_id) == Customer.id)
        .join(counts, counts.c.ticket_id == Ticket.id, isouter=True)
        .order_by(col(Ticket.id).desc())
        .limit(limit)
    )
    if status:
        query = query.where(Ticket.status == status)
    return [
        {
            "ticket": ticket.reference,
            "status": ticket.status,
            "subject": ticket.subject,
            "customer": email,
            "assignee": ticket.assignee,
            "messages": messages or 0,
            "created": _iso(ticket.created_at),
            "updated": _iso(ticket.updated_at),
            "due": _iso(ticket.due_at),
        }
        for ticket, email, messages in session.exec(query).all()
    ]


# What the review queue shows by default: everything that may still need a consultant.
OPEN_WORK = ("new", "open", "drafting", "ready", "approved", "failed", "held")


def review_queue(
    session: Session,
    *,
    statuses: tuple[str, ...] = OPEN_WORK,
    assignee: str | None = None,
    unassigned: bool = False,
    older_than: datetime | None = None,
    limit: int = 500,
) -> dict[str, Any]:
    """Tickets for review: ready ones first, then by due time (soonest first); and how
    many tickets there are in each status."""
    readiness = case((col(Ticket.status) == "ready", 0), else_=1)
    query = (
        select(Ticket, Customer.email)
        .join(Customer, col(Ticket.customer_id) == Customer.id)
        .where(col(Ticket.status).in_(statuses))
        .order_by(readiness, col(Ticket.due_at).asc().nulls_last(), col(Ticket.id))
        .limit(limit)
    )
    if unassigned:
        query = query.where(col(Ticket.assignee).is_(None))
    elif assignee:
        query = query.where(Ticket.assignee == assignee)
    if older_than is not None:
        query = query.where(col(Ticket.created_at) < older_than)
    counts = dict(session.exec(select(Ticket.status, func.count()).group_by(Ticket.status)).all())
    return {
        "tickets": [
            {
                "ticket": ticket.reference,
                "id": ticket.id,
                "status": ticket.status,
                "subject": ticket.subject,
                "customer": email,
                "assignee": ticket.assignee,
                "created": _iso(ticket.created_at),
                "due": _iso(ticket.due_at),
                "overdue": bool(ticket.due_at and ticket.due_at < utcnow()),
            }
            for ticket, email in session.exec(query).all()
        ],
        "counts": {status: counts.get(status, 0) for status in TICKET_STATUSES},
    }


def first_question(session: Session, ticket_id: int) -> Message | None:
    """The customer's message that opened the ticket."""
    return session.exec(
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.direction == "inbound")
        .order_by(col(Message.id))
    ).first()


def address_of_record(session: Session, ticket_id: int) -> str | None:
    """Where the ticket's answers go: the Reply-To (else From) of the message that opened
    it. A follow-up asking for answers elsewhere does not change it; its warning
    (tickets.rules) shows the consultant, who may copy that address in."""
    first = first_question(session, ticket_id)
    return first and (first.reply_to or first.from_address)


def copy_candidates(session: Session, ticket_id: int, exclude: Sequence[str]) -> list[str]:
    """Everyone else the thread's customer messages name (their senders, Reply-To and
    Cc): the addresses a consultant may choose to copy on the answer, and none is
    copied unless chosen."""
    named: dict[str, None] = {}
    for sender, reply_to, to, cc in session.exec(
        select(Message.from_address, Message.reply_to, Message.to, Message.cc)
        .where(Message.ticket_id == ticket_id, Message.direction == "inbound")
        .order_by(col(Message.id))
    ):
        for address in (sender, reply_to, *to, *cc):
            if address and is_addr_spec(address):
                named.setdefault(address.lower())
    excluded = {a.lower() for a in exclude}
    return [a for a in named if a not in excluded]


def unconfirmed_warnings(session: Session, ticket_id: int) -> list[tuple[int, str]]:
    """(message id, warning) of each warning on the ticket's messages (tickets.rules)
    that no consultant has confirmed yet."""
    found = session.exec(
        select(Message.id, Message.warnings)
        .where(Message.ticket_id == ticket_id, col(Message.warnings_confirmed_by).is_(None))
        .order_by(col(Message.id))
    ).all()
    return [(message_id, w) for message_id, warnings in found for w in warnings if message_id]


SHOWN_CANDIDATES = 100  # addresses offered for copying; a Cc of thousands is spam anyway


def answer_choices(session: Session, ticket_id: int, our_addresses: Sequence[str]) -> dict:
    """What a consultant decides before approving: where the answer goes (the address
    of record), whom else the thread names that it could be copied to, and the
    warnings to confirm."""
    record = address_of_record(session, ticket_id)
    candidates = copy_candidates(
        session, ticket_id, [*our_addresses, *([record] if record else [])]
    )
    return {
        "to": record,
        "can_copy": candidates[:SHOWN_CANDIDATES],
        "can_copy_total": len(candidates),
        "warnings": [warning for _, warning in unconfirmed_warnings(session, ticket_id)],
    }


def show_ticket(session: Session, ticket_id: int, our_addresses: Sequence[str] = ()) -> dict | None:
    """One ticket with its customer, every message in order, its audit trail, and the
    choices its answer waits for (answer_choices; OUR_ADDRESSES are never offered)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    customer = session.get(Customer, ticket.customer_id)
    messages = session.exec(
        select(Message).where(Message.ticket_id == ticket_id).order_by(col(Message.id))
    ).all()
    attachments: dict[int, list[Attachment]] = {}
    for attachment in session.exec(
        select(Attachment)
        .where(col(Attachment.message_id).in_([m.id for m in messages]))
        .order_by(col(Attachment.id))
    ).all():
        attachments.setdefault(attachment.message_id, []).append(attachment)
    drafts = session.exec(
        select(Draft).where(Draft.ticket_id == ticket_id).order_by(col(Draft.version))
    ).all()
    events = session.exec(
        select(AuditEvent).where(AuditEvent.ticket_id == ticket_id).order_by(col(AuditEvent.id))
    ).all()
    notes = session.exec(
        select(Note).where(Note.ticket_id == ticket_id).order_by(col(Note.id))
    ).all()
    deliveries = {
        d.message_id: d
        for d in session.exec(select(Delivery).where(Delivery.ticket_id == ticket_id)).all()
    }
    return {
        "ticket": ticket.reference,
        "status": ticket.status,
        "subject": ticket.subject,
        "customer": {"email": customer.email, "name": customer.name} if customer else None,
        "assignee": ticket.assignee,
        "created": _iso(ticket.created_at),
        "updated": _iso(ticket.updated_at),
        "due": _iso(ticket.due_at),
        "version": ticket.version,
        "error": ticket.error,
        "messages": [
            _message(m, attachments.get(m.id or 0, []), deliveries.get(m.id or 0)) for m in messages
        ],
        "drafts": [
            {
                "version": d.version,
                "author": d.author,
                "created": _iso(d.created_at),
                "basis_message_id": d.basis_message_id,
                "body": d.body,
                "analysis": d.analysis,
            }
            for d in drafts
        ],
        "notes": [
            {"author": n.author, "created": _iso(n.created_at), "body": n.body} for n in notes
        ],
        "audit": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in events
        ],
        "answer": answer_choices(session, ticket_id, our_addresses),
    }


def _delivery(delivery: Delivery | None) -> dict | None:
    if delivery is None:
        return None
    return {
        "kind": delivery.kind,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt": _iso(delivery.next_attempt_at),
        "sent": _iso(delivery.sent_at),
        "transport": delivery.transport,
        "server_reply": delivery.server_reply,
        "error": delivery.error,
    }


def _message(message: Message, attachments: list[Attachment], delivery: Delivery | None) -> dict:
    return {
        "id": message.id,
        "direction": message.direction,
        "outcome": message.outcome,
        "reason": message.reason,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "references": message.references,
        "from": message.from_address,
        "from_name": message.from_name,
        "to": message.to,
        "cc": message.cc,
        "date": _iso(message.date),
        "received": _iso(message.received_at),
        "subject": message.subject,
        "question": message.question,
        "text": message.text,
        "has_html": message.html is not None,
        "html": message.html,
        "delivery": _delivery(delivery),
        "automated": message.automated,
        "bounce": message.bounce,
        "list_mail": message.list_mail,
        "source": message.source,
        "raw_sha256": message.raw_sha256,
        "defects": message.defects,
        "warnings": message.warnings,
        "warnings_confirmed_by": message.warnings_confirmed_by,
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "stored": a.blob_sha256 is not None,
                "text_chars": len(a.text),
            }
            for a in attachments
        ],
    }
