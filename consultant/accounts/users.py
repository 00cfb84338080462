"""Users, their passwords (argon2) and API tokens.

Tokens are 256 random bits shown once; only their SHA-256 is stored, which is enough
for values nobody can guess.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from consultant.accounts.models import ROLES, ApiToken, User
from consultant.database.engine import transaction
from consultant.database.types import utcnow

TOKEN_PREFIX = "cct_"
MIN_PASSWORD = 12

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verifying against this when the address is unknown takes as long as a real
    check, so response times do not tell which addresses have accounts. Made on first
    use: a hash takes argon2's 64 MiB, which no other command should carry."""
    return _hasher.hash("not a password of anyone's")


class AccountError(Exception):
    """The account change cannot be made; the message says why."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(
    engine: Engine, email: str, password: str, *, role: str = "consultant", name: str = ""
) -> User:
    email = email.strip().lower()
    if email.count("@") != 1 or any(c.isspace() for c in email):
        raise AccountError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        with transaction(engine) as session:
            user = User(email=email, name=name, role=role, password_hash=_hasher.hash(password))
            session.add(user)
            session.flush()
            return user
    except IntegrityError:
        raise AccountError(f"a user {email} exists already") from None


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


def create_token(engine: Engine, user_id: int, name: str = "") -> str:
    """A new API token for USER_ID; the only time its value is known."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        session.add(ApiToken(user_id=user_id, name=name, token_hash=digest(token)))
    return token


def user_for_token(engine: Engine, token: str) -> User | None:
    with transaction(engine) as session:
        found = session.exec(
            select(ApiToken, User)
            .join(User)
            .where(ApiToken.token_hash == digest(token), User.active == True)  # noqa: E712
        ).first()
        if found is None:
            return None
        api_token, user = found
        api_token.last_used_at = utcnow()
        session.add(api_token)
        return user


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()
