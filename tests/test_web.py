"""The review app through its HTTP interface (FastAPI's TestClient): logins, sessions,
CSRF, every route refused without a login, the queue, the ticket page and its actions,
two consultants on one ticket, and the JSON API with per-user tokens."""

from __future__ import annotations

import email.policy
import re
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.accounts.users import add_user, create_token
from consultant.cli import main
from consultant.config import Config, load_config
from consultant.database.migrate import open_database
from consultant.drafting.ticket_draft import draft_ticket
from consultant.tickets.intake import Intake
from consultant.tickets.models import Delivery, Draft, Message, Ticket
from consultant.web.app import create_app
from consultant.web.ticket_page import ACTIONS
from tests.mailmaker import question

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ANALYSIS = {
    "draft": "Hello,\n\nE11.65 is billable (made-up draft).\n",
    "codes": [
        {"code": "E11.65", "system": "ICD-10-CM", "status": "billable", "title": "Type 2 ..."}
    ],
    "findings": [{"kind": "billable", "codes": ["E11.65"], "message": "ok", "source": "x"}],
    "suggestions": [],
}


@pytest.fixture
def config(tmp_path: Path, code_db: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n'
        f'[codes]\ndatabase = "{code_db}"\n'
        '[ingest]\nour_addresses = ["consult@caseconsultant.example"]\n'
    )
    return load_config(path)


@pytest.fixture
def engine(config: Config) -> Engine:
    engine = open_database(config.database_url)
    add_user(engine, "dana@caseconsultant.example", PASSWORD, name="Dana")
    add_user(engine, "lee@caseconsultant.example", PASSWORD, name="Lee")
    add_user(engine, "admin@caseconsultant.example", PASSWORD, role="admin")
    return engine


@pytest.fixture
def app(config: Config, engine: Engine):  # type: ignore[no-untyped-def]
    return create_app(config, engine)


def client_for(app, email: str | None = None) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, follow_redirects=False)
    if email is not None:
        page = client.get("/login")
        token = CSRF.search(page.text)
        assert token is not None
        answer = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert answer.status_code == 303, answer.text
    return client


def csrf_of(page_html: str) -> str:
    found = CSRF.search(page_html)
    assert found is not None
    return found[1]


def new_ticket(engine: Engine, body: str = "Is E11.65 billable?", **headers: str) -> int:
    outcome = Intake(engine, load_config().ingest).accept(
        question(body, headers=headers or None), "pipe"
    )
    assert outcome.ticket is not None
    ticket_id = int(outcome.ticket.removeprefix("CC-"))
    draft_ticket(engine, ticket_id, lambda text: ANALYSIS)
    return ticket_id


def version_of(engine: Engine, ticket_id: int) -> int:
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.version


def sample_path(path: str) -> str:
    return (
        path.replace("{reference}", "CC-000001")
        .replace("{attachment_id}", "1")
        .replace("{action}", "close")
        .replace("{code}", "E11.65")
        .replace("{system}", "icd10cm")
    )


def test_every_route_but_login_needs_a_login(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine)
    anonymous = client_for(app)
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path == "/login":
            continue
        for method in operations:
            answer = anonymous.request(method.upper(), sample_path(path))
            if method == "get" and not path.startswith("/api/"):
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/login?next=")
            else:
                assert answer.status_code in (401, 403), (method, path, answer.status_code)
            checked += 1
    assert checked >= 17
    assert anonymous.get("/api/openapi.json").status_code == 200  # the schema only


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(app) -> None:  # type: ignore[no-untyped-def]
    client = client_for(app)
    page = client.get("/login?next=/tickets/CC-000001")
    answer = client.post(
        "/login",
        data={
            "email": "Dana@CaseConsultant.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/tickets/CC-000001",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/tickets/CC-000001"
    cookie = answer.headers["set-cookie"]
    assert "cc_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # no https public_url configured
    queue = client.get("/")
    assert queue.status_code == 200 and "dana@caseconsultant.example" in queue.text
    assert "script-src 'self'" in queue.headers["content-security-policy"]
    out = client.post("/logout", data={"csrf_token": csrf_of(queue.text)})
    assert out.status_code == 303
    replay = client_for(app)
    replay.cookies.set("cc_session", client.cookies.get("cc_session") or "gone")
    assert replay.get("/").status_code == 303


def test_secure_cookies_behind_tls(config: Config, engine: Engine) -> None:
    from dataclasses import replace

    secure = replace(config, web=replace(config.web, public_url="https://review.example"))
    client = TestClient(create_app(secure, engine), follow_redirects=False)
    page = client.get("/login")
    assert "Secure" in page.headers["set-cookie"]


def test_logins_are_rate_limited_and_redirects_stay_on_site(app) -> None:  # type: ignore[no-untyped-def]
    client = client_for(app)
    for _ in range(5):
        page = client.get("/login")
        wrong = client.post(
            "/login",
            data={
                "email": "dana@caseconsultant.example",
                "password": "guess",
                "csrf_token": csrf_of(page.text),
            },
        )
        assert wrong.status_code == 401 and "Wrong email address or password" in wrong.text
    page = client.get("/login")
    locked = client.post(
        "/login",
        data={
            "email": "dana@caseconsultant.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    other = client_for(app)
    page = other.get("/login")
    away = other.post(
        "/login",
        data={
            "email": "lee@caseconsultant.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/",
        },
    )
    assert away.headers["location"] == "/"


def test_forms_without_the_csrf_token_are_refused(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_ticket(engine)
    dana = client_for(app, "dana@caseconsultant.example")
    version = version_of(engine, ticket_id)
    missing = dana.post("/tickets/CC-000001/close", data={"version": version})
    forged = dana.post(
        "/tickets/CC-000001/close", data={"version": version, "csrf_token": "0" * 64}
    )
    assert missing.status_code == forged.status_code == 403
    no_header = dana.post("/tickets/CC-000001/preview", json={"body": "x"})
    assert no_header.status_code == 403
    page = client_for(app).get("/login")
    no_login_csrf = client_for(app).post(
        "/login", data={"email": "dana@caseconsultant.example", "password": PASSWORD}
    )
    assert page.status_code == 200 and no_login_csrf.status_code == 403
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "ready"


def test_the_queue_puts_ready_first_by_due_time_and_filters(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    first = new_ticket(engine, "First question about E11.65?")
    waiting = Intake(engine, load_config().ingest).accept(question("Not drafted yet"), "pipe")
    assert waiting.ticket is not None
    third = new_ticket(engine, "Third question about J1100?")
    with Session(engine) as session, session.begin():
        older = session.get(Ticket, third)
        assert older is not None
        older.due_at = older.due_at.replace(year=2020) if older.due_at else None
        older.assignee = "dana@caseconsultant.example"
        session.add(older)
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get("/").text
    order = re.findall(r'href="/tickets/(CC-\d+)"', page)
    assert order == ["CC-000003", f"CC-{first:06d}", waiting.ticket]
    assert "overdue" in page and "ready <b>2</b>" in page and "new <b>1</b>" in page
    mine = re.findall(r'href="/tickets/(CC-\d+)"', dana.get("/?assignee=me").text)
    assert mine == ["CC-000003"]
    new_only = dana.get("/queue/rows?status=new").text
    assert re.findall(r'href="/tickets/(CC-\d+)"', new_only) == [waiting.ticket]
    assert "<html" not in new_only  # a fragment for the refresh
    assert dana.get("/?status=bogus").status_code == 400


def test_a_customers_markup_is_shown_harmlessly(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine, 'Is <script>alert("x")</script> <img src=x onerror=alert(1)> billable?')
    page = client_for(app, "dana@caseconsultant.example").get("/tickets/CC-000001").text
    assert "<script>alert" not in page and "<img src=x onerror" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_save_approve_and_the_rest_are_audited(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_ticket(engine)
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get("/tickets/CC-000001")
    csrf = csrf_of(page.text)
    assert "E11.65 is billable (made-up draft)." in page.text
    assert "Re: Coding question [CC-000001]" in page.text  # the preview's subject

    def post(action: str, **data: str) -> None:
        answer = dana.post(
            f"/tickets/CC-000001/{action}",
            data={"csrf_token": csrf, "version": str(version_of(engine, ticket_id)), **data},
        )
        assert answer.status_code == 303, answer.text

    post("save", body="Hello,\n\nE11.65 is billable (edited by Dana).\n")
    post("note", note="Checked against the tabular (made-up note).")
    post("assign", assignee="lee@caseconsultant.example")
    post("approve", body="Hello,\n\nE11.65 is billable (edited by Dana).\n")
    shown = dana.get("/tickets/CC-000001?done=approve").text
    assert "Checked against the tabular (made-up note)." in shown
    for action in ("draft.saved", "note.added", "ticket.assigned", "ticket.approved"):
        assert f"dana@caseconsultant.example: {action}" in shown
    with Session(engine) as session:
        versions = session.exec(select(Draft.version, Draft.author)).all()
        delivery = session.exec(select(Delivery)).one()
    assert versions == [(1, "drafting"), (2, "dana@caseconsultant.example")]
    assert (delivery.kind, delivery.state) == ("reply", "queued")
    spam = new_ticket(engine, "Buy cheap watches")
    dana.post(
        f"/tickets/CC-{spam:06d}/spam",
        data={"csrf_token": csrf, "version": str(version_of(engine, spam))},
    )
    with Session(engine) as session:
        marked = session.get(Ticket, spam)
        assert marked is not None and marked.status == "ignored"


def test_a_held_ticket_is_released_to_be_drafted(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    held_config = replace(load_config().ingest, allow=("other.example",))
    held = Intake(engine, held_config).accept(question("From outside the allowlist"), "pipe")
    assert held.ticket is not None
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get(f"/tickets/{held.ticket}").text
    assert "Release (sender not on the allowlist)" in page
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    released = dana.post(
        f"/tickets/{held.ticket}/release", data={"csrf_token": csrf_of(page), "version": version[1]}
    )
    assert released.status_code == 303
    with Session(engine) as session:
        ticket = session.get(Ticket, int(held.ticket.removeprefix("CC-")))
        assert ticket is not None and ticket.status == "new"  # and a draft is queued


def test_two_consultants_cannot_overwrite_each_other(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_ticket(engine)
    dana = client_for(app, "dana@caseconsultant.example")
    lee = client_for(app, "lee@caseconsultant.example")
    dana_page = dana.get("/tickets/CC-000001").text
    lee_page = lee.get("/tickets/CC-000001").text
    assert "Also open by dana@caseconsultant.example" in lee_page
    seen = re.search(r'name="version" value="(\d+)"', dana_page)
    assert seen is not None
    saved = lee.post(
        "/tickets/CC-000001/save",
        data={"csrf_token": csrf_of(lee_page), "version": seen[1], "body": "Lee's answer."},
    )
    assert saved.status_code == 303
    stale = dana.post(
        "/tickets/CC-000001/save",
        data={"csrf_token": csrf_of(dana_page), "version": seen[1], "body": "Dana's answer."},
    )
    assert stale.status_code == 409
    assert "changed after you opened it (draft.saved by lee@caseconsultant.example)" in stale.text
    assert "Dana&#39;s answer." in stale.text  # her text is kept in the editor
    with Session(engine) as session:
        bodies = [d.body for d in session.exec(select(Draft).where(Draft.ticket_id == ticket_id))]
    assert "Dana's answer." not in bodies and "Lee's answer." in bodies
    presence = dana.post(
        "/tickets/CC-000001/presence", headers={"X-CSRF-Token": csrf_of(dana_page)}
    )
    assert presence.json() == {"others": ["lee@caseconsultant.example"]}


def test_the_preview_is_the_email_as_sent(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine, "Question", Cc="Lee Biller <biller@clinic.example>")
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get("/tickets/CC-000001").text
    csrf = csrf_of(page)
    assert 'name="cc" value="biller@clinic.example">' in page  # offered, not ticked
    shown = dana.post(
        "/tickets/CC-000001/preview",
        json={"body": "Use <b>E11.65</b>."},
        headers={"X-CSRF-Token": csrf},
    ).json()
    assert shown["to"] == ["coder@clinic.example"] and shown["cc"] == []
    ticked = dana.post(
        "/tickets/CC-000001/preview",
        json={"body": "Use <b>E11.65</b>.", "cc": ["biller@clinic.example"]},
        headers={"X-CSRF-Token": csrf},
    ).json()
    assert ticked["cc"] == ["biller@clinic.example"]
    assert shown["subject"] == "Re: Coding question [CC-000001]"
    assert shown["text"].startswith("Use <b>E11.65</b>.")
    assert "Use &lt;b&gt;E11.65&lt;/b&gt;." in shown["html"]


def test_api_tokens_act_as_their_user_and_role(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine)
    consultant = create_token(engine, 1, "script")
    admin = create_token(engine, 3, "ops")
    client = client_for(app)

    def call(method: str, path: str, token: str | None, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    assert call("GET", "/api/tickets", None).status_code == 401
    assert call("GET", "/api/tickets", "cct_wrong").status_code == 401
    listed = call("GET", "/api/tickets", consultant).json()
    assert [t["ticket"] for t in listed["tickets"]] == ["CC-000001"]
    assert call("GET", "/api/users", consultant).status_code == 403
    made = call(
        "POST",
        "/api/users",
        consultant,
        json={"email": "x@caseconsultant.example", "password": PASSWORD, "role": "admin"},
    )
    assert made.status_code == 403
    assert call("GET", "/api/users", admin).status_code == 200
    created = call(
        "POST",
        "/api/users",
        admin,
        json={"email": "kim@caseconsultant.example", "password": PASSWORD},
    )
    assert created.status_code == 201 and created.json()["role"] == "consultant"
    shown = call("GET", "/api/tickets/CC-000001", consultant).json()
    stale = call(
        "POST", "/api/tickets/CC-000001/approve", consultant, json={"version": shown["version"] - 1}
    )
    assert stale.status_code == 409
    approved = call(
        "POST", "/api/tickets/CC-000001/approve", consultant, json={"version": shown["version"]}
    )
    assert approved.status_code == 200 and approved.json()["version"] == 1
    audit = call("GET", "/api/tickets/CC-000001", consultant).json()["audit"]
    assert audit[-1]["actor"] == "dana@caseconsultant.example"


def test_users_from_the_command_line(config: Config) -> None:
    runner = CliRunner()
    args = ["--config", str(config.source), "users"]
    added = runner.invoke(
        main,
        [*args, "add", "kim@caseconsultant.example", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0 and "Added kim@caseconsultant.example (admin)." in added.output
    short = runner.invoke(
        main, [*args, "add", "x@caseconsultant.example", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    token = runner.invoke(main, [*args, "token", "kim@caseconsultant.example"])
    assert token.exit_code == 0 and token.output.startswith("cct_")
    listed = runner.invoke(main, [*args, "list"])
    assert "kim@caseconsultant.example" in listed.output and "admin" in listed.output


def with_attachment(name: str, data: bytes) -> bytes:
    """A made-up question carrying one attachment called NAME."""
    message = message_from_bytes(question("See the attached notes."), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(data, maintype="text", subtype="plain", filename=name)
    return message.as_bytes()


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("病历.txt", "__.txt"),
        ('notes "final"; x=1.txt', "notes _final__ x_1.txt"),
        ("résumé 2026.txt", "r_sum_ 2026.txt"),
        ("<img src=x onerror=alert(9)>.txt", "_img src_x onerror_alert_9__.txt"),
    ],
)
def test_attachments_download_under_their_own_name(
    app, engine: Engine, name: str, fallback: str
) -> None:  # type: ignore[no-untyped-def]
    data = b"Made-up chart note for a made-up patient.\n"
    outcome = Intake(engine, load_config().ingest).accept(with_attachment(name, data), "pipe")
    assert outcome.ticket is not None
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get(f"/tickets/{outcome.ticket}").text
    assert "<img src=x" not in page  # the name is shown as text
    link = re.search(r'href="(/tickets/CC-\d+/attachments/\d+)"', page)
    assert link is not None
    answer = dana.get(link[1])
    assert answer.status_code == 200 and answer.content == data
    disposition = answer.headers["content-disposition"]
    assert disposition == (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    assert answer.headers["content-type"] == "application/octet-stream"


def test_missing_tickets_and_out_of_range_ids_are_404s(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine)
    dana = client_for(app, "dana@caseconsultant.example")
    csrf = csrf_of(dana.get("/").text)
    token = create_token(engine, 1, "script")
    api = {"Authorization": f"Bearer {token}"}
    beyond = str(2**63)  # one past the largest id either database can hold
    pages = [
        f"/tickets/CC-000001/attachments/{beyond}",
        "/tickets/CC-000001/attachments/-1",
        "/tickets/CC-000001/attachments/0",
        "/tickets/CC-000002/attachments/1",
        "/tickets/CC-000002",
        f"/tickets/CC-{beyond}",
    ]
    for path in pages:
        assert dana.get(path).status_code == 404, path
    for path in ("/api/tickets/CC-000002", f"/api/tickets/{beyond}"):
        assert dana.get(path, headers=api).status_code == 404, path
    header = {"X-CSRF-Token": csrf}
    assert dana.post("/tickets/CC-000002/presence", headers=header).status_code == 404
    preview = dana.post("/tickets/CC-000002/preview", json={"body": "x"}, headers=header)
    assert preview.status_code == 404
    for action in ACTIONS:
        form = {"csrf_token": csrf, "version": "1", "body": "x", "note": "x"}
        answer = dana.post(f"/tickets/CC-000002/{action}", data=form)
        assert answer.status_code == 404, action
    for action, payload in (
        ("approve", {}),
        ("assign", {"assignee": None}),
        ("notes", {"body": "x"}),
        ("close", {}),
    ):
        answer = dana.post(f"/api/tickets/CC-000002/{action}", json=payload, headers=api)
        assert answer.status_code == 404, action
        assert answer.json()["detail"] == "No ticket CC-000002."


def test_every_form_and_page_request_needs_its_csrf_token(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    new_ticket(engine)
    dana = client_for(app, "dana@caseconsultant.example")
    version = str(version_of(engine, 1))
    posts = [
        path
        for path, operations in app.openapi()["paths"].items()
        if "post" in operations and not path.startswith("/api/") and path != "/login"
    ]
    assert len(posts) >= 4
    for path in posts:
        actions = ACTIONS if "{action}" in path else ("close",)
        for action in actions:
            url = sample_path(path).replace("/close", f"/{action}")
            as_form = dana.post(url, data={"version": version, "body": "x", "note": "x"})
            as_json = dana.post(url, json={"body": "x"})
            assert as_form.status_code == as_json.status_code == 403, url
    assert dana.get("/").status_code == 200  # refused, not logged out
    assert version_of(engine, 1) == int(version)


def test_a_login_always_starts_a_new_session(app) -> None:  # type: ignore[no-untyped-def]
    planted = "a-session-id-an-attacker-chose"
    victim = client_for(app)
    victim.cookies.set("cc_session", planted)
    page = victim.get("/login")
    assert page.status_code == 200  # a made-up id is no session
    answer = victim.post(
        "/login",
        data={
            "email": "dana@caseconsultant.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    issued = answer.cookies.get("cc_session")
    assert answer.status_code == 303 and issued and issued != planted
    attacker = client_for(app)
    attacker.cookies.set("cc_session", planted)
    assert attacker.get("/").status_code == 303
    again = client_for(app, "dana@caseconsultant.example").cookies.get("cc_session")
    assert again and again != issued


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""],
)
def test_next_never_leaves_the_site(app, target: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for(app)
    page = client.get("/login", params={"next": target})
    answer = client.post(
        "/login",
        data={
            "email": "lee@caseconsultant.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": target,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert client.get("/login", params={"next": target}).headers["location"] == "/"


def test_warnings_are_confirmed_before_an_answer_goes_out(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    """Hardening issue, point 6, in the review app: a follow-up with a new Reply-To
    shows as a warning; approving without ticking the confirmation is refused with
    the editor's text kept; ticked, the answer goes to the address of record."""
    ticket_id = new_ticket(engine, "Is E11.65 billable?")
    Intake(engine, load_config().ingest).accept(
        question(
            "Send the answer here instead",
            subject="Re: [CC-000001]",
            headers={"Reply-To": "mallory@evil.test"},
        ),
        "pipe",
    )
    draft_ticket(engine, ticket_id, lambda text: ANALYSIS)
    dana = client_for(app, "dana@caseconsultant.example")
    page = dana.get("/tickets/CC-000001").text
    assert "asks for answers at mallory@evil.test" in page
    assert "The answer goes to <b>coder@clinic.example</b>" in page
    form = {
        "csrf_token": csrf_of(page),
        "version": str(version_of(engine, ticket_id)),
        "body": "My edit",
    }
    refused = dana.post("/tickets/CC-000001/approve", data=form)
    assert refused.status_code == 400 and "warning(s) to confirm" in refused.text
    assert "My edit</textarea>" in refused.text
    done = dana.post(
        "/tickets/CC-000001/approve",
        data={**form, "confirm_warnings": "yes", "cc": "mallory@evil.test"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with Session(engine) as session:
        sent = session.exec(
            select(Message).where(Message.direction == "outbound").order_by(col(Message.id).desc())
        ).first()
        assert sent is not None and (sent.to, sent.cc) == (
            ["coder@clinic.example"],
            ["mallory@evil.test"],
        )
        inbound = session.exec(select(Message).where(Message.direction == "inbound")).all()
    assert [(bool(m.warnings), m.warnings_confirmed_by) for m in inbound] == [
        (False, None),
        (True, "dana@caseconsultant.example"),
    ]


def test_the_api_shows_the_answer_choices_and_takes_them(app, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    """The JSON API gives the same choices (address of record, who may be copied,
    warnings) and refuses an approval that does not confirm the warnings."""
    ticket_id = new_ticket(engine, "Is E11.65 billable?", Cc="biller@clinic.example")
    Intake(engine, load_config().ingest).accept(
        question("Also E11.9?", subject="Re: [CC-000001]", headers={"Reply-To": "x@evil.test"}),
        "pipe",
    )
    draft_ticket(engine, ticket_id, lambda text: ANALYSIS)
    token = create_token(engine, 1, "script")
    client = client_for(app)
    headers = {"Authorization": f"Bearer {token}"}
    shown = client.get("/api/tickets/CC-000001", headers=headers).json()
    answer = shown["answer"]
    assert answer["to"] == "coder@clinic.example"
    assert answer["can_copy"] == ["biller@clinic.example", "x@evil.test"]
    assert len(answer["warnings"]) == 1 and "x@evil.test" in answer["warnings"][0]
    refused = client.post("/api/tickets/CC-000001/approve", headers=headers, json={})
    assert refused.status_code == 400 and "warning(s) to confirm" in refused.json()["detail"]
    approved = client.post(
        "/api/tickets/CC-000001/approve",
        headers=headers,
        json={"confirm_warnings": True, "cc": ["biller@clinic.example"]},
    )
    assert approved.status_code == 200
    with Session(engine) as session:
        sent = session.exec(select(Message).where(Message.direction == "outbound")).one()
    assert (sent.to, sent.cc) == (["coder@clinic.example"], ["biller@clinic.example"])
