"""Engines and transactions that behave the same on SQLite and PostgreSQL.

SQLite runs in WAL mode with full fsync, and every transaction takes the write lock at
BEGIN: the poller, the pipe and the SMTP ingress may all write at once, and a deferred
transaction that upgrades to a write lock would fail instead of waiting its turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_S = 30


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written now; the caller should retry later."""


def make_engine(url: str) -> Engine:
    """An engine for URL; a SQLite file's folder is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            f"busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_unavailable(exc: BaseException) -> bool:
    """Whether EXC means the database is down, locked or unreachable (worth a retry),
    rather than a bug or bad data."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@contextmanager
def reporting_unavailable(engine: Engine, failure: str, hint: str) -> Iterator[None]:
    """Connection failures in the block come out as DatabaseUnavailable: FAILURE (with
    {url} for the database, password hidden), the driver's words, and HINT."""
    try:
        yield
    except DBAPIError as exc:
        if is_unavailable(exc):
            url = engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailable(f"{failure.format(url=url)}: {exc.orig}; {hint}") from exc
        raise


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits when the block ends, or rolls back on error.

    Connection failures come out as DatabaseUnavailable so every ingress can answer
    'try again later' (IMAP: leave the message; pipe: exit 75; SMTP: 451).
    """
    with (
        reporting_unavailable(
            engine,
            "database {url} is unavailable",
            "the message was not stored, retry when the database is back",
        ),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session
