"""The JSON API for scripts and integrations: tickets and users (codes are in
web.codes). Every call needs `Authorization: Bearer <token>`; a token acts as its user,
with that user's role, and every action is audited under the user's address."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from consultant.accounts.models import ROLES, User
from consultant.accounts.users import AccountError, add_user
from consultant.tickets.actions import (
    StaleTicket,
    TicketActionError,
    add_note,
    approve,
    assign,
    close,
)
from consultant.tickets.models import TICKET_STATUSES
from consultant.tickets.queries import OPEN_WORK, review_queue, show_ticket
from consultant.web.security import ApiUser, admin_api_user, state
from consultant.web.ticket_page import ticket_id_of
from workers.enqueue import request_send

router = APIRouter(prefix="/api", tags=["api"])
AdminUser = Annotated[User, Depends(admin_api_user)]


def _user(user: User) -> dict[str, Any]:
    return {"email": user.email, "name": user.name, "role": user.role, "active": user.active}


@router.get("/me")
def me(user: ApiUser) -> dict[str, Any]:
    return _user(user)


@router.get("/tickets")
def tickets(
    request: Request, user: ApiUser, status: str | None = None, assignee: str | None = None
) -> dict[str, Any]:
    """The review queue (open work unless STATUS), ready tickets first, then by due time."""
    if status is not None and status not in TICKET_STATUSES:
        raise HTTPException(422, f"status must be one of {', '.join(TICKET_STATUSES)}")
    _, engine, _ = state(request)
    with Session(engine) as session:
        return review_queue(session, statuses=(status,) if status else OPEN_WORK, assignee=assignee)


@router.get("/tickets/{reference}")
def ticket(request: Request, reference: str, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    with Session(engine) as session:
        found = show_ticket(session, ticket_id_of(reference))
    if found is None:
        raise HTTPException(404, f"No ticket {reference}.")
    return found


class Approve(BaseModel):
    body: str | None = Field(default=None, max_length=200_000)
    version: int | None = None  # the ticket version the caller saw; refused if stale


class Assign(BaseModel):
    assignee: str | None
    version: int | None = None


class NoteIn(BaseModel):
    body: str = Field(max_length=100_000)
    version: int | None = None


class Version(BaseModel):
    version: int | None = None


def _acting(call: Any) -> dict[str, Any]:
    try:
        result = call()
    except StaleTicket as exc:
        raise HTTPException(409, str(exc)) from None
    except TicketActionError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"ok": True, **(result or {})}


@router.post("/tickets/{reference}/approve")
def approve_ticket(
    request: Request, reference: str, sent: Approve, user: ApiUser
) -> dict[str, Any]:
    """Approve the draft (or BODY, kept as a new version) and send the reply."""
    _, engine, _ = state(request)
    queue = request.app.state.queue_reply

    def run() -> dict[str, Any]:
        approval = approve(
            engine, ticket_id_of(reference), user.email, queue, sent.body, sent.version
        )
        queued = request_send(request.app.state.celery, approval.delivery_id)
        return {"version": approval.version, "queued": queued}

    return _acting(run)


@router.post("/tickets/{reference}/assign")
def assign_ticket(request: Request, reference: str, sent: Assign, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    return _acting(
        lambda: assign(engine, ticket_id_of(reference), user.email, sent.assignee, sent.version)
    )


@router.post("/tickets/{reference}/notes")
def note_ticket(request: Request, reference: str, sent: NoteIn, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    return _acting(
        lambda: add_note(engine, ticket_id_of(reference), user.email, sent.body, sent.version)
    )


@router.post("/tickets/{reference}/close")
def close_ticket(request: Request, reference: str, sent: Version, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    return _acting(lambda: close(engine, ticket_id_of(reference), user.email, sent.version))


@router.get("/users")
def users(request: Request, admin: AdminUser) -> list[dict[str, Any]]:
    """Every account (administrators only)."""
    _, engine, _ = state(request)
    with Session(engine) as session:
        return [_user(u) for u in session.exec(select(User).order_by(User.email)).all()]


class NewUser(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    role: str = Field(default="consultant", pattern="^(" + "|".join(ROLES) + ")$")
    name: str = Field(default="", max_length=255)


@router.post("/users", status_code=201)
def create_user(request: Request, sent: NewUser, admin: AdminUser) -> dict[str, Any]:
    """Add an account (administrators only)."""
    _, engine, _ = state(request)
    try:
        user = add_user(engine, sent.email, sent.password, role=sent.role, name=sent.name)
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    return _user(user)
