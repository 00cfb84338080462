"""The JSON API for scripts and integrations: tickets and users (codes are in
web.codes). Every call needs `Authorization: Bearer <token>`; a token acts as its user,
with that user's role, and every action is audited under the user's address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import select

from consultant.accounts.models import ROLES, User
from consultant.accounts.users import (
    AccountError,
    LastAdministrator,
    UnknownAccount,
    add_user,
    require_user,
    reset_password,
    revoke_token,
    set_active,
    token_summary,
    tokens_of,
)
from consultant.database.engine import read_transaction
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
from consultant.web.ticket_page import existing_ticket_id, ticket_id_of
from workers.enqueue import wake

T = TypeVar("T")
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
    with read_transaction(engine) as session:
        return review_queue(session, statuses=(status,) if status else OPEN_WORK, assignee=assignee)


@router.get("/tickets/{reference}")
def ticket(request: Request, reference: str, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    with read_transaction(engine) as session:
        found = show_ticket(
            session, ticket_id_of(reference), request.app.state.composer.our_addresses
        )
    if found is None:
        raise HTTPException(404, f"No ticket {reference}.")
    return found


class Approve(BaseModel):
    body: str | None = Field(default=None, max_length=200_000)
    version: int | None = None  # the ticket version the caller saw; refused if stale
    # Whom to copy, of the ticket's answer.can_copy: nobody unless named here.
    cc: list[str] = Field(default=[], max_length=1000)
    # The ticket's answer.warnings were read: answer anyway, to the address of record.
    confirm_warnings: bool = False


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
    ticket_id = existing_ticket_id(engine, reference)

    def run() -> dict[str, Any]:
        approval = approve(
            engine,
            ticket_id,
            user.email,
            queue,
            sent.body,
            sent.version,
            cc=sent.cc,
            confirm_warnings=sent.confirm_warnings,
        )
        queued = wake(request.app.state.celery)
        return {"version": approval.version, "queued": queued}

    return _acting(run)


@router.post("/tickets/{reference}/assign")
def assign_ticket(request: Request, reference: str, sent: Assign, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    ticket_id = existing_ticket_id(engine, reference)
    return _acting(
        lambda: {"assignee": assign(engine, ticket_id, user.email, sent.assignee, sent.version)}
    )


@router.post("/tickets/{reference}/notes")
def note_ticket(request: Request, reference: str, sent: NoteIn, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    ticket_id = existing_ticket_id(engine, reference)
    return _acting(lambda: add_note(engine, ticket_id, user.email, sent.body, sent.version))


@router.post("/tickets/{reference}/close")
def close_ticket(request: Request, reference: str, sent: Version, user: ApiUser) -> dict[str, Any]:
    _, engine, _ = state(request)
    ticket_id = existing_ticket_id(engine, reference)
    return _acting(lambda: close(engine, ticket_id, user.email, sent.version))


@router.get("/users")
def users(request: Request, admin: AdminUser) -> list[dict[str, Any]]:
    """Every account (administrators only)."""
    _, engine, _ = state(request)
    with read_transaction(engine) as session:
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
    return _user(
        _changing_account(
            lambda: add_user(
                engine,
                sent.email,
                sent.password,
                role=sent.role,
                name=sent.name,
                actor=admin.email,
            )
        )
    )


def _changing_account(call: Callable[[], T]) -> T:
    try:
        return call()
    except UnknownAccount as exc:
        raise HTTPException(404, str(exc)) from None
    except LastAdministrator as exc:
        raise HTTPException(409, str(exc)) from None
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from None


def _account(engine: Engine, email: str) -> dict[str, Any]:
    with read_transaction(engine) as session:
        return _user(require_user(session, email))


@router.post("/users/{email}/deactivate")
def deactivate_user(request: Request, email: str, admin: AdminUser) -> dict[str, Any]:
    """Shut the user out at once: sessions end, tokens and logins are refused (the
    tokens are kept for `activate`). Refused (409) for the last active administrator."""
    _, engine, _ = state(request)
    _changing_account(lambda: set_active(engine, email, False, actor=admin.email))
    return _account(engine, email)


@router.post("/users/{email}/activate")
def activate_user(request: Request, email: str, admin: AdminUser) -> dict[str, Any]:
    """Let the user log in again; their kept tokens work again."""
    _, engine, _ = state(request)
    _changing_account(lambda: set_active(engine, email, True, actor=admin.email))
    return _account(engine, email)


class NewPassword(BaseModel):
    password: str = Field(max_length=1024)


@router.post("/users/{email}/password")
def set_password(
    request: Request, email: str, sent: NewPassword, admin: AdminUser
) -> dict[str, Any]:
    """A new password for the user; their browser sessions end."""
    _, engine, _ = state(request)
    _changing_account(lambda: reset_password(engine, email, sent.password, actor=admin.email))
    return {"ok": True}


@router.get("/users/{email}/tokens")
def user_tokens(request: Request, email: str, admin: AdminUser) -> list[dict[str, Any]]:
    """The user's tokens: id, name, created, last_used (never the secret)."""
    _, engine, _ = state(request)

    def listed() -> list[dict[str, Any]]:
        with read_transaction(engine) as session:
            return [token_summary(t) for t in tokens_of(session, require_user(session, email))]

    return _changing_account(listed)


@router.delete("/users/{email}/tokens/{token}")
def delete_token(request: Request, email: str, token: str, admin: AdminUser) -> dict[str, Any]:
    """Revoke the user's token TOKEN (its id, or its name when that is unique) at once."""
    _, engine, _ = state(request)
    revoked = _changing_account(lambda: revoke_token(engine, email, token, actor=admin.email))
    return {"ok": True, "revoked": {"id": revoked.id, "name": revoked.name}}
