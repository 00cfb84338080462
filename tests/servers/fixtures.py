"""pytest fixtures over tests.servers, loaded with `pytest_plugins = ("tests.servers.fixtures",)`.

One Dovecot and one PostgreSQL server per session; every test gets its own mail user and its
own fresh database, so tests cannot see each other's mail or tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.servers.dovecot import Dovecot
from tests.servers.postgres import PostgresServer
from tests.servers.postgres import postgres_server as start_postgres
from tests.servers.redis import RedisServer, redis_server

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """The session's private Dovecot (plain, STARTTLS and implicit-TLS ports on 127.0.0.1)."""
    with Dovecot() as server:
        yield server


@pytest.fixture
def mail_user(dovecot: Dovecot) -> str:
    """A new user on the session's Dovecot with an empty INBOX; `dovecot.password(name)`."""
    number = next(_user_numbers)
    name = f"user{number}"
    dovecot.add_user(name, f"password-{number}")
    return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The local server at 127.0.0.1:5432 if it answers, else a private cluster for the session."""
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A private Redis for one test (it may stop and restart it)."""
    with redis_server() as server:
        yield server
