"""The audit log: one row per thing that happened to a ticket or message."""

from __future__ import annotations

from sqlmodel import Session

from consultant.tickets.models import AuditEvent


def record(
    session: Session,
    actor: str,
    action: str,
    *,
    ticket_id: int | None = None,
    message_id: int | None = None,
    **detail: object,
) -> None:
    """Add an event; DETAIL holds ids, counts and reasons, never message text."""
    session.add(
        AuditEvent(
            actor=actor, action=action, ticket_id=ticket_id, message_id=message_id, detail=detail
        )
    )
