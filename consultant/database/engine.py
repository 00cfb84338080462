"""Engines and transactions that behave the same on SQLite and PostgreSQL.

SQLite runs in WAL mode with full fsync, and every write transaction takes the write
lock at BEGIN: the poller, the pipe and the SMTP ingress may all write at once, and a
deferred transaction that upgrades to a write lock would fail instead of waiting its
turn. A read transaction (`read_transaction`) begins deferred instead: it never waits
for a writer, reading the last committed state from the WAL.

A transaction waits for a lock held by another connection for 30 s on SQLite, as long
as it takes on PostgreSQL; `with_lock_wait` gives an engine on the same pool that waits
less, for the review app, whose pages must say "busy, try again" rather than hang.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from consultant.logs import log_event

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_S = 30
# Execution options the BEGIN below reads (see read_transaction and with_lock_wait).
_READ_ONLY = "consultant_read_only"
_LOCK_WAIT = "consultant_lock_wait_s"
BOOKKEEPING_WAIT_S = 0.05  # write_if_free: a lock free within this is "free"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written now; the caller should retry later."""


class DatabaseUnusable(DatabaseUnavailable):
    """The database answers but cannot be used as it is (not a database, a schema from a
    newer release, no driver for the URL): a person must fix it; until then nothing is
    stored, as when it is down."""


def make_engine(url: str) -> Engine:
    """An engine for URL; a SQLite file's folder is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _begin_postgresql)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
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


def _begin_sqlite(connection) -> None:  # type: ignore[no-untyped-def]
    options = connection.get_execution_options()
    wait = options.get(_LOCK_WAIT, SQLITE_BUSY_TIMEOUT_S)
    # The timeout stays with the pooled connection: set it only when it changes.
    if connection.info.get(_LOCK_WAIT, SQLITE_BUSY_TIMEOUT_S) != wait:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        connection.info[_LOCK_WAIT] = wait
    connection.exec_driver_sql("BEGIN" if options.get(_READ_ONLY) else "BEGIN IMMEDIATE")


def _begin_postgresql(connection) -> None:  # type: ignore[no-untyped-def]
    wait = connection.get_execution_options().get(_LOCK_WAIT)
    if wait is not None:
        # SET LOCAL ends with the transaction, so the pooled connection keeps no trace.
        # PostgreSQL reads 0 as "no limit": the shortest wait it allows is 1 ms.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")


def with_lock_wait(engine: Engine, seconds: float) -> Engine:
    """ENGINE, on the same pool, whose transactions wait at most SECONDS for a lock that
    another connection holds (SQLite's write lock; any lock on PostgreSQL), then fail
    with an OperationalError, which is_unavailable counts as unavailable."""
    return engine.execution_options(**{_LOCK_WAIT: seconds})


def is_unavailable(exc: BaseException) -> bool:
    """Whether EXC means the database is down, locked or unreachable (worth a retry),
    rather than a bug or bad data."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def driver_error(exc: BaseException) -> str:
    """The name of the driver's exception behind EXC, for a log line (its message may
    quote the statement's data)."""
    cause = exc if isinstance(exc, DBAPIError) else exc.__cause__
    return type(cause.orig if isinstance(cause, DBAPIError) else exc).__name__


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
def read_transaction(engine: Engine) -> Iterator[Session]:
    """A session for reading: on SQLite it begins DEFERRED, so it takes no write lock and
    answers at once while another connection writes (PostgreSQL reads never wait for
    writers anyway). Writing in it is a mistake: on SQLite the write would take the lock
    late, and fail where a write transaction would have waited its turn.

    Connection failures come out as DatabaseUnavailable.
    """
    with (
        reporting_unavailable(
            engine, "database {url} is unavailable", "retry when the database is back"
        ),
        Session(engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


def write_if_free(engine: Engine, what: str, work: Callable[[Session], object]) -> None:
    """Do WORK in a write transaction unless that means waiting for another writer (or
    the database is down): then it is skipped, logged as WHAT. For bookkeeping (a
    token's last use, who has a page open) that must never hold up or fail the request
    it rides on."""
    try:
        with transaction(with_lock_wait(engine, BOOKKEEPING_WAIT_S)) as session:
            work(session)
    except DatabaseUnavailable as exc:
        log_event(log, "write-skipped", logging.INFO, what=what, error=driver_error(exc))


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
