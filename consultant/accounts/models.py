"""Account tables. Secrets are never stored: passwords as argon2 hashes, API tokens and
session ids as keyed hashes, so a copy of the database lets nobody log in.

(No `from __future__ import annotations`: SQLModel reads these annotations.)
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from consultant.database.types import UTCDateTime, utcnow

ROLES = ("consultant", "admin")


def _when(*, index: bool = False, nullable: bool = False):  # type: ignore[no-untyped-def]
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # lowercased; the login name
    name: str = Field(default="", max_length=255)
    role: str = Field(default="consultant", max_length=16)
    password_hash: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = _when()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(SQLModel, table=True):
    """A token for the JSON API; it acts as its user, with that user's role."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(default="", max_length=255)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)


class WebSession(SQLModel, table=True):
    """A logged-in browser. Its cookie holds a random id; the row holds its hash."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = _when()
    expires_at: datetime = _when(index=True)


class LoginFailure(SQLModel, table=True):
    """A failed login, counted to slow down password guessing (per address and client)."""

    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    email: str = Field(max_length=320, index=True)
    client: str = Field(max_length=64, index=True)
