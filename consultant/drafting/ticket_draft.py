"""Drafting a ticket's answer: the question analysis over the customer's thread, kept as
a new draft version beside the structured analysis.

Safe to run twice (a queue may deliver the task again): a draft already made from the
ticket's newest customer message is returned as it is. The analysis runs outside any
transaction, so a slow one never holds the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jinja2
from sqlalchemy import Engine, and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.drafting.analyze import analyze
from consultant.tickets.actions import record_change
from consultant.tickets.models import (
    DRAFTABLE,
    DRAFTER,
    Attachment,
    AuditEvent,
    Draft,
    Message,
    Ticket,
)

Analyzer = Callable[[str], dict[str, Any]]  # question text -> Analysis.to_dict()


@dataclass(frozen=True)
class DraftOutcome:
    status: str  # drafted | already | skipped
    draft_version: int | None = None
    reason: str = ""


def question_text(session: Session, ticket: Ticket, basis: Message) -> str:
    """What the analysis reads: the subject, the newest question, what the customer asked
    before in the thread (a follow-up is read with it in view), and the text of the
    newest message's attachments (an op note in a PDF, say)."""
    earlier = session.exec(
        select(Message.question)
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == "inbound",
            col(Message.id) < basis.id,
            col(Message.outcome).in_(("created", "appended")),
        )
        .order_by(col(Message.id))
    ).all()
    attachments = session.exec(
        select(Attachment.text).where(Attachment.message_id == basis.id, Attachment.text != "")
    ).all()
    parts = [ticket.subject, basis.question, *reversed(earlier), *attachments]
    return "\n\n".join(part for part in parts if part and part.strip())


def draft_ticket(engine: Engine, ticket_id: int, analyze: Analyzer) -> DraftOutcome:
    with transaction(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise LookupError(f"no ticket with id {ticket_id}")
        basis = session.exec(
            select(Message)
            .where(
                Message.ticket_id == ticket_id,
                Message.direction == "inbound",
                col(Message.outcome).in_(("created", "appended", "held")),
            )
            .order_by(col(Message.id).desc())
        ).first()
        if basis is None:
            return DraftOutcome("skipped", reason="the ticket has no customer message")
        done = session.exec(
            select(Draft.version).where(
                Draft.ticket_id == ticket_id,
                Draft.basis_message_id == basis.id,
                Draft.author == DRAFTER,
            )
        ).first()
        if done is not None:
            return DraftOutcome("already", done)
        if ticket.status not in DRAFTABLE:
            return DraftOutcome("skipped", reason=f"the ticket is {ticket.status}")
        ticket.status = "drafting"
        ticket.updated_at = utcnow()
        session.add(ticket)
        text = question_text(session, ticket, basis)
        basis_id = basis.id

    analysis = analyze(text)

    try:
        with transaction(engine) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            version = (
                session.exec(
                    select(func.max(Draft.version)).where(Draft.ticket_id == ticket_id)
                ).one()
                or 0
            ) + 1
            session.add(
                Draft(
                    ticket_id=ticket_id,
                    version=version,
                    basis_message_id=basis_id,
                    author=DRAFTER,
                    body=analysis.get("draft") or "",
                    analysis=analysis,
                )
            )
            if ticket.status == "drafting":
                ticket.status = "ready"
                ticket.updated_at = utcnow()
                session.add(ticket)
            session.add(
                AuditEvent(
                    actor=DRAFTER,
                    action="draft.created",
                    ticket_id=ticket_id,
                    message_id=basis_id,
                    detail={"version": version, "findings": len(analysis.get("findings", []))},
                )
            )
    except IntegrityError:  # another worker stored the same version first
        return DraftOutcome("already", reason="drafted by another worker meanwhile")
    return DraftOutcome("drafted", version)


def make_analyzer(
    store: CodeStore, *, templates: jinja2.Environment, suggestions: int, service_name: str
) -> Analyzer:
    """The analysis of one question's text against STORE, as draft_ticket wants it."""
    search = CodeSearch(store)

    def run(text: str) -> dict[str, Any]:
        return analyze(
            text.encode("utf-8"),
            store,
            search,
            suggestions=suggestions,
            templates=templates,
            service_name=service_name,
        ).to_dict()

    return run


def awaiting_draft(engine: Engine, *, quiet_for: timedelta, stuck_after: timedelta) -> list[int]:
    """Tickets the queue should draft but may have missed: new or reopened ones quiet
    for QUIET_FOR (their ingress could not reach the broker), and ones left in
    `drafting` longer than STUCK_AFTER (their worker died)."""
    now = utcnow()
    with Session(engine) as session:
        return list(
            session.exec(
                select(Ticket.id)
                .where(
                    or_(
                        and_(
                            col(Ticket.status).in_(("new", "open")),
                            Ticket.updated_at < now - quiet_for,
                        ),
                        and_(Ticket.status == "drafting", Ticket.updated_at < now - stuck_after),
                    )
                )
                .order_by(col(Ticket.id))
            ).all()
        )


def mark_failed(engine: Engine, ticket_id: int, error: str) -> None:
    """Leave the ticket visibly failed, with the error, for a consultant to see."""
    with transaction(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return
        ticket.status = "failed"
        ticket.error = error[:2000]
        record_change(session, ticket, DRAFTER, "ticket.failed", error=error[:500])
