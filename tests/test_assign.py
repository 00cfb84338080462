"""Assigning a ticket from the CLI, the JSON API and the review app's form: each takes
an active user's address (in any case) or nobody, and refuses anything else the same
way, leaving the ticket as it was. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from consultant.accounts.users import add_user, create_token
from consultant.cli import main
from consultant.config import Config, load_config
from consultant.tickets.models import Ticket
from consultant.web.app import create_app
from tests.test_web import PASSWORD, client_for, csrf_of, new_ticket, version_of

DANA = "dana@caseconsultant.example"
LEE = "lee@caseconsultant.example"
GONE = "gone@caseconsultant.example"

# What each way of assigning must refuse, and the words saying why.
REFUSED = [
    ("x" * 100_000, "is not a plain email address"),
    ("<b>@x", "is not a plain email address"),
    ("dana", "is not a plain email address"),
    ("kim@caseconsultant.example", "no user kim@caseconsultant.example"),
    (GONE, f"{GONE} is inactive"),
]


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[database]\nurl = "{database_url}"\n'
    )
    return load_config(path)


@pytest.fixture
def app(config: Config, engine: Engine) -> FastAPI:
    add_user(engine, DANA, PASSWORD, name="Dana")
    add_user(engine, LEE, PASSWORD, name="Lee")
    gone = add_user(engine, GONE, PASSWORD)
    with Session(engine) as session, session.begin():
        gone.active = False
        session.add(gone)
    new_ticket(engine)
    return create_app(config, engine)


def assignee(engine: Engine) -> str | None:
    with Session(engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        return ticket.assignee


def test_the_cli_assigns_active_users_only(config: Config, app: FastAPI, engine: Engine) -> None:
    def assign(user: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["--config", str(config.source), "tickets", "assign", "1", user]
        )
        return result.exit_code, result.stdout if result.exit_code == 0 else result.output

    assert assign("Lee@CaseConsultant.example") == (0, f"CC-000001: assigned to {LEE}\n")
    for value, why in REFUSED:
        code, output = assign(value)
        assert code == 1 and why in output and "x" * 100 not in output, output
        assert assignee(engine) == LEE
    assert assign("nobody") == (0, "CC-000001: assigned to nobody\n")
    assert assignee(engine) is None
    assign(DANA)
    assert assign("") == (0, "CC-000001: assigned to nobody\n") and assignee(engine) is None


def test_the_api_assigns_active_users_only(app: FastAPI, engine: Engine) -> None:
    client = TestClient(app, headers={"Authorization": f"Bearer {create_token(engine, 1)}"})
    done = client.post("/api/tickets/1/assign", json={"assignee": LEE.upper()})
    assert done.status_code == 200 and assignee(engine) == LEE
    for value, why in REFUSED:
        refused = client.post("/api/tickets/CC-000001/assign", json={"assignee": value})
        assert refused.status_code in (400, 422), refused.text
        assert refused.status_code == 422 or why in refused.json()["detail"]
        assert "x" * 100 not in refused.text
        assert assignee(engine) == LEE
    for nobody in (None, "", "nobody"):
        client.post("/api/tickets/CC-000001/assign", json={"assignee": DANA})
        cleared = client.post("/api/tickets/CC-000001/assign", json={"assignee": nobody})
        assert cleared.status_code == 200 and assignee(engine) is None


def test_the_review_app_assigns_active_users_only(app: FastAPI, engine: Engine) -> None:
    dana = client_for(app, DANA)
    page = dana.get("/tickets/CC-000001").text
    assert f'<option value="{GONE}"' not in page  # only active users are offered

    def post(value: str) -> tuple[int, str]:
        answer = dana.post(
            "/tickets/CC-000001/assign",
            data={"csrf_token": csrf_of(page), "version": version_of(engine, 1), "assignee": value},
        )
        return answer.status_code, answer.text

    for value, why in REFUSED:
        code, text = post(value)
        assert code == 400 and why in text
        assert assignee(engine) is None
    assert post(LEE)[0] == 303 and assignee(engine) == LEE
    assert post("")[0] == 303 and assignee(engine) is None
