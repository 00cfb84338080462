"""Drafting a ticket's answer: the question analysis over the customer's thread, kept as
a new draft version beside the structured analysis.

Safe to run twice (a queue may deliver the task again): a draft already made from the
ticket's newest customer message is returned as it is. The analysis runs outside any
transaction, so a slow one never holds the database; nor does reading the text of
the message's PDFs, which happens here, after the message was stored, in a child
process bounded by [ingest] extract_max_bytes and extract_seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jinja2
from sqlalchemy import ColumnElement, Engine, and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.config import IngestConfig
from consultant.database.engine import DatabaseUnavailable, read_transaction, transaction
from consultant.database.types import utcnow
from consultant.drafting.analyze import analyze
from consultant.mail.attachments import PENDING, UNREAD, PdfText, extract_pdf_text, unread_reason
from consultant.tickets.actions import record_change
from consultant.tickets.models import (
    DRAFTABLE,
    DRAFTER,
    Attachment,
    AuditEvent,
    Blob,
    Draft,
    Message,
    Ticket,
)

Analyzer = Callable[[str], dict[str, Any]]  # question text -> Analysis.to_dict()
DEFAULT_LIMITS = IngestConfig()


@dataclass(frozen=True)
class DraftOutcome:
    status: str  # drafted | already | skipped | failed
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


def _newest_question(session: Session, ticket_id: int) -> Message | None:
    """The customer message a draft answers: the ticket's newest."""
    return session.exec(
        select(Message)
        .where(
            Message.ticket_id == ticket_id,
            Message.direction == "inbound",
            col(Message.outcome).in_(("created", "appended", "held")),
        )
        .order_by(col(Message.id).desc())
    ).first()


@dataclass(frozen=True)
class _PendingPdf:
    """A PDF attached to the message being drafted, stored but not read yet."""

    id: int
    filename: str
    data: bytes


def _pending_pdfs(session: Session, message_id: int) -> list[_PendingPdf]:
    rows = session.exec(
        select(Attachment.id, Attachment.filename, Blob.data)
        .join(Blob, col(Blob.sha256) == col(Attachment.blob_sha256))
        .where(Attachment.message_id == message_id, Attachment.extraction == PENDING)
        .order_by(col(Attachment.id))
    ).all()
    return [_PendingPdf(key, name, data) for key, name, data in rows if key is not None]


def _read_pdfs(pdfs: list[_PendingPdf], limits: IngestConfig) -> dict[int, PdfText]:
    """What each of PDFS says (by attachment id), all read within one deadline
    (extract_seconds): those left when it has passed are not tried."""
    deadline = time.monotonic() + limits.extract_seconds
    read = {}
    for pdf in pdfs:
        left = deadline - time.monotonic()
        read[pdf.id] = (
            extract_pdf_text(pdf.data, max_bytes=limits.extract_max_bytes, seconds=left)
            if left > 0
            else PdfText("", "timeout")
        )
    return read


def _unread_findings(
    pdfs: list[_PendingPdf], read: dict[int, PdfText], limits: IngestConfig
) -> list[dict[str, Any]]:
    """A finding for each PDF whose text was not (fully) read, so the consultant knows
    the draft was made without it."""
    findings = []
    for pdf in pdfs:
        result = read[pdf.id]
        if result.status in UNREAD:
            how = "read only in part" if result.text else "not read"
            reason = unread_reason(
                result.status, max_bytes=limits.extract_max_bytes, seconds=limits.extract_seconds
            )
            message = (
                f"The text of the attached PDF {pdf.filename or '(unnamed)'} was {how}: {reason}."
            )
            findings.append(
                {"kind": "attachment_unread", "codes": [], "message": message, "source": ""}
            )
    return findings


def _record_reading(session: Session, read: dict[int, PdfText]) -> None:
    for attachment_id, result in read.items():
        attachment = session.get(Attachment, attachment_id)
        if attachment is not None and attachment.extraction == PENDING:
            attachment.text = result.text
            attachment.extraction = result.status
            session.add(attachment)


@dataclass(frozen=True)
class _Taken:
    """A ticket taken for drafting (now `drafting`), with what its analysis reads,
    gathered in the transaction that took it."""

    ticket_id: int
    basis_id: int
    text: str
    pdfs: list[_PendingPdf]


def _take(session: Session, ticket: Ticket) -> _Taken | DraftOutcome:
    """Mark TICKET `drafting` and gather its question, or say why it needs no draft."""
    assert ticket.id is not None
    basis = _newest_question(session, ticket.id)
    if basis is None or basis.id is None:
        return DraftOutcome("skipped", reason="the ticket has no customer message")
    done = session.exec(
        select(Draft.version).where(
            Draft.ticket_id == ticket.id,
            Draft.basis_message_id == basis.id,
            Draft.author == DRAFTER,
        )
    ).first()
    if done is not None:
        if ticket.status == "drafting":  # taken, but a draft was made already
            ticket.status = "ready"
            session.add(ticket)
        return DraftOutcome("already", done)
    if ticket.status not in DRAFTABLE:
        return DraftOutcome("skipped", reason=f"the ticket is {ticket.status}")
    ticket.status = "drafting"
    ticket.updated_at = utcnow()
    session.add(ticket)
    return _Taken(
        ticket.id, basis.id, question_text(session, ticket, basis), _pending_pdfs(session, basis.id)
    )


def draft_ticket(
    engine: Engine, ticket_id: int, analyze: Analyzer, limits: IngestConfig = DEFAULT_LIMITS
) -> DraftOutcome:
    """Draft TICKET_ID's answer; LIMITS bound the reading of its PDFs ([ingest])."""
    with transaction(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise LookupError(f"no ticket with id {ticket_id}")
        taken = _take(session, ticket)
    return taken if isinstance(taken, DraftOutcome) else _draft(engine, taken, analyze, limits)


def draft_next(
    engine: Engine, analyze: Analyzer, limits: IngestConfig, *, stale_after: timedelta
) -> tuple[int, DraftOutcome] | None:
    """Take the oldest ticket awaiting a draft (see _awaiting_draft) and draft it: (its
    id, the outcome), or None when none is waiting. Taking it and reading its question
    are one transaction; workers on PostgreSQL skip each other's tickets instead of
    waiting, and on SQLite the write lock makes them take turns. A ticket that cannot
    be drafted is left `failed` with the reason, so the next one's turn comes."""
    with transaction(engine) as session:
        ticket = session.exec(
            select(Ticket)
            .where(_awaiting_draft(utcnow(), stale_after))
            .order_by(col(Ticket.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if ticket is None:
            return None
        assert ticket.id is not None
        ticket_id = ticket.id
        taken = _take(session, ticket)
        if isinstance(taken, DraftOutcome) and taken.status == "skipped":
            _fail(session, ticket, f"not drafted: {taken.reason}")
    if isinstance(taken, DraftOutcome):
        return ticket_id, taken
    try:
        return ticket_id, _draft(engine, taken, analyze, limits)
    except DatabaseUnavailable:
        raise  # nothing recorded; the ticket is taken over once its claim is stale
    except Exception as exc:  # this ticket's problem (the analysis failed on it)
        mark_failed(engine, ticket_id, f"drafting failed: {exc!r}")
        return ticket_id, DraftOutcome("failed", reason=repr(exc)[:300])


def _draft(engine: Engine, taken: _Taken, analyze: Analyzer, limits: IngestConfig) -> DraftOutcome:
    """Read TAKEN's PDFs, analyze its question outside any transaction, and store the
    draft."""
    ticket_id, basis_id, text, pdfs = taken.ticket_id, taken.basis_id, taken.text, taken.pdfs
    read = _read_pdfs(pdfs, limits)
    analysis = analyze("\n\n".join([text, *(r.text for r in read.values() if r.text.strip())]))
    if unread := _unread_findings(pdfs, read, limits):
        analysis = {**analysis, "findings": [*analysis.get("findings", []), *unread]}

    try:
        with transaction(engine) as session:
            _record_reading(session, read)
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
                # A follow-up that arrived while this draft was made is drafted next.
                newest = _newest_question(session, ticket_id)
                ticket.status = "open" if newest is not None and newest.id != basis_id else "ready"
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


def _awaiting_draft(now: datetime, stale_after: timedelta) -> ColumnElement[bool]:
    """New and reopened tickets, and ones left `drafting` for longer than STALE_AFTER
    (their worker died)."""
    return or_(
        col(Ticket.status).in_(("new", "open")),
        and_(Ticket.status == "drafting", Ticket.updated_at < now - stale_after),
    )


def awaiting_draft(engine: Engine, *, stale_after: timedelta) -> list[int]:
    """The tickets draft_next would take, oldest first."""
    with read_transaction(engine) as session:
        return list(
            session.exec(
                select(Ticket.id)
                .where(_awaiting_draft(utcnow(), stale_after))
                .order_by(col(Ticket.id))
            ).all()
        )


def mark_failed(engine: Engine, ticket_id: int, error: str) -> None:
    """Leave the ticket visibly failed, with the error, for a consultant to see."""
    with transaction(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            _fail(session, ticket, error)


def _fail(session: Session, ticket: Ticket, error: str) -> None:
    ticket.status = "failed"
    ticket.error = error[:2000]
    record_change(session, ticket, DRAFTER, "ticket.failed", error=error[:500])
