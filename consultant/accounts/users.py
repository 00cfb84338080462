"""Users, their passwords (argon2) and API tokens, and the changes an administrator
makes to them (each audited in the ticket audit log, without a ticket).

Tokens are 256 random bits shown once; only their SHA-256 is stored, which is enough
for values nobody can guess.

A login name is a plain lowercased addr-spec and a name one printable line: both are
shown in pages, written into audit entries and assignees, and an address may become a
header, so nothing else is let in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consultant.accounts.models import ROLES, ApiToken, LoginFailure, User, WebSession
from consultant.database.engine import read_transaction, transaction, write_if_free
from consultant.database.types import utcnow
from consultant.mail.addresses import MAX_LENGTH, is_addr_spec
from consultant.tickets.models import AuditEvent

TOKEN_PREFIX = "cct_"
MIN_PASSWORD = 12
MAX_NAME = 255
SHOWN = 60  # characters of a refused value repeated in an error

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verifying against this when the address is unknown takes as long as a real
    check, so response times do not tell which addresses have accounts. Made on first
    use: a hash takes argon2's 64 MiB, which no other command should carry."""
    return _hasher.hash("not a password of anyone's")


class AccountError(Exception):
    """The account change cannot be made; the message says why."""


class UnknownAccount(AccountError):
    """There is no such user, or no such token of theirs."""


class LastAdministrator(AccountError):
    """The change would leave nobody able to administer the accounts."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _shown(text: str) -> str:
    """TEXT for an error message: quoted, and cut short (it may be 100,000 characters)."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def login_name(text: str) -> str:
    """TEXT as a login name: a plain addr-spec whose domain has a dot (or is localhost,
    for a single-machine install), lowercased."""
    email = text.strip().lower()
    domain = email.rpartition("@")[2]
    if not is_addr_spec(email) or not ("." in domain or domain == "localhost"):
        raise AccountError(
            f"{_shown(text)} is not a plain email address like dana@example.com "
            f"(at most {MAX_LENGTH} characters: no spaces, quotes, <> or display name)"
        )
    return email


def display_name(text: str, what: str = "a name") -> str:
    """TEXT as a user's or token's name: one line of printable characters."""
    name = text.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise AccountError(
            f"{what} is one line of printable characters, at most {MAX_NAME}; {_shown(text)} is not"
        )
    return name


def add_user(
    engine: Engine,
    email: str,
    password: str,
    *,
    role: str = "consultant",
    name: str = "",
    actor: str = "system",
) -> User:
    email = login_name(email)
    name = display_name(name)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    try:
        with transaction(engine) as session:
            user = User(email=email, name=name, role=role, password_hash=_hasher.hash(password))
            session.add(user)
            session.flush()
            _audit(session, actor, "user.added", user, role=role)
            return user
    except IntegrityError:
        raise AccountError(f"a user {email} exists already") from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def _audit(session: Session, actor: str, action: str, user: User, **detail: object) -> None:
    """ACTION by ACTOR on USER's account, in the audit log beside the tickets' events."""
    session.add(AuditEvent(actor=actor, action=action, detail={"user": user.email, **detail}))


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The active user EMAIL if PASSWORD is theirs."""
    with Session(engine) as session:
        user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        with transaction(engine) as session:
            stored = session.get(User, user.id)
            assert stored is not None
            stored.password_hash = _hasher.hash(password)
            session.add(stored)
    return user


def create_token(engine: Engine, user_id: int, name: str = "", *, actor: str = "system") -> str:
    """A new API token for USER_ID; the only time its value is known."""
    name = display_name(name, "a token's name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise UnknownAccount(f"no user with id {user_id}")
        if not user.active:
            raise AccountError(
                f"{user.email} is inactive; `consultant users activate {user.email}` first"
            )
        api_token = ApiToken(user_id=user_id, name=name, token_hash=digest(token))
        session.add(api_token)
        session.flush()
        _audit(session, actor, "token.created", user, token=api_token.id, name=name)
    return token


LAST_USE_EVERY_S = 300  # how stale a token's last_used_at may get before it is written


def user_for_token(engine: Engine, token: str) -> User | None:
    """The active user TOKEN belongs to. Looking it up is a read: its last use is written
    only once that is LAST_USE_EVERY_S old, and skipped while the database is busy."""
    with read_transaction(engine) as session:
        found = session.exec(
            select(ApiToken, User)
            .join(User)
            .where(ApiToken.token_hash == digest(token), User.active == True)  # noqa: E712
        ).first()
    if found is None:
        return None
    api_token, user = found
    now = utcnow()
    last = api_token.last_used_at
    if last is not None and (now - last).total_seconds() < LAST_USE_EVERY_S:
        return user

    def touch(session: Session) -> None:
        stored = session.get(ApiToken, api_token.id)
        if stored is not None:
            stored.last_used_at = now
            session.add(stored)

    write_if_free(engine, "token-last-used", touch)
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def require_user(session: Session, email: str) -> User:
    """The user EMAIL (any case), found as stored: an account made before addresses
    were checked can still be deactivated."""
    user = find_user(session, email)
    if user is None:
        wanted = email.strip().lower()
        raise UnknownAccount(
            f"no user {wanted if is_addr_spec(wanted) else _shown(wanted)}; "
            "`consultant users list` shows them"
        )
    return user


def assignable_user(session: Session, email: str) -> User:
    """The active user a ticket can be given to, by address in any case."""
    user = require_user(session, login_name(email))
    if not user.active:
        raise AccountError(
            f"{user.email} is inactive; choose someone else, or "
            f"`consultant users activate {user.email}`"
        )
    return user


def set_active(engine: Engine, email: str, active: bool, *, actor: str) -> bool:
    """Let EMAIL log in again, or shut them out at once; False if they already were.

    Deactivating ends their browser sessions (activating again needs a new login);
    their tokens are refused while they are inactive and kept for when they return.
    The active administrators' rows are locked first, in id order, so two of them
    deactivating each other take turns and the second finds itself the last one.
    """
    with transaction(engine) as session:
        admins = session.exec(
            select(User)
            .where(User.role == "admin", User.active == True)  # noqa: E712
            .order_by(col(User.id))
            .with_for_update()
        ).all()
        user = require_user(session, email)
        if user.active == active:
            return False
        if not active and user.is_admin and all(admin.id == user.id for admin in admins):
            raise LastAdministrator(
                f"{user.email} is the last active administrator; make another one first "
                "(`consultant users add EMAIL --role admin`)"
            )
        user.active = active
        session.add(user)
        if not active:
            _end_sessions(session, user)
        _audit(session, actor, "user.activated" if active else "user.deactivated", user)
        return True


def reset_password(engine: Engine, email: str, password: str, *, actor: str) -> None:
    """Give EMAIL a new password: their browser sessions end, and failed logins that
    locked the address out are forgotten, so the new password works at once."""
    _check_password(password)
    hashed = _hasher.hash(password)
    with transaction(engine) as session:
        user = require_user(session, email)
        user.password_hash = hashed
        session.add(user)
        _end_sessions(session, user)
        session.exec(  # type: ignore[call-overload]
            delete(LoginFailure).where(col(LoginFailure.email) == user.email)
        )
        _audit(session, actor, "user.password_reset", user)


def _end_sessions(session: Session, user: User) -> None:
    session.exec(  # type: ignore[call-overload]
        delete(WebSession).where(col(WebSession.user_id) == user.id)
    )


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """USER's API tokens, oldest first."""
    return list(
        session.exec(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(col(ApiToken.id))
        ).all()
    )


def token_summary(api_token: ApiToken) -> dict[str, Any]:
    """What may be shown of a token: never its secret, nor its hash."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": api_token.id,
        "name": api_token.name,
        "created": when(api_token.created_at),
        "last_used": when(api_token.last_used_at),
    }


def revoke_token(engine: Engine, email: str, which: str, *, actor: str) -> ApiToken:
    """Delete EMAIL's token named WHICH, or with the id WHICH: it stops working at once."""
    key = which.strip()
    with transaction(engine) as session:
        user = require_user(session, email)
        found = [
            api_token
            for api_token in tokens_of(session, user)
            if api_token.name == key
            or (key.isascii() and key.isdigit() and api_token.id == int(key))
        ]
        if not found:
            raise UnknownAccount(
                f"{user.email} has no token {_shown(key)}; "
                f"`consultant users tokens {user.email}` lists them"
            )
        if len(found) > 1:
            raise AccountError(
                f"{len(found)} tokens are named {_shown(key)}; revoke one by its id "
                f"(`consultant users tokens {user.email}` lists them)"
            )
        [api_token] = found
        session.delete(api_token)
        _audit(session, actor, "token.revoked", user, token=api_token.id, name=api_token.name)
        return api_token
