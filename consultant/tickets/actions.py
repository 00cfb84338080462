"""What a consultant does to a ticket: approve its answer (as drafted or edited),
assign it, close it. Each is one transaction, audited, and guarded by the ticket's
optimistic lock, so two consultants never silently overwrite each other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from consultant.accounts.users import AccountError, assignable_user
from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.delivery.compose import plain_lines
from consultant.tickets.models import AuditEvent, Draft, Message, Note, Ticket
from consultant.tickets.queries import unconfirmed_warnings

APPROVABLE = frozenset(("ready", "failed"))
UNASSIGNED = frozenset(("", "nobody"))  # what `assign` takes for giving a ticket to nobody

# Queues the approved draft's reply, to the Cc addresses the consultant chose too, in the
# approval's transaction; returns its delivery.
QueueReply = Callable[[Session, Ticket, Draft, Sequence[str]], int]


@dataclass(frozen=True)
class Approval:
    version: int  # the draft version approved
    delivery_id: int  # the reply's delivery, for the queue to send


class TicketActionError(Exception):
    """The action does not fit the ticket's state; the message says why."""


class StaleTicket(TicketActionError):
    """Someone changed the ticket after the acting consultant loaded it."""


class UnconfirmedWarnings(TicketActionError):
    """The ticket's messages carry warnings (tickets.rules) no consultant has confirmed."""


def _ticket(session: Session, ticket_id: int, seen_version: int | None = None) -> Ticket:
    """The ticket, refused when SEEN_VERSION (the version the consultant's page showed)
    is no longer current: their action was decided on what is now out of date."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketActionError(
            f"no ticket with id {ticket_id}; `consultant tickets list` shows the ones there are"
        )
    if seen_version is not None and ticket.version != seen_version:
        last = session.exec(
            select(AuditEvent)
            .where(AuditEvent.ticket_id == ticket_id)
            .order_by(col(AuditEvent.id).desc())
        ).first()
        change = f" ({last.action} by {last.actor})" if last else ""
        raise StaleTicket(
            f"{ticket.reference} changed after you opened it{change}; nothing was saved. "
            "Look at it again, then redo your change."
        )
    return ticket


def _latest_draft(session: Session, ticket_id: int) -> Draft | None:
    return session.exec(
        select(Draft).where(Draft.ticket_id == ticket_id).order_by(col(Draft.version).desc())
    ).first()


def record_change(
    session: Session, ticket: Ticket, actor: str, action: str, **detail: object
) -> None:
    """Mark TICKET changed now and audit ACTION by ACTOR (DETAIL: ids and reasons)."""
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.add(AuditEvent(actor=actor, action=action, ticket_id=ticket.id, detail=detail))


def approve(
    engine: Engine,
    ticket_id: int,
    actor: str,
    queue_reply: QueueReply,
    body: str | None = None,
    seen_version: int | None = None,
    *,
    cc: Sequence[str] = (),
    confirm_warnings: bool = False,
) -> Approval:
    """Approve the newest draft, or BODY as a new version by ACTOR, and queue the reply
    (copied to CC, the addresses ACTOR chose): once this commits, the answer will be
    sent whatever the customer writes meanwhile. A ticket whose messages carry warnings
    (a new Reply-To, a sender that failed verification) is approved only with
    CONFIRM_WARNINGS, which records that ACTOR saw them."""
    body = plain_lines(body) if body is not None else None
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        if ticket.status not in APPROVABLE:
            raise TicketActionError(
                f"{ticket.reference} is {ticket.status}; only a ticket whose draft is ready "
                "(or whose delivery failed) can be approved"
            )
        warnings = unconfirmed_warnings(session, ticket_id)
        if warnings and not confirm_warnings:
            raise UnconfirmedWarnings(
                f"{ticket.reference} has {len(warnings)} warning(s) to confirm before it is "
                "answered: " + "; ".join(w for _, w in warnings)
            )
        latest = _latest_draft(session, ticket_id)
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
            delivery_id = queue_reply(session, ticket, approved, cc)
        except ValueError as exc:
            raise TicketActionError(str(exc)) from None
        if warnings:
            session.exec(  # type: ignore[call-overload]
                update(Message)
                .where(col(Message.id).in_({message_id for message_id, _ in warnings}))
                .values(warnings_confirmed_by=actor)
            )
            session.add(
                AuditEvent(
                    actor=actor,
                    action="warnings.confirmed",
                    ticket_id=ticket_id,
                    detail={"warnings": [w.split(":")[0] for _, w in warnings]},
                )
            )
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


def save_draft(
    engine: Engine, ticket_id: int, actor: str, body: str, seen_version: int | None = None
) -> int:
    """Keep ACTOR's edit as a new draft version (the drafted ones stay); returns it."""
    body = plain_lines(body)
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        latest = _latest_draft(session, ticket_id)
        if latest is None:
            raise TicketActionError(f"{ticket.reference} has no draft to edit yet")
        if body.strip() == latest.body.strip():
            return latest.version
        draft = Draft(
            ticket_id=ticket_id,
            version=latest.version + 1,
            basis_message_id=latest.basis_message_id,
            author=actor,
            body=body,
            analysis=latest.analysis,
        )
        session.add(draft)
        record_change(session, ticket, actor, "draft.saved", version=draft.version)
        return draft.version


def add_note(
    engine: Engine, ticket_id: int, actor: str, body: str, seen_version: int | None = None
) -> None:
    """An internal note: for consultants only, never sent."""
    body = plain_lines(body)
    if not body.strip():
        raise TicketActionError("the note is empty")
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        session.add(Note(ticket_id=ticket_id, author=actor, body=body.strip()))
        record_change(session, ticket, actor, "note.added")


def release(engine: Engine, ticket_id: int, actor: str, seen_version: int | None = None) -> None:
    """Let a held ticket (a sender outside the allowlist) through, to be drafted."""
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        if ticket.status != "held":
            raise TicketActionError(f"{ticket.reference} is {ticket.status}, not held")
        ticket.status = "new"
        record_change(session, ticket, actor, "ticket.released")


def mark_spam(engine: Engine, ticket_id: int, actor: str, seen_version: int | None = None) -> None:
    """Set the ticket aside as spam: ignored, never answered, kept for the record."""
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        if ticket.status in ("approved", "sent"):
            raise TicketActionError(f"{ticket.reference} is {ticket.status}: it was answered")
        previous = ticket.status
        ticket.status = "ignored"
        record_change(session, ticket, actor, "ticket.spam", previous=previous)


def close(engine: Engine, ticket_id: int, actor: str, seen_version: int | None = None) -> None:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        if ticket.status == "closed":
            raise TicketActionError(f"{ticket.reference} is already closed")
        previous = ticket.status
        ticket.status = "closed"
        record_change(session, ticket, actor, "ticket.closed", previous=previous)


def assign(
    engine: Engine,
    ticket_id: int,
    actor: str,
    assignee: str | None,
    seen_version: int | None = None,
) -> str | None:
    """Give the ticket to ASSIGNEE, an active user's address in any case (None, "" or
    "nobody": to nobody); returns the address it went to. The CLI, the API and the
    review app's form all come here, so they accept and refuse the same values."""
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, seen_version)
        chosen = None
        if (assignee or "").strip().lower() not in UNASSIGNED:
            try:
                chosen = assignable_user(session, assignee or "").email
            except AccountError as exc:
                raise TicketActionError(f"cannot assign {ticket.reference}: {exc}") from None
        ticket.assignee = chosen
        record_change(session, ticket, actor, "ticket.assigned", assignee=chosen)
        return chosen
