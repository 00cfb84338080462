"""Browser sessions kept in the database: the cookie holds a random id, the row its
hash, so logging out (or an administrator removing the row) ends the session for real,
and every machine running the review app sees the same sessions."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from consultant.accounts.models import LoginFailure, User, WebSession
from consultant.accounts.users import digest
from consultant.database.engine import transaction
from consultant.database.types import utcnow

# Password guessing: this many failures in the window lock out an address, and (higher,
# an office may share one address) a client.
FAILURES_PER_ADDRESS = 5
FAILURES_PER_CLIENT = 20
FAILURE_WINDOW = timedelta(minutes=15)


def open_session(engine: Engine, user_id: int, hours: float) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with transaction(engine) as session:
        session.add(
            WebSession(
                token_hash=digest(token),
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
        # Expired sessions of anyone go at each login: the table stays small.
        session.exec(  # type: ignore[call-overload]
            delete(WebSession).where(col(WebSession.expires_at) < now)
        )
    return token


def session_user(engine: Engine, token: str) -> User | None:
    with Session(engine) as session:
        found = session.exec(
            select(User)
            .join(WebSession)
            .where(
                WebSession.token_hash == digest(token),
                col(WebSession.expires_at) > utcnow(),
                User.active == True,  # noqa: E712
            )
        ).first()
        return found


def close_session(engine: Engine, token: str) -> None:
    with transaction(engine) as session:
        session.exec(  # type: ignore[call-overload]
            delete(WebSession).where(col(WebSession.token_hash) == digest(token))
        )


def locked_out(engine: Engine, email: str, client: str) -> bool:
    """Whether logins for EMAIL or from CLIENT are refused for now."""
    since = utcnow() - FAILURE_WINDOW
    recent = select(func.count()).select_from(LoginFailure).where(col(LoginFailure.at) > since)
    with Session(engine) as session:
        by_address = session.exec(recent.where(LoginFailure.email == email.strip().lower())).one()
        by_client = session.exec(recent.where(LoginFailure.client == client)).one()
    return by_address >= FAILURES_PER_ADDRESS or by_client >= FAILURES_PER_CLIENT


def record_failure(engine: Engine, email: str, client: str) -> None:
    with transaction(engine) as session:
        session.add(LoginFailure(email=email.strip().lower()[:320], client=client[:64]))
        session.exec(  # type: ignore[call-overload]
            delete(LoginFailure).where(col(LoginFailure.at) < utcnow() - FAILURE_WINDOW * 4)
        )
