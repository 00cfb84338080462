"""The review app in a real browser (Debian's Chromium through Playwright): a consultant
logs in, finds a ticket, edits the draft with its live preview, approves it, and the
reply reaches an SMTP server through a real worker; two consultants on one ticket; a
customer's markup shown harmlessly; the page's requests stay on this machine and its
Content-Security-Policy holds. Also the README's screenshots (see test_screenshots).

One app (uvicorn in a thread), one SMTP server and one Chromium serve the whole module;
each test makes its own tickets and browser contexts.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.accounts.users import add_user
from consultant.codes.opening import open_store
from consultant.config import Config, load_config
from consultant.database.migrate import open_database
from consultant.database.types import utcnow
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import reply_queuer
from consultant.drafting.ticket_draft import draft_ticket, make_analyzer, mark_failed
from consultant.templating import template_environment
from consultant.tickets.actions import add_note, approve, assign
from consultant.tickets.intake import Intake
from consultant.tickets.models import Draft, Message, Ticket
from consultant.tickets.references import parse_reference
from consultant.web.app import create_app
from tests.mailmaker import question
from tests.servers.browser import chromium, loopback_context, serve
from tests.servers.smtp import MailServer, mail_server
from tests.test_web import ANALYSIS, PASSWORD
from tests.test_workers import worker, write_config

DANA = "dana@caseconsultant.example"
LEE = "lee@caseconsultant.example"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
SCREENSHOT_SIZE = {"width": 1400, "height": 900}


@dataclass
class Site:
    """The app under test: its base URL, config (file and loaded) and ticket database."""

    url: str
    config_path: Path
    config: Config
    engine: Engine

    def ticket(self, raw: bytes, analysis: dict[str, Any] | None = ANALYSIS) -> str:
        """A ticket from RAW, drafted with ANALYSIS (a stand-in for the code analysis)
        unless None; its reference."""
        outcome = Intake(self.engine, self.config.ingest).accept(raw, "pipe")
        assert outcome.ticket is not None
        if analysis is not None:
            draft_ticket(self.engine, parse_reference(outcome.ticket), lambda text: analysis)
        return outcome.ticket


@dataclass
class Watch:
    """What a browser context did that a test must see: requests that tried to leave
    loopback (aborted), console errors and warnings, uncaught script errors, dialogs."""

    elsewhere: list[str]
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text} ({message.location})")

        def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        page.on("dialog", on_dialog)


NewContext = Callable[..., tuple[BrowserContext, Watch]]  # the new_context fixture


def config_text(customer: MailServer) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {customer.port}\ntls = "none"\n'
        "[delivery]\nacknowledge = false\n"
        '[ingest]\nour_addresses = ["consult@caseconsultant.example"]\n'
    )


@pytest.fixture(scope="module")
def customer() -> Iterator[MailServer]:
    """The customer's mail server: replies arrive here."""
    with mail_server() as server:
        yield server


@contextmanager
def running_site(root: Path, code_db: Path, more: str = "") -> Iterator[Site]:
    """The app on a fresh SQLite ticket database in ROOT, with two consultants."""
    root.mkdir(parents=True, exist_ok=True)
    path = write_config(root, code_db, None, more=more)
    config = load_config(path)
    engine = open_database(config.database_url)
    add_user(engine, DANA, PASSWORD, name="Dana")
    add_user(engine, LEE, PASSWORD, name="Lee")
    try:
        with serve(create_app(config, engine)) as url:
            yield Site(url, path, config, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, code_db: Path, customer: MailServer
) -> Iterator[Site]:
    """The app, its worker (started by the test that needs one) and the customer's mail
    server share this config and its ticket database file."""
    root = tmp_path_factory.mktemp("browser")
    with running_site(root, code_db, config_text(customer)) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture
def new_context(browser: Browser) -> Iterator[NewContext]:
    """Makes browser contexts (each its own cookies: its own consultant) that keep to
    loopback; every one is checked for requests elsewhere when the test ends."""
    made: list[tuple[BrowserContext, Watch]] = []

    def make(**options: Any) -> tuple[BrowserContext, Watch]:
        context, elsewhere = loopback_context(browser, **options)
        watch = Watch(elsewhere)
        context.on("page", watch.attach)
        made.append((context, watch))
        return context, watch

    yield make
    for context, _ in made:
        context.close()
    assert [url for _, watch in made for url in watch.elsewhere] == []


def log_in(context: BrowserContext, site: Site, email: str) -> Page:
    """A page of CONTEXT logged in as EMAIL through the login form, on the queue."""
    page = context.new_page()
    page.goto(site.url + "/")
    expect(page).to_have_url(site.url + "/login?next=/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    expect(page.locator("header.top .who")).to_have_text(email)
    return page


def status_of(page: Page) -> str:
    return page.locator(".ticket-head .badge").inner_text()


def reload_until_status(page: Page, status: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while status_of(page) != status:
        assert time.monotonic() < deadline, f"the page says {status_of(page)}, not {status}"
        time.sleep(0.3)
        page.reload()


def test_log_in_edit_approve_and_the_reply_arrives(
    site: Site, customer: MailServer, new_context: NewContext
) -> None:
    subject = "Coding question: hyperglycemia"
    reference = site.ticket(
        question("Is E11.65 billable?", subject=subject, sender="pat.coder@clinic.example")
    )
    before = len(customer.received)
    with worker(site.config_path):  # starting while the browser works
        context, watch = new_context()
        page = log_in(context, site, DANA)
        row = page.locator("table.tickets tbody tr", has_text=subject)
        expect(row.locator(".badge")).to_have_text("ready")
        row.get_by_role("link", name=reference).click()
        expect(page).to_have_url(f"{site.url}/tickets/{reference}")
        expect(page.locator("#body")).to_have_value(ANALYSIS["draft"])
        expect(page.locator("#preview-subject")).to_have_text(f"Re: {subject} [{reference}]")

        edited = "Hello,\n\nE11.65 is billable; edited in the browser by Dana (made-up).\n"
        page.locator("#body").fill(edited)
        # The preview follows the editor (app.js posts it 300 ms after the last keystroke).
        expect(page.locator("#preview-text")).to_contain_text("edited in the browser by Dana")
        preview_html = page.frame_locator("#preview-html").locator("body")
        expect(preview_html).to_contain_text("edited in the browser by Dana")
        expect(page.locator("#preview-to")).to_have_text("pat.coder@clinic.example")

        page.get_by_role("button", name="Approve and send").click()
        expect(page.locator("p.done")).to_have_text("Done: approve.")
        expect(page.locator("#body")).to_have_value(edited)
        arrived = customer.wait_for(before + 1)[before]
        reload_until_status(page, "sent")
    assert arrived.recipients == ["pat.coder@clinic.example"]
    reply = arrived.message
    assert reply["Subject"] == f"Re: {subject} [{reference}]"
    plain = reply.get_body(("plain",))
    assert plain is not None and "edited in the browser by Dana" in plain.get_content()
    outbound = page.locator("article.message.outbound")
    expect(outbound.locator(".badge")).to_have_text("reply: sent")
    expect(page.locator("ol.history")).to_contain_text(f"{DANA}: ticket.approved")
    assert watch.console == [] and watch.dialogs == []


def test_the_reply_queued_is_the_reply_the_preview_showed(
    site: Site, new_context: NewContext
) -> None:
    reference = site.ticket(question("Is E11.65 billable?", subject="Paragraphs"))
    context, _ = new_context()
    page = log_in(context, site, DANA)
    page.goto(f"{site.url}/tickets/{reference}")
    page.locator("#body").fill("Hello,\n\nFirst paragraph (made-up).\n\nSecond paragraph.\n")
    expect(page.locator("#preview-text")).to_contain_text("Second paragraph.")
    previewed = page.locator("#preview-html").get_attribute("srcdoc")
    assert previewed is not None and "<p " in previewed
    page.get_by_role("button", name="Approve and send").click()
    expect(page.locator("p.done")).to_have_text("Done: approve.")
    with Session(site.engine) as session:
        queued = session.exec(
            select(Message).where(
                Message.ticket_id == parse_reference(reference), Message.direction == "outbound"
            )
        ).one()
        latest = session.exec(
            select(Draft)
            .where(Draft.ticket_id == queued.ticket_id)
            .order_by(col(Draft.version).desc())
        ).first()
    assert queued.html == previewed
    assert latest is not None and "\r" not in latest.body


def test_two_consultants_on_one_ticket(site: Site, new_context: NewContext) -> None:
    reference = site.ticket(question("Is J1100 still valid?", subject="Two of us on this"))
    dana_context, dana_watch = new_context()
    lee_context, lee_watch = new_context()
    dana = log_in(dana_context, site, DANA)
    lee = log_in(lee_context, site, LEE)
    dana.goto(f"{site.url}/tickets/{reference}")
    expect(dana.locator("#presence")).to_be_hidden()
    lee.goto(f"{site.url}/tickets/{reference}")
    expect(lee.locator("#presence")).to_have_text(f"Also open by {DANA}.")

    dana_text = "Hello,\n\nJ1100 is valid (Dana's answer, made-up).\n"
    lee_text = "Hello,\n\nJ1100 is valid (Lee's answer, made-up).\n"
    dana.locator("#body").fill(dana_text)
    lee.locator("#body").fill(lee_text)
    dana.get_by_role("button", name="Save", exact=True).click()
    expect(dana.locator("p.done")).to_have_text("Done: save.")
    expect(dana.locator("#body")).to_have_value(dana_text)

    lee.get_by_role("button", name="Save", exact=True).click()
    refusal = lee.locator("p.error")
    expect(refusal).to_contain_text("changed after you opened it")
    expect(refusal).to_contain_text(f"draft.saved by {DANA}")
    expect(lee.locator("#body")).to_have_value(lee_text)  # nothing typed is lost
    with Session(site.engine) as session:
        ticket_id = parse_reference(reference)
        bodies = session.exec(
            select(Draft.body).where(Draft.ticket_id == ticket_id).order_by(col(Draft.version))
        ).all()
    assert bodies[-1] == dana_text  # the browser posted CRLF; the draft keeps LF
    assert all("Lee's answer" not in b for b in bodies)
    assert dana_watch.console == [] and dana_watch.dialogs == []
    (refused,) = lee_watch.console  # the browser's own note of the 409, nothing from app.js
    assert "status of 409 (Conflict)" in refused and lee_watch.dialogs == []


def hostile_question() -> bytes:
    """A made-up customer's email whose text and HTML both carry script."""
    attack = (
        "<script>window.pwned=1;alert(1)</script>"
        '<img src=x onerror="window.pwned=2;alert(2)">'
        '<img src="https://tracker.example/pixel.gif">'
    )
    message = EmailMessage()
    message["From"] = "Mallory Biller <mallory@clinic.example>"
    message["To"] = "consult@caseconsultant.example"
    message["Subject"] = "Is E11.65 billable? <script>window.pwned=3</script>"
    message["Message-ID"] = "<hostile-1@clinic.example>"
    message.set_content(f"Is E11.65 billable? {attack}\n")
    message.add_alternative(
        f"<html><body><p>Is <b>E11.65</b> billable?</p>{attack}</body></html>", subtype="html"
    )
    return message.as_bytes()


def test_a_customers_markup_is_shown_harmlessly(site: Site, new_context: NewContext) -> None:
    reference = site.ticket(hostile_question())
    context, watch = new_context()
    page = log_in(context, site, DANA)
    page.goto(f"{site.url}/tickets/{reference}")
    inbound = page.locator("article.message.inbound").first
    expect(inbound.locator(".mail-text")).to_contain_text(
        '<script>window.pwned=1;alert(1)</script><img src=x onerror="window.pwned=2;alert(2)">'
    )
    expect(page.locator(".ticket-head .subject")).to_have_text(
        "Is E11.65 billable? <script>window.pwned=3</script>"
    )
    inbound.locator("details.html-part summary").click()
    html_part = page.frame_locator("iframe.mail-html >> nth=0")
    expect(html_part.locator("p")).to_have_text("Is E11.65 billable?")
    expect(html_part.locator("script")).to_have_count(0)
    for image in html_part.locator("img").all():
        assert image.get_attribute("onerror") is None
    page.wait_for_timeout(500)  # time for any handler that got through to run
    for frame in page.frames:
        assert frame.evaluate("typeof window.pwned") == "undefined", frame.url
    assert watch.dialogs == []
    assert watch.elsewhere == []  # the tracking pixel never left the machine
    assert watch.console == []


def test_requests_stay_local_and_the_csp_blocks_inline_script(
    site: Site, new_context: NewContext
) -> None:
    reference = site.ticket(question("Is E11.65 billable?", subject="Local only"))
    context, watch = new_context()
    requested: list[str] = []
    failed: list[tuple[str, str | None]] = []
    context.on("request", lambda request: requested.append(request.url))
    context.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
    page = log_in(context, site, DANA)
    response = page.goto(f"{site.url}/tickets/{reference}")
    assert response is not None and response.ok
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["img-src"] == "'self' data:"
    page.locator("#body").fill("Hello,\n\nE11.65 is billable (made-up).\n")
    expect(page.locator("#preview-text")).to_contain_text("E11.65 is billable (made-up).")
    own = list(requested)
    assert own and all(url.startswith(site.url + "/") for url in own), own
    assert f"{site.url}/static/app.js" in own
    assert any(url.endswith(f"/tickets/{reference}/preview") for url in own)

    # What an injection that got past the escaping would try: an inline script, and an
    # image from elsewhere (a tracking pixel). The policy refuses both.
    refused = page.evaluate(
        """() => new Promise((resolve) => {
            const blocked = [];
            document.addEventListener("securitypolicyviolation", (event) => {
                blocked.push(event.violatedDirective);
                if (blocked.length === 2) resolve({blocked, ran: window.inlineRan ?? null});
            });
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.append(script);
            const image = document.createElement("img");
            image.src = "https://tracker.example/pixel.gif";
            document.body.append(image);
            setTimeout(() => resolve({blocked, ran: window.inlineRan ?? null}), 3000);
        })"""
    )
    assert refused == {"blocked": ["script-src-elem", "img-src"], "ran": None}
    # Chromium refused the pixel itself: it never reached the network (nor the guard).
    assert requested[len(own) :] == ["https://tracker.example/pixel.gif"]
    assert failed == [("https://tracker.example/pixel.gif", "csp")]
    assert watch.elsewhere == []
    # The policy's two refusals are the only console errors: none from app.js.
    assert len(watch.console) == 2, watch.console
    assert all("Content Security Policy" in line for line in watch.console), watch.console


def made_up_queue(site: Site) -> str:
    """A handful of made-up tickets in different states; the one to show, drafted by
    the real analysis against the test code database."""
    config = site.config
    analyze = make_analyzer(
        open_store(config.codes.database),
        templates=template_environment(config.drafting.templates_dir),
        suggestions=config.drafting.suggestions,
        service_name=config.drafting.service_name,
    )
    people = [
        ("Robin Okafor", "robin.okafor@northside-clinic.example"),
        ("Sam Lindqvist", "billing@lakeview-ortho.example"),
        ("Ari Moreno", "coding@riverbend-wound.example"),
        ("Jules Fontaine", "jfontaine@hillcrest-pain.example"),
        ("Kai Watanabe", "kai@meadow-oncology.example"),
        ("Noor Haddad", "noor.haddad@pinegrove-fp.example"),
    ]
    questions = [
        (
            "Type 2 diabetes with hyperglycemia",
            "Our patient (made-up), a 58-year-old with type 2 diabetes, came in with blood "
            "sugar over 300. Is E11.65 billable for type 2 diabetes with hyperglycemia, "
            "and should we add Z79.4 for long-term insulin use?",
        ),
        ("Knee arthroscopy, two procedures", "Can 29881 and 29877 be reported together?"),
        ("Pressure ulcer", "What is the code for a stage 3 pressure ulcer of the sacral region?"),
        ("Bilateral knee injections", "Which modifier applies when 20610 is done on both knees?"),
        ("J1100 still valid?", "Is J1100 still valid for dexamethasone injections?"),
        ("CKD stage 3a with diabetes", "How do we code type 2 diabetes with CKD stage 3a?"),
    ]
    references = []
    for (name, address), (subject, body) in zip(people, questions, strict=True):
        raw = question(body, sender=address, name=name, subject=subject)
        references.append(site.ticket(raw, analysis=None))
    ids = [parse_reference(r) for r in references]
    for ticket_id in (ids[0], ids[1], ids[3], ids[5]):
        draft_ticket(site.engine, ticket_id, analyze)
    add_note(site.engine, ids[0], LEE, "Checked the tabular list; Z79.4 applies here (made-up).")
    assign(site.engine, ids[0], DANA, DANA)
    assign(site.engine, ids[1], LEE, LEE)
    queue = reply_queuer(
        Composer.from_config(config), config.delivery.from_address, config.delivery.max_recipients
    )
    approve(site.engine, ids[3], DANA, queue)
    mark_failed(site.engine, ids[4], "workers.tasks.draft: the code database was being replaced")
    with Session(site.engine) as session, session.begin():
        late = session.get(Ticket, ids[5])
        assert late is not None
        late.due_at = utcnow() - timedelta(hours=3)
        session.add(late)
    return references[0]


def test_screenshots(tmp_path: Path, code_db: Path, new_context: NewContext) -> None:
    """The README's screenshots, from made-up tickets on a database of their own. Taken
    on every run (so the pages render at that size and this code keeps working), they
    replace docs/screenshots/*.png only when CONSULTANT_SCREENSHOTS=1."""
    with running_site(tmp_path / "site", code_db, "[drafting]\nsuggestions = 3\n") as site:
        shown = made_up_queue(site)
        context, watch = new_context(viewport=SCREENSHOT_SIZE, device_scale_factor=1)
        page = log_in(context, site, DANA)
        expect(page.locator("table.tickets tbody tr")).to_have_count(6)
        page.screenshot(path=tmp_path / "queue.png")
        page.goto(f"{site.url}/tickets/{shown}")
        expect(page.locator("table.codes")).to_contain_text("E11.65")
        # The direct answers come first in the analysis, labelled in plain words.
        answers = page.locator("ol.answers li")
        expect(answers.first).to_contain_text("Is the code valid and billable?")
        expect(answers.first).to_contain_text(
            "E11.65 (Type 2 diabetes mellitus with hyperglycemia)"
        )
        expect(page.locator("ul.findings")).to_contain_text("Use additional code")
        expect(page.locator("#preview-subject")).to_contain_text(shown)
        # The analysis, the editor and the preview do not fit 900 pixels: the window is
        # made tall enough to show the ticket down to the preview's end (a full-page
        # capture would leave the preview's frame, drawn only once in view, blank).
        preview = page.locator("#preview").bounding_box()
        assert preview is not None
        height = int(preview["y"] + preview["height"]) + 20
        page.set_viewport_size({"width": SCREENSHOT_SIZE["width"], "height": height})
        expect(page.frame_locator("#preview-html").locator("body")).to_contain_text("E11.65")
        page.screenshot(path=tmp_path / "ticket.png")
    assert watch.console == []
    if os.environ.get("CONSULTANT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("queue.png", "ticket.png"):
            shutil.copyfile(tmp_path / name, SCREENSHOTS / name)


def test_the_queue_and_presence_refresh_without_a_reload(
    site: Site, new_context: NewContext
) -> None:
    """app.js's timers, run forward on Playwright's clock: the queue's rows every 15 s,
    and who else has a ticket open every 20 s."""
    reference = site.ticket(question("Refresh me (made-up).", subject="Before the refresh"))
    context, watch = new_context()
    page = context.new_page()
    watch.attach(page)
    page.clock.install()
    page.goto(f"{site.url}/login")
    page.get_by_label("Email address").fill(DANA)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("table.tickets")).to_be_visible()
    newcomer = site.ticket(question("Arrived later (made-up).", subject="After the refresh"))
    row = page.locator("table.tickets tbody tr", has_text="After the refresh")
    expect(row).to_have_count(0)
    page.clock.run_for(16_000)
    expect(row.get_by_role("link", name=newcomer)).to_be_visible()

    page.goto(f"{site.url}/tickets/{reference}")
    expect(page.locator("#presence")).to_be_hidden()
    other, _ = new_context()
    log_in(other, site, LEE).goto(f"{site.url}/tickets/{reference}")
    page.clock.run_for(21_000)
    expect(page.locator("#presence")).to_have_text(f"Also open by {LEE}.")
    # The fake clock injects its script into every frame; the sandboxed email frames
    # refuse it, as they refuse any script.
    assert [m for m in watch.console if "about:srcdoc" not in m] == []
    assert watch.dialogs == []
