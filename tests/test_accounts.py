"""Accounts from the command line (`consultant users`) and the administrators' JSON API:
addresses and names are checked where accounts are made; a deactivated user is shut
out at once (sessions, tokens, logins); a password reset ends the user's sessions;
tokens are listed without their secret and revoked; the last active administrator
stays; every change is audited. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.accounts.models import User
from consultant.accounts.users import add_user, create_token
from consultant.cli import main
from consultant.config import Config, load_config
from consultant.tickets.models import AuditEvent
from consultant.web.app import create_app
from tests.test_web import PASSWORD, client_for, csrf_of

ADMIN = "admin@caseconsultant.example"
DANA = "dana@caseconsultant.example"
LEE = "lee@caseconsultant.example"
NEW_PASSWORD = "a new made-up passphrase"

BAD_ADDRESSES = [
    "<b>@x",
    "<b>@x.example",
    "dana coder@clinic.example",
    '"dana"@clinic.example',
    "dana@clinic",  # no dot in the domain
    "dana@@clinic.example",
    "a@b@clinic.example",
    "dana\x00@clinic.example",
    "dana@clinic.example\r\nBcc: x@y.example",
    ".dana@clinic.example",
    "dana..coder@clinic.example",
    "dana@-clinic.example",
    "dana@clinic..example",
    "Dana Coder <dana@clinic.example>",
    "x" * 100_000 + "@clinic.example",
    "",
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
    add_user(engine, ADMIN, PASSWORD, role="admin")
    add_user(engine, DANA, PASSWORD, name="Dana")
    add_user(engine, LEE, PASSWORD, name="Lee")
    return create_app(config, engine)


def users(config: Config, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(config.source), "users", *args], input=input)


def api(app: FastAPI, token: str | None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def can_log_in(app: FastAPI, email: str, password: str = PASSWORD) -> bool:
    client = client_for(app)
    page = client.get("/login")
    answer = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    return answer.status_code == 303


def emails(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(User.email).order_by(User.email)).all())


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_only_plain_addresses_become_accounts(
    config: Config, app: FastAPI, engine: Engine, address: str
) -> None:
    before = emails(engine)
    made = users(config, "add", address, "--password-stdin", input=PASSWORD + "\n")
    assert made.exit_code == 1
    assert "is not a plain email address like dana@example.com" in made.output
    assert "x" * 100 not in made.output  # a 100,000-character address is not echoed back
    sent = api(app, create_token(engine, 1)).post(
        "/api/users", json={"email": address, "password": PASSWORD}
    )
    assert sent.status_code in (400, 422), sent.text
    assert emails(engine) == before


def test_addresses_are_kept_lowercase_and_names_one_printable_line(
    config: Config, app: FastAPI, engine: Engine
) -> None:
    made = users(
        config, "add", "Kim.O'Neil+Billing@Clinic.Example", "--password-stdin", input=PASSWORD
    )
    assert made.exit_code == 0, made.output
    assert "Added kim.o'neil+billing@clinic.example (consultant)." in made.output
    assert users(config, "add", "ops@localhost", "--password-stdin", input=PASSWORD).exit_code == 0
    admin = api(app, create_token(engine, 1))
    for name in ("Dana\nCoder", "Dana\x1b[31m", "x" * 256):
        cli = users(
            config, "add", "pat@clinic.example", "--name", name, "--password-stdin", input=PASSWORD
        )
        assert cli.exit_code == 1 and "a name is one line" in cli.output
        sent = admin.post(
            "/api/users", json={"email": "pat@clinic.example", "password": PASSWORD, "name": name}
        )
        assert sent.status_code in (400, 422), sent.text
    token = users(config, "token", DANA, "--name", "billing\nscript")
    assert token.exit_code == 1 and "a token's name is one line" in token.output
    assert "pat@clinic.example" not in emails(engine)
    created = admin.post(
        "/api/users", json={"email": "Pat@Clinic.Example", "password": PASSWORD, "name": "Pat"}
    )
    assert created.status_code == 201 and created.json()["email"] == "pat@clinic.example"


def test_a_deactivated_user_is_shut_out_at_once(
    config: Config, app: FastAPI, engine: Engine
) -> None:
    dana = client_for(app, DANA)
    token = create_token(engine, 2, "script")
    assert dana.get("/").status_code == 200
    assert api(app, token).get("/api/me").status_code == 200

    done = users(config, "deactivate", DANA)
    assert done.exit_code == 0, done.output
    assert dana.get("/").status_code == 303  # back to the login page
    assert api(app, token).get("/api/me").status_code == 401
    assert not can_log_in(app, DANA)
    [line] = [line for line in users(config, "list").stdout.splitlines() if DANA in line]
    assert line.endswith("(inactive)")
    again = users(config, "deactivate", DANA)
    assert again.exit_code == 0 and "already inactive" in again.output

    assert users(config, "activate", DANA).exit_code == 0
    assert dana.get("/").status_code == 303  # its session stays ended
    assert can_log_in(app, DANA)
    assert api(app, token).get("/api/me").status_code == 200  # tokens are kept, not revoked

    admin = api(app, create_token(engine, 1))
    lee_token = create_token(engine, 3)
    off = admin.post(f"/api/users/{LEE}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert api(app, lee_token).get("/api/me").status_code == 401
    on = admin.post(f"/api/users/{LEE.upper()}/activate")
    assert on.status_code == 200 and on.json()["active"] is True
    assert api(app, lee_token).get("/api/me").status_code == 200
    assert admin.post("/api/users/nobody@clinic.example/deactivate").status_code == 404
    assert api(app, lee_token).post(f"/api/users/{DANA}/deactivate").status_code == 403
    missing = users(config, "deactivate", "nobody@clinic.example")
    assert missing.exit_code == 1 and "no user nobody@clinic.example" in missing.output


def test_the_last_active_administrator_stays(config: Config, app: FastAPI, engine: Engine) -> None:
    refused = users(config, "deactivate", ADMIN)
    assert refused.exit_code == 1 and "the last active administrator" in refused.output
    admin = api(app, create_token(engine, 1))
    assert admin.post(f"/api/users/{ADMIN}/deactivate").status_code == 409
    add_user(engine, "kim@caseconsultant.example", PASSWORD, role="admin")
    kim = api(app, create_token(engine, 4))
    assert kim.post(f"/api/users/{ADMIN}/deactivate").status_code == 200
    assert kim.post("/api/users/kim@caseconsultant.example/deactivate").status_code == 409
    assert kim.get("/api/me").json()["active"] is True


def test_a_password_reset_ends_the_users_sessions(
    config: Config, app: FastAPI, engine: Engine
) -> None:
    dana = client_for(app, DANA)
    for _ in range(5):  # locked out by failed logins; an administrator lets her back in
        assert not can_log_in(app, DANA, "a wrong guess")
    short = users(config, "reset-password", DANA, "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert dana.get("/").status_code == 200
    reset = users(config, "reset-password", DANA, "--password-stdin", input=NEW_PASSWORD + "\n")
    assert reset.exit_code == 0, reset.output
    assert dana.get("/").status_code == 303
    assert not can_log_in(app, DANA, PASSWORD)
    assert can_log_in(app, DANA, NEW_PASSWORD)

    asked = users(config, "reset-password", LEE, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert asked.exit_code == 0 and can_log_in(app, LEE, NEW_PASSWORD)

    admin = api(app, create_token(engine, 1))
    lee = client_for(app)
    lee_page = lee.get("/login")
    lee.post(
        "/login",
        data={"email": LEE, "password": NEW_PASSWORD, "csrf_token": csrf_of(lee_page.text)},
    )
    assert lee.get("/").status_code == 200
    assert admin.post(f"/api/users/{LEE}/password", json={"password": "short"}).status_code == 400
    changed = admin.post(f"/api/users/{LEE}/password", json={"password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert lee.get("/").status_code == 303 and can_log_in(app, LEE, PASSWORD)
    consultant = api(app, create_token(engine, 2))
    assert (
        consultant.post(f"/api/users/{LEE}/password", json={"password": PASSWORD}).status_code
        == 403
    )


def test_tokens_are_listed_without_their_secret_and_revoked(
    config: Config, app: FastAPI, engine: Engine
) -> None:
    script = create_token(engine, 2, "billing script")
    ops = create_token(engine, 2, "ops")
    twins = [create_token(engine, 2, "twin"), create_token(engine, 2, "twin")]
    assert api(app, script).get("/api/me").status_code == 200
    listed = users(config, "tokens", DANA)
    assert listed.exit_code == 0, listed.output
    rows = listed.stdout.splitlines()
    assert [row.split()[1] for row in rows[1:]] == ["billing", "ops", "twin", "twin"]
    assert "never" not in rows[1] and "never" in rows[2]  # last used
    as_json = users(config, "tokens", DANA, "--json")
    shown = as_json.stdout
    assert "cct_" not in listed.output + shown and "hash" not in shown
    tokens = json.loads(shown)
    assert [set(t) for t in tokens] == [{"id", "name", "created", "last_used"}] * 4
    assert tokens[0]["last_used"] is not None and tokens[1]["last_used"] is None

    revoked = users(config, "revoke-token", DANA, "billing script")
    assert revoked.exit_code == 0, revoked.output
    assert api(app, script).get("/api/me").status_code == 401
    assert api(app, ops).get("/api/me").status_code == 200
    ambiguous = users(config, "revoke-token", DANA, "twin")
    assert ambiguous.exit_code == 1 and "2 tokens are named 'twin'" in ambiguous.output
    by_id = users(config, "revoke-token", DANA, str(tokens[2]["id"]))
    assert by_id.exit_code == 0 and api(app, twins[0]).get("/api/me").status_code == 401
    assert api(app, twins[1]).get("/api/me").status_code == 200
    unknown = users(config, "revoke-token", DANA, "no such token")
    assert unknown.exit_code == 1 and f"{DANA} has no token" in unknown.output
    not_hers = users(config, "revoke-token", LEE, str(tokens[1]["id"]))
    assert not_hers.exit_code == 1 and api(app, ops).get("/api/me").status_code == 200

    admin = api(app, create_token(engine, 1))
    remaining = admin.get(f"/api/users/{DANA}/tokens")
    assert remaining.status_code == 200
    assert [(t["id"], t["name"]) for t in remaining.json()] == [
        (tokens[1]["id"], "ops"),
        (tokens[3]["id"], "twin"),
    ]
    assert "cct_" not in remaining.text
    gone = admin.delete(f"/api/users/{DANA}/tokens/{tokens[1]['id']}")
    assert gone.status_code == 200 and gone.json()["revoked"]["name"] == "ops"
    assert api(app, ops).get("/api/me").status_code == 401
    assert admin.delete(f"/api/users/{DANA}/tokens/{tokens[1]['id']}").status_code == 404
    assert api(app, twins[1]).get(f"/api/users/{DANA}/tokens").status_code == 403


def test_account_changes_are_audited(config: Config, app: FastAPI, engine: Engine) -> None:
    admin = api(app, create_token(engine, 1, "ops"))
    admin.post("/api/users", json={"email": "pat@clinic.example", "password": PASSWORD})
    admin.post("/api/users/pat@clinic.example/deactivate")
    cli = ["--as", "it-desk"]
    assert users(config, "activate", "pat@clinic.example", *cli).exit_code == 0
    reset = users(
        config, "reset-password", "pat@clinic.example", *cli, "--password-stdin", input=PASSWORD
    )
    assert reset.exit_code == 0
    assert users(config, "token", "pat@clinic.example", "--name", "s", *cli).exit_code == 0
    assert users(config, "revoke-token", "pat@clinic.example", "s", *cli).exit_code == 0
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.ticket_id).is_(None))
            .order_by(col(AuditEvent.id))
        ).all()
    assert [
        (e.actor, e.action) for e in events if e.detail.get("user") == "pat@clinic.example"
    ] == [
        (ADMIN, "user.added"),
        (ADMIN, "user.deactivated"),
        ("it-desk", "user.activated"),
        ("it-desk", "user.password_reset"),
        ("it-desk", "token.created"),
        ("it-desk", "token.revoked"),
    ]
    assert all(PASSWORD not in str(e.detail) for e in events)
