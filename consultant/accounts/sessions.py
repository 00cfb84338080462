"""Browser sessions kept in the database: the cookie holds a random id, the row its
hash, so logging out (or an administrator removing the row) ends the session for real,
and every machine running the review app sees the same sessions. Looking one up is a
read: it writes nothing, so pages keep answering while another process writes.

Password guessing is slowed by counting login attempts: each is recorded (committed)
before its password is checked, and is refused when it makes too many, so parallel
guesses cannot all be checked against a count that none of them has raised yet.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from consultant.accounts.models import LoginFailure, User, WebSession
from consultant.accounts.users import digest
from consultant.database.engine import read_transaction, transaction
from consultant.database.types import utcnow

# Password guessing: this many failures in the window lock out an address, and (higher,
# an office may share one address) a client.
FAILURES_PER_ADDRESS = 5
FAILURES_PER_CLIENT = 20
FAILURE_WINDOW = timedelta(minutes=15)


def open_session(engine: Engine, user_id: int, hours: float, attempt: int) -> str:
    """A new session for USER_ID, whose login ATTEMPT (see count_attempt) succeeded and
    so is no failure."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with transaction(engine) as session:
        _forget(session, attempt)
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
    with read_transaction(engine) as session:
        return session.exec(
            select(User)
            .join(WebSession)
            .where(
                WebSession.token_hash == digest(token),
                col(WebSession.expires_at) > utcnow(),
                User.active == True,  # noqa: E712
            )
        ).first()


def close_session(engine: Engine, token: str) -> None:
    with transaction(engine) as session:
        session.exec(  # type: ignore[call-overload]
            delete(WebSession).where(col(WebSession.token_hash) == digest(token))
        )


def count_attempt(engine: Engine, email: str, client: str) -> int | None:
    """Count a login attempt for EMAIL from CLIENT before its password is checked: its
    id (a failure until open_session says otherwise), or None when it would be one too
    many for the address or the client, and it is not kept.

    The attempt commits before the count, so every attempt counts all those committed
    before it: of any number at once, only as many as the limit are let through.
    """
    email = email.strip().lower()[:320]
    client = client[:64]
    with transaction(engine) as session:
        attempt = LoginFailure(email=email, client=client)
        session.add(attempt)
        session.flush()
        session.exec(  # type: ignore[call-overload]
            delete(LoginFailure).where(col(LoginFailure.at) < utcnow() - FAILURE_WINDOW * 4)
        )
    assert attempt.id is not None
    since = utcnow() - FAILURE_WINDOW
    recent = select(func.count()).select_from(LoginFailure).where(col(LoginFailure.at) > since)
    with read_transaction(engine) as session:
        by_address = session.exec(recent.where(LoginFailure.email == email)).one()
        by_client = session.exec(recent.where(LoginFailure.client == client)).one()
    if by_address <= FAILURES_PER_ADDRESS and by_client <= FAILURES_PER_CLIENT:
        return attempt.id
    # Refused without a password check, so it is no failure: a lockout ends
    # FAILURE_WINDOW after the failures that caused it, however often it is hit.
    with transaction(engine) as session:
        _forget(session, attempt.id)
    return None


def _forget(session: Session, attempt: int) -> None:
    session.exec(delete(LoginFailure).where(col(LoginFailure.id) == attempt))  # type: ignore[call-overload]
