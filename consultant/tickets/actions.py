"""What a consultant does to a ticket: approve its answer (as drafted or edited),
assign it, close it. Each is one transaction, audited, and guarded by the ticket's
optimistic lock, so two consultants never silently overwrite each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.tickets.models import AuditEvent, Draft, Ticket

APPROVABLE = frozenset(("ready", "failed"))

# Queues the approved draft's reply in the approval's transaction; returns its delivery.
QueueReply = Callable[[Session, Ticket, Draft], int]


@dataclass(frozen=True)
class Approval:
    version: int  # the draft version approved
    delivery_id: int  # the reply's delivery, for the queue to send


class TicketActionError(Exception):
    """The action does not fit the ticket's state; the message says why."""


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketActionError(
            f"no ticket with id {ticket_id}; `consultant tickets list` shows the ones there are"
        )
    return ticket


def record_change(
    session: Session, ticket: Ticket, actor: str, action: str, **detail: object
) -> None:
    """Mark TICKET changed now and audit ACTION by ACTOR (DETAIL: ids and reasons)."""
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.add(AuditEvent(actor=actor, action=action, ticket_id=ticket.id, detail=detail))


def approve(
    engine: Engine, ticket_id: int, actor: str, queue_reply: QueueReply, body: str | None = None
) -> Approval:
    """Approve the newest draft, or BODY as a new version by ACTOR, and queue the reply:
    once this commits, the answer will be sent whatever the customer writes meanwhile."""
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        if ticket.status not in APPROVABLE:
            raise TicketActionError(
                f"{ticket.reference} is {ticket.status}; only a ticket whose draft is ready "
                "(or whose delivery failed) can be approved"
            )
        latest = session.exec(
            select(Draft).where(Draft.ticket_id == ticket_id).order_by(col(Draft.version).desc())
        ).first()
        if latest is None:
            raise TicketActionError(f"{ticket.reference} has no draft to approve yet")
        approved = latest
        if body is not None and body.strip() != latest.body.strip():
            approved = Draft(
                ticket_id=ticket_id,
                version=latest.version + 1,  # latest is the highest version
                basis_message_id=latest.basis_message_id,
                author=actor,
                body=body,
                analysis=latest.analysis,
            )
            session.add(approved)
        try:
            delivery_id = queue_reply(session, ticket, approved)
        except ValueError as exc:
            raise TicketActionError(str(exc)) from None
        ticket.status = "approved"
        ticket.error = None
        record_change(
            session,
            ticket,
            actor,
            "ticket.approved",
            version=approved.version,
            delivery=delivery_id,
        )
    return Approval(approved.version, delivery_id)


def close(engine: Engine, ticket_id: int, actor: str) -> None:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        if ticket.status == "closed":
            raise TicketActionError(f"{ticket.reference} is already closed")
        previous = ticket.status
        ticket.status = "closed"
        record_change(session, ticket, actor, "ticket.closed", previous=previous)


def assign(engine: Engine, ticket_id: int, actor: str, assignee: str) -> None:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        ticket.assignee = assignee
        record_change(session, ticket, actor, "ticket.assigned", assignee=assignee)
