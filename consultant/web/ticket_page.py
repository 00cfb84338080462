"""A ticket in the browser: the thread, the analysis beside the draft, an editor with a
live preview of the email as the customer will get it, and the consultant's actions.

Every action posts the ticket version the page showed; when someone else changed the
ticket meanwhile the action is refused (tickets.actions.StaleTicket) and the page comes
back with the consultant's text kept. Pages also tell who else has the ticket open.

Showing a ticket only reads: who has it open is written when the database is free at
once, and skipped when it is not, so the page answers while another process writes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.accounts.models import User
from consultant.database.engine import read_transaction, write_if_free
from consultant.database.types import utcnow
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import compose_reply
from consultant.drafting.answers import LABELS as ANSWER_LABELS
from consultant.drafting.findings import LABELS as FINDING_LABELS
from consultant.tickets.actions import (
    StaleTicket,
    TicketActionError,
    add_note,
    approve,
    assign,
    close,
    mark_spam,
    release,
    save_draft,
)
from consultant.tickets.blobs import load_blob
from consultant.tickets.models import Attachment, Draft, Message, Ticket, TicketViewer
from consultant.tickets.queries import show_ticket
from consultant.tickets.references import parse_reference
from consultant.web.rendering import render
from consultant.web.security import PageViewer, Viewer, checked_form, checked_header, state
from workers.enqueue import wake

router = APIRouter()
PRESENT_FOR = timedelta(seconds=60)  # a page that said so this recently has it open
ACTIONS = ("save", "approve", "assign", "note", "close", "spam", "release")
LARGEST_ID = 2**63 - 1  # the largest integer SQLite can bind: no row has a larger id
_UNSAFE_IN_QUOTES = re.compile(r"[^A-Za-z0-9._\- ]")


def ticket_id_of(reference: str) -> int:
    try:
        return parse_reference(reference)
    except ValueError:
        raise HTTPException(404, f"No ticket {reference}.") from None


def existing_ticket_id(engine: Engine, reference: str) -> int:
    """The id of the ticket REFERENCE names, which must exist (else 404)."""
    ticket_id = ticket_id_of(reference)
    with read_transaction(engine) as session:
        if session.get(Ticket, ticket_id) is None:
            raise HTTPException(404, f"No ticket {reference}.")
    return ticket_id


def download_disposition(filename: str) -> str:
    """Content-Disposition for a download under the customer's own file name (RFC 6266):
    the name in UTF-8 as `filename*` (RFC 5987), and an ASCII stand-in for clients that
    know only `filename`. Quoted, so nothing in a name can end the header field."""
    name = filename or "attachment"
    fallback = _UNSAFE_IN_QUOTES.sub("_", name).strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def others_viewing(engine: Engine, ticket_id: int, me: str) -> list[str]:
    """Record that ME has the ticket open (if that need not wait); the others who have
    it open now."""
    now = utcnow()

    def seen(session: Session) -> None:
        row = session.get(TicketViewer, (ticket_id, me))
        if row is None:
            session.add(TicketViewer(ticket_id=ticket_id, viewer=me, seen_at=now))
        else:
            row.seen_at = now
            session.add(row)

    write_if_free(engine, "ticket-presence", seen)
    with read_transaction(engine) as session:
        return list(
            session.exec(
                select(TicketViewer.viewer).where(
                    TicketViewer.ticket_id == ticket_id,
                    TicketViewer.viewer != me,
                    col(TicketViewer.seen_at) > now - PRESENT_FOR,
                )
            ).all()
        )


def preview(
    session: Session, composer: Composer, ticket_id: int, body: str, cc: list[str]
) -> dict[str, Any]:
    """The reply as it would go out now, copied to CC: addresses, subject, text and
    HTML."""
    draft = session.exec(
        select(Draft).where(Draft.ticket_id == ticket_id).order_by(col(Draft.version).desc())
    ).first()
    try:
        outgoing = compose_reply(session, composer, ticket_id, draft, body, cc)
    except ValueError:  # no customer message to answer
        return {"to": [], "cc": [], "subject": "", "text": "", "html": ""}
    return {
        "to": outgoing.to,
        "cc": outgoing.cc,
        "subject": outgoing.subject,
        "text": outgoing.text,
        "html": outgoing.html or "",
    }


def _page(
    request: Request,
    viewer: Viewer,
    ticket_id: int,
    *,
    error: str = "",
    kept_body: str | None = None,
    kept_cc: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    _, engine, _ = state(request)
    composer = request.app.state.composer
    cc = kept_cc or []
    with read_transaction(engine) as session:
        ticket = show_ticket(session, ticket_id, composer.our_addresses)
        if ticket is None:
            raise HTTPException(404, "No such ticket.")
        users = session.exec(
            select(User.email).where(User.active == True).order_by(User.email)  # noqa: E712
        ).all()
        draft = ticket["drafts"][-1] if ticket["drafts"] else None
        body = kept_body if kept_body is not None else (draft["body"] if draft else "")
        shown = preview(session, composer, ticket_id, body, cc) if draft else None
    return render(
        request,
        "web/ticket.html",
        viewer,
        status_code,
        ticket=ticket,
        draft=draft,
        body=body,
        preview=shown,
        cc=cc,
        users=users,
        others=others_viewing(engine, ticket_id, viewer.user.email),
        error=error,
        done=request.query_params.get("done", ""),
        finding_labels=FINDING_LABELS,
        answer_labels=ANSWER_LABELS,
    )


@router.get("/tickets/{reference}")
def ticket(request: Request, reference: str, viewer: PageViewer) -> HTMLResponse:
    return _page(request, viewer, ticket_id_of(reference))


@router.get("/tickets/{reference}/attachments/{attachment_id}")
def attachment(
    request: Request, reference: str, attachment_id: int, viewer: PageViewer
) -> Response:
    """The file as the customer sent it, always as a download (never shown inline)."""
    _, engine, _ = state(request)
    ticket_id = ticket_id_of(reference)
    if not 0 < attachment_id <= LARGEST_ID:
        raise HTTPException(404, "No such attachment stored on this ticket.")
    with read_transaction(engine) as session:
        found = session.exec(
            select(Attachment)
            .join(Message)
            .where(Attachment.id == attachment_id, Message.ticket_id == ticket_id)
        ).first()
        if found is None or found.blob_sha256 is None:
            raise HTTPException(404, "No such attachment stored on this ticket.")
        data = load_blob(session, found.blob_sha256)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": download_disposition(found.filename)},
    )


class PreviewRequest(BaseModel):
    body: str = Field(max_length=200_000)
    cc: list[str] = Field(default=[], max_length=1000)


@router.post("/tickets/{reference}/preview")
def preview_reply(
    request: Request,
    reference: str,
    sent: PreviewRequest,
    viewer: Annotated[Viewer, Depends(checked_header)],
) -> JSONResponse:
    _, engine, _ = state(request)
    ticket_id = existing_ticket_id(engine, reference)
    with read_transaction(engine) as session:
        shown = preview(session, request.app.state.composer, ticket_id, sent.body, sent.cc)
    return JSONResponse(shown)


@router.post("/tickets/{reference}/presence")
def presence(
    request: Request, reference: str, viewer: Annotated[Viewer, Depends(checked_header)]
) -> JSONResponse:
    _, engine, _ = state(request)
    ticket_id = existing_ticket_id(engine, reference)
    return JSONResponse({"others": others_viewing(engine, ticket_id, viewer.user.email)})


def _int(form: FormData, name: str) -> int:
    value = form.get(name)
    if not isinstance(value, str) or not value.isdigit():
        raise HTTPException(400, f"The form has no {name}; reload the page.")
    return int(value)


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@router.post("/tickets/{reference}/{action}")
def act(
    request: Request,
    reference: str,
    action: str,
    viewer: PageViewer,
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    if action not in ACTIONS:
        raise HTTPException(404, "No such action.")
    _, engine, _ = state(request)
    ticket_id = ticket_id_of(reference)
    seen = _int(form, "version")
    me = viewer.user.email
    body = _text(form, "body")
    cc = [value for value in form.getlist("cc") if isinstance(value, str)]
    try:
        if action == "save":
            save_draft(engine, ticket_id, me, body, seen)
        elif action == "approve":
            approve(
                engine,
                ticket_id,
                me,
                request.app.state.queue_reply,
                body or None,
                seen,
                cc=cc,
                confirm_warnings=form.get("confirm_warnings") == "yes",
            )
            wake(request.app.state.celery)
        elif action == "assign":
            assign(engine, ticket_id, me, _text(form, "assignee") or None, seen)
        elif action == "note":
            add_note(engine, ticket_id, me, _text(form, "note"), seen)
        elif action == "close":
            close(engine, ticket_id, me, seen)
        elif action == "release":
            release(engine, ticket_id, me, seen)
            wake(request.app.state.celery)
        else:
            mark_spam(engine, ticket_id, me, seen)
    except TicketActionError as exc:
        status_code = 409 if isinstance(exc, StaleTicket) else 400
        return _page(
            request,
            viewer,
            ticket_id,
            error=str(exc),
            kept_body=body,
            kept_cc=cc,
            status_code=status_code,
        )
    return RedirectResponse(f"/tickets/{reference}?done={action}", status_code=303)
