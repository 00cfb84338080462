"""The review app while the ticket database is locked or down (served by uvicorn, on
SQLite and PostgreSQL): read pages answer at once while another process holds the write
lock, a write that cannot get the lock soon is a 503 page (HTML for the browser, JSON for
the API) that says to try again, and an unreachable PostgreSQL is a 503, never a 500.
Looking up a token does not write on every call."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from consultant.accounts.models import ApiToken
from consultant.accounts.users import add_user, create_token
from consultant.config import Config, load_config
from consultant.database.engine import make_engine
from consultant.database.types import utcnow
from consultant.tickets.models import Note
from consultant.web.app import WRITE_WAIT_S, create_app
from tests.servers.browser import serve
from tests.servers.ports import LOOPBACK, free_port
from tests.test_web import PASSWORD, csrf_of, new_ticket

DANA = "dana@caseconsultant.example"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
READ_AT_ONCE_S = 2.0  # a read page while the lock is held (it used to wait 30 s)

# Run in a second process: take the database's write lock and keep it until stdin
# closes. SQLite: BEGIN IMMEDIATE. PostgreSQL: every table locked EXCLUSIVE, which
# lets reads through and holds every write, as SQLite's lock does.
HOLD_WRITE_LOCK = r"""
import sys
url = sys.argv[1]
if url.startswith("sqlite:///"):
    import sqlite3
    db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
else:
    import psycopg
    from psycopg import sql
    db = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
    tables = [row[0] for row in db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    db.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
        sql.SQL(", ").join(map(sql.Identifier, tables))))
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, database_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def web_config(tmp_path: Path, code_db: Path, database_url: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[codes]\ndatabase = "{code_db}"\n'
    )
    return load_config(path)


@dataclass
class Site:
    url: str
    token: str  # dana's API token


@pytest.fixture
def site(tmp_path: Path, code_db: Path, database_url: str, engine: Engine) -> Iterator[Site]:
    dana = add_user(engine, DANA, PASSWORD)
    assert dana.id is not None
    token = create_token(engine, dana.id, "script")
    new_ticket(engine)
    with serve(create_app(web_config(tmp_path, code_db, database_url), engine)) as url:
        yield Site(url, token)


def logged_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=20, headers=BROWSER)
    page = client.get("/login")
    answer = client.post(
        "/login", data={"email": DANA, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 303, answer.text
    return client


def timed(call, *args, **kwargs) -> tuple[httpx.Response, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    answer = call(*args, **kwargs)
    return answer, time.monotonic() - started


def assert_busy_page(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "The database is busy or unavailable" in answer.text and "Try again" in answer.text
    assert answer.headers["retry-after"].isdigit()


def test_pages_answer_while_another_process_holds_the_write_lock(
    site: Site, database_url: str, engine: Engine
) -> None:
    dana = logged_in(site.url)
    page = dana.get("/tickets/CC-000001").text
    csrf = csrf_of(page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    note_form = {"csrf_token": csrf, "version": version[1], "note": "Made-up note."}
    api = httpx.Client(
        base_url=site.url, timeout=20, headers={"Authorization": f"Bearer {site.token}"}
    )
    with write_lock_held(database_url):
        for path in ("/", "/queue/rows", "/tickets/CC-000001", "/codes?q=E11.65", "/codes/E11.65"):
            answer, seconds = timed(dana.get, path)
            assert answer.status_code == 200 and seconds < READ_AT_ONCE_S, (path, seconds)
        again, seconds = timed(dana.get, "/login")  # logged in already: on to the queue
        assert again.status_code == 303 and seconds < READ_AT_ONCE_S
        presence, seconds = timed(
            dana.post, "/tickets/CC-000001/presence", headers={"X-CSRF-Token": csrf}
        )
        assert presence.json() == {"others": []} and seconds < READ_AT_ONCE_S
        for path in ("/api/me", "/api/tickets", "/api/tickets/CC-000001", "/api/codes/E11.65"):
            answer, seconds = timed(api.get, path)
            assert answer.status_code == 200 and seconds < READ_AT_ONCE_S, (path, seconds)
        assert api.get("/api/me").json()["email"] == DANA

        stranger = httpx.Client(base_url=site.url, timeout=20, headers=BROWSER)
        login_csrf = csrf_of(stranger.get("/login").text)
        with ThreadPoolExecutor(3) as pool:  # each waits its bounded time: in parallel
            note = pool.submit(timed, dana.post, "/tickets/CC-000001/note", data=note_form)
            api_note = pool.submit(
                timed, api.post, "/api/tickets/CC-000001/notes", json={"body": "Made-up note."}
            )
            login = pool.submit(
                timed,
                stranger.post,
                "/login",
                data={"email": DANA, "password": PASSWORD, "csrf_token": login_csrf},
            )
        for _, seconds in (note.result(), api_note.result(), login.result()):
            assert seconds < WRITE_WAIT_S + 3, seconds
        assert_busy_page(note.result()[0])
        assert_busy_page(login.result()[0])
        refused = api_note.result()[0]
        assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
        assert "The database is busy or unavailable" in refused.json()["detail"]
    with Session(engine) as session:
        assert session.exec(select(Note)).all() == []
    saved = dana.post("/tickets/CC-000001/note", data=note_form)
    assert saved.status_code == 303  # the lock is gone: the same form goes through


def test_an_unreachable_postgresql_is_a_503_page_not_a_500(tmp_path: Path, code_db: Path) -> None:
    closed = f"postgresql+psycopg://postgres@{LOOPBACK}:{free_port()}/nothing"
    app = create_app(web_config(tmp_path, code_db, closed), make_engine(closed))
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    client.cookies.set("cc_session", "a-session-from-before-the-outage")
    for path in ("/", "/tickets/CC-000001", "/codes/E11.65"):
        assert_busy_page(client.get(path, headers=BROWSER))  # type: ignore[arg-type]
    api = client.get("/api/me", headers={"Authorization": "Bearer cct_anything"})
    assert api.status_code == 503 and "try again" in api.json()["detail"].lower()
    page = TestClient(app).get("/login")  # no session to look up: the form itself
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    login = TestClient(app, raise_server_exceptions=False)
    login.cookies.update(page.cookies)
    answer = login.post(
        "/login",
        data={"email": DANA, "password": PASSWORD, "csrf_token": token[1]},
        headers=BROWSER,
    )
    assert_busy_page(answer)  # type: ignore[arg-type]


def test_a_token_records_its_last_use_without_a_write_per_call(
    tmp_path: Path, code_db: Path, database_url: str, engine: Engine
) -> None:
    dana = add_user(engine, DANA, PASSWORD)
    assert dana.id is not None
    token = create_token(engine, dana.id, "script")
    client = TestClient(create_app(web_config(tmp_path, code_db, database_url), engine))

    def last_used() -> datetime | None:
        with Session(engine) as session:
            return session.exec(select(ApiToken.last_used_at)).one()

    assert last_used() is None
    for _ in range(3):
        assert (
            client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
    first = last_used()
    assert first is not None and first > utcnow() - timedelta(minutes=1)
    for _ in range(3):
        assert (
            client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
    assert last_used() == first  # written once, not on every call
