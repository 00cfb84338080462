"""Delivery on real parts: replies, acknowledgements and declines composed from the
templates, sent to an aiosmtpd server (plain, STARTTLS and implicit TLS with AUTH) or a
Maildir, retried on 4xx, failed visibly on 5xx, and never sent twice, on SQLite and
PostgreSQL."""

from __future__ import annotations

import ssl
import threading
from datetime import timedelta
from email import message_from_bytes, policy
from mailbox import Maildir
from pathlib import Path

import pytest
import trustme
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from consultant.config import IngestConfig, MailboxConfig, SmtpConfig
from consultant.database.types import utcnow
from consultant.delivery.compose import Composer, reply_subject
from consultant.delivery.deliver import (
    DeliverySettings,
    deliver,
    due_deliveries,
    fail_unconfirmed,
)
from consultant.delivery.mime import build_mime
from consultant.delivery.outbox import queue_acknowledgement, reply_queuer, unacknowledged
from consultant.delivery.sent_copy import copy_to_sent
from consultant.delivery.transports import MaildirTransport, SmtpTransport, Transport
from consultant.drafting.ticket_draft import draft_ticket
from consultant.templating import template_environment
from consultant.tickets.actions import TicketActionError, approve
from consultant.tickets.intake import Intake
from consultant.tickets.models import Delivery, Message, Ticket
from consultant.tickets.queries import copy_candidates
from consultant.tickets.references import parse_reference
from tests.mailmaker import question
from tests.servers.dovecot import Dovecot
from tests.servers.ports import LOOPBACK, free_port
from tests.servers.smtp import MailServer, mail_server

OURS = "consult@caseconsultant.example"
SETTINGS = DeliverySettings(
    from_name="CaseConsultant", max_attempts=3, retry_seconds=60, stale_after=timedelta(minutes=10)
)
ANSWER = "Hello,\n\nE11.65 is a billable ICD-10-CM code (made-up answer for a test).\n"


def composer(templates_dir: Path | None = None) -> Composer:
    return Composer(
        template_environment(templates_dir),
        service_name="CaseConsultant",
        our_addresses=(OURS,),
        due_hours=24,
    )


def smtp(server: MailServer, **settings: object) -> SmtpTransport:
    return SmtpTransport(SmtpConfig(host=LOOPBACK, port=server.port, tls="none", **settings))  # type: ignore[arg-type]


def new_ticket(engine: Engine, raw: bytes | None = None) -> int:
    outcome = Intake(engine, IngestConfig(our_addresses=(OURS,))).accept(
        raw or question("Is E11.65 billable?", message_id="<q1@clinic.example>"), "pipe"
    )
    assert outcome.ticket is not None
    return parse_reference(outcome.ticket)


def approved(
    engine: Engine, raw: bytes | None = None, body: str = ANSWER, cc: tuple[str, ...] = ()
) -> tuple[int, int]:
    """A new ticket, drafted and approved with BODY, copied to CC: (ticket id, reply's
    delivery id)."""
    ticket_id = new_ticket(engine, raw)
    draft_ticket(engine, ticket_id, lambda text: {"draft": "drafted", "findings": []})
    approval = approve(engine, ticket_id, "dana", reply_queuer(composer(), OURS, 10), body, cc=cc)
    return ticket_id, approval.delivery_id


def state(engine: Engine, delivery_id: int) -> Delivery:
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery


def ticket(engine: Engine, ticket_id: int) -> Ticket:
    with Session(engine) as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        return found


def due_now(engine: Engine, delivery_id: int) -> None:
    """Make a scheduled retry due (instead of waiting for its backoff)."""
    with Session(engine) as session, session.begin():
        session.exec(  # type: ignore[call-overload]
            update(Delivery).where(Delivery.id == delivery_id).values(next_attempt_at=utcnow())
        )


def test_the_reply_threads_copies_the_chosen_cc_and_goes_out_once(engine: Engine) -> None:
    raw = question(
        "Is E11.65 billable?",
        message_id="<q1@clinic.example>",
        references="<earlier@clinic.example>",
        headers={"Cc": f"Lee Biller <biller@clinic.example>, {OURS}"},
        subject="RE: Re: diabetes coding",
    )
    ticket_id, delivery_id = approved(engine, raw, cc=("biller@clinic.example",))
    with mail_server() as server:
        outcome = deliver(engine, delivery_id, smtp(server), SETTINGS)
        assert outcome.status == "sent" and outcome.detail.startswith("250")
        again = deliver(engine, delivery_id, smtp(server), SETTINGS)  # the task run twice
        assert again.status == "skipped"
    (received,) = server.received
    mail = received.message
    with Session(engine) as session:
        stored = session.get(Message, state(engine, delivery_id).message_id)
        assert stored is not None
    assert mail["Message-ID"] == f"<{stored.message_id}>"  # stored before it was sent
    assert mail["From"] == f"CaseConsultant <{OURS}>"
    assert (mail["To"], mail["Cc"]) == ("coder@clinic.example", "biller@clinic.example")
    assert received.recipients == ["coder@clinic.example", "biller@clinic.example"]
    assert mail["Subject"] == "Re: diabetes coding [CC-000001]"
    assert mail["In-Reply-To"] == "<q1@clinic.example>"
    assert mail["References"] == "<earlier@clinic.example> <q1@clinic.example>"
    assert mail["Auto-Submitted"] is None  # a person wrote it
    assert mail["X-CaseConsultant-Id"] == "CC-000001"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text.startswith(ANSWER) and "not legal" in text and "[CC-000001]" in text
    assert "E11.65 is a billable ICD-10-CM code" in html
    assert (ticket(engine, ticket_id).status, state(engine, delivery_id).state) == ("sent", "sent")


def test_the_reply_html_escapes_what_the_consultant_typed(engine: Engine) -> None:
    body = 'Use <b>E11.65</b> & not "E11.9" <script>alert(1)</script>\nline two'
    _, delivery_id = approved(engine, body=body)
    with mail_server() as server:
        deliver(engine, delivery_id, smtp(server), SETTINGS)
    html = server.received[0].message.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "&lt;b&gt;E11.65&lt;/b&gt; &amp; not &#34;E11.9&#34;" in html
    assert "line two" in html and "<br>" in html


def test_nothing_a_customer_wrote_can_add_a_header() -> None:
    question_row = Message(
        direction="inbound",
        dedupe_key="x",
        message_id="q1@clinic.example>\r\nBcc: <victim@evil.example",
        references=["ok@clinic.example", "bad\r\nBcc: x@evil.example"],
        from_address="coder@clinic.example",
        reply_to="coder@clinic.example\r\nBcc: victim@evil.example",
        cc=["biller@clinic.example", "x@evil.example\nBcc: y@evil.example"],
        subject="Help\r\nBcc: victim@evil.example\x00",
        outcome="created",
    )
    hostile_reply_to = question_row.reply_to
    outgoing = composer().reply(7, question_row, "Answer.", to=hostile_reply_to, cc=[])
    assert outgoing.to == []  # a Reply-To with a line break is no address at all
    outgoing = composer().reply(
        7, question_row, "Answer.", to="coder@clinic.example", cc=question_row.cc
    )
    assert outgoing.to == ["coder@clinic.example"]
    assert outgoing.cc == ["biller@clinic.example"]
    assert outgoing.subject == "Re: Help Bcc: victim@evil.example [CC-000007]"
    assert outgoing.in_reply_to == [] and outgoing.references == []
    row = Message(
        direction="outbound",
        dedupe_key="m",
        message_id="m1@caseconsultant.example",
        ticket_id=7,
        from_address=OURS,
        to=outgoing.to,
        cc=outgoing.cc,
        subject=outgoing.subject,
        text=outgoing.text,
        html=outgoing.html,
        outcome="outbound",
    )
    with pytest.raises(ValueError, match="cannot contain CR or LF"):
        build_mime(row, kind="reply", from_name="Acme\r\nBcc: evil@evil.example")
    raw = build_mime(row, kind="reply", from_name="Acme")
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Bcc"] is None and len(mail.get_all("Subject")) == 1
    assert b"\r\nBcc:" not in raw


def test_subjects_get_one_re_and_one_reference() -> None:
    assert reply_subject("Re: RE: AW: Q [CC-000003]", 3) == "Re: Q [CC-000003]"
    assert reply_subject("", 3) == "Re: Your coding question [CC-000003]"
    assert len(reply_subject("x" * 5000, 3)) < 220


def test_a_new_ticket_is_acknowledged_once_as_an_auto_reply(engine: Engine) -> None:
    ticket_id = new_ticket(engine)
    first = queue_acknowledgement(engine, ticket_id, composer(), OURS)
    assert first is not None
    assert queue_acknowledgement(engine, ticket_id, composer(), OURS) == first
    assert unacknowledged(engine) == []
    with mail_server() as server:
        assert deliver(engine, first, smtp(server), SETTINGS).status == "sent"
    mail = server.received[0].message
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["Subject"] == "Re: Coding question [CC-000001]"
    assert "received it as CC-000001" in mail.get_content()
    assert "Is E11.65 billable?" not in mail.get_content()  # never quotes the customer
    assert ticket(engine, ticket_id).status == "new"  # an acknowledgement answers nothing


def test_automated_mail_and_held_tickets_are_not_acknowledged(engine: Engine) -> None:
    held = Intake(engine, IngestConfig(allow=("other.example",))).accept(question(), "pipe")
    assert held.ticket is not None
    assert queue_acknowledgement(engine, parse_reference(held.ticket), composer(), OURS) is None
    assert unacknowledged(engine) == []


def test_a_4xx_is_retried_with_backoff_then_sent_once(engine: Engine) -> None:
    ticket_id, delivery_id = approved(engine)
    with mail_server() as server:
        server.script.extend(["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"])
        first = deliver(engine, delivery_id, smtp(server), SETTINGS)
        assert first.status == "retry" and first.retry_in is not None
        assert 30 <= first.retry_in <= 60  # the first delay, with jitter
        waiting = state(engine, delivery_id)
        assert (waiting.state, waiting.attempts) == ("queued", 1)
        assert "451 4.7.1 Greylisted" in waiting.error
        # A second task for it now (a duplicate) waits for the backoff.
        assert deliver(engine, delivery_id, smtp(server), SETTINGS).status == "skipped"
        due_now(engine, delivery_id)
        second = deliver(engine, delivery_id, smtp(server), SETTINGS)
        assert second.status == "retry" and second.retry_in is not None
        assert 60 <= second.retry_in <= 120  # doubled
        due_now(engine, delivery_id)
        assert deliver(engine, delivery_id, smtp(server), SETTINGS).status == "sent"
    assert server.attempts == 3 and len(server.received) == 1
    assert ticket(engine, ticket_id).status == "sent"


def test_a_5xx_fails_the_reply_visibly_and_it_can_be_approved_again(engine: Engine) -> None:
    ticket_id, delivery_id = approved(engine)
    with mail_server() as server:
        server.script.append("550 5.1.1 <coder@clinic.example>: mailbox unavailable")
        outcome = deliver(engine, delivery_id, smtp(server), SETTINGS)
        assert outcome.status == "failed"
        failed = ticket(engine, ticket_id)
        assert failed.status == "failed" and failed.error is not None
        assert "550 5.1.1" in failed.error
        assert deliver(engine, delivery_id, smtp(server), SETTINGS).status == "skipped"
        again = approve(engine, ticket_id, "dana", reply_queuer(composer(), OURS, 10))
        assert again.delivery_id != delivery_id
        assert deliver(engine, again.delivery_id, smtp(server), SETTINGS).status == "sent"
    assert len(server.received) == 1 and ticket(engine, ticket_id).status == "sent"


def test_an_unreachable_server_is_retried_then_given_up(engine: Engine) -> None:
    ticket_id, delivery_id = approved(engine)
    closed = SmtpTransport(SmtpConfig(host=LOOPBACK, port=free_port(), tls="none", timeout=2))
    assert deliver(engine, delivery_id, closed, SETTINGS).status == "retry"
    for _ in range(2):
        due_now(engine, delivery_id)
        outcome = deliver(engine, delivery_id, closed, SETTINGS)
    assert outcome.status == "failed" and "gave up after 3 attempts" in outcome.detail
    assert "cannot connect" in (ticket(engine, ticket_id).error or "")


def test_a_connection_lost_after_data_is_in_doubt_and_not_sent_again(engine: Engine) -> None:
    ticket_id, delivery_id = approved(engine)
    with mail_server() as server:
        server.hold_data = 3  # it keeps the message, then is slow to say so
        impatient = smtp(server, timeout=1)
        outcome = deliver(engine, delivery_id, impatient, SETTINGS)
        assert outcome.status == "failed" and "may have accepted it" in outcome.detail
        assert deliver(engine, delivery_id, impatient, SETTINGS).status == "skipped"
    assert len(server.received) == 1
    assert "check before approving it again" in (ticket(engine, ticket_id).error or "")


def test_a_dead_workers_claim_is_taken_over_only_before_hand_over(engine: Engine) -> None:
    """Two deliveries a killed worker left behind: one was still `sending` (nothing
    reached the server), one `unconfirmed` (it may have)."""
    _, before = approved(engine)
    other_ticket, during = approved(engine, question("Second?", message_id="<q2@c.example>"))
    long_ago = utcnow() - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        for delivery_id, left in ((before, "sending"), (during, "unconfirmed")):
            session.exec(  # type: ignore[call-overload]
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(state=left, claimed_at=long_ago, attempts=1)
            )
    stale = timedelta(minutes=10)
    assert due_deliveries(engine, stale_after=stale) == [before]
    assert fail_unconfirmed(engine, stale_after=stale) == [during]
    with mail_server() as server:
        assert deliver(engine, before, smtp(server), SETTINGS).status == "sent"
        assert deliver(engine, during, smtp(server), SETTINGS).status == "skipped"
    assert len(server.received) == 1
    assert state(engine, during).state == "failed"
    assert "may or may not have arrived" in (ticket(engine, other_ticket).error or "")


def test_an_unexpected_error_fails_the_delivery_with_it(engine: Engine) -> None:
    class Broken:
        name = "broken"

        def send(self, sender: str, recipients: object, raw: bytes, handing_over: object) -> str:
            raise KeyError("a bug")

    ticket_id, delivery_id = approved(engine)
    with pytest.raises(KeyError):
        deliver(engine, delivery_id, Broken(), SETTINGS)
    assert state(engine, delivery_id).state == "failed"
    assert "unexpected error before the hand-over" in (ticket(engine, ticket_id).error or "")


def test_two_workers_on_one_delivery_send_it_once(engine: Engine) -> None:
    _, delivery_id = approved(engine)
    with mail_server() as server:
        server.hold_rcpt = 0.5
        outcomes: list[str] = []
        workers = [
            threading.Thread(
                target=lambda: outcomes.append(
                    deliver(engine, delivery_id, smtp(server), SETTINGS).status
                )
            )
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped"]
    assert len(server.received) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1, and the CA file that signed it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK).configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_and_login(engine: Engine, certificate: tuple[ssl.SSLContext, Path], tls: str) -> None:
    context, ca_file = certificate
    _, delivery_id = approved(engine)
    users = {"relay-user": "made-up-password"}
    with mail_server(tls=tls, cert_context=context, users=users) as server:

        def transport(**settings: object) -> Transport:
            config = {"host": LOOPBACK, "port": server.port, "tls": tls, "timeout": 5}
            return SmtpTransport(SmtpConfig(**{**config, **settings}))  # type: ignore[arg-type]

        untrusted = deliver(engine, delivery_id, transport(username="relay-user"), SETTINGS)
        assert untrusted.status == "failed" and "not trusted" in untrusted.detail
        _, delivery_id = approved(engine, question("Q2", message_id="<q2@c.example>"))
        wrong = transport(ca_file=ca_file, username="relay-user", password="wrong")
        refused = deliver(engine, delivery_id, wrong, SETTINGS)
        assert refused.status == "failed" and "refused the login" in refused.detail, refused
        _, delivery_id = approved(engine, question("Q3", message_id="<q3@c.example>"))
        right = transport(
            ca_file=ca_file, username="relay-user", password_command="echo made-up-password"
        )
        assert deliver(engine, delivery_id, right, SETTINGS).status == "sent"
    assert len(server.received) == 1


def test_without_smtp_replies_go_to_the_maildir_outbox(engine: Engine, tmp_path: Path) -> None:
    ticket_id, delivery_id = approved(engine)
    outbox = tmp_path / "outbox"
    outcome = deliver(engine, delivery_id, MaildirTransport(outbox), SETTINGS)
    assert outcome.status == "sent" and str(outbox / "new") in outcome.detail
    (kept,) = list(Maildir(outbox, create=False))
    assert kept["Subject"] == "Re: Coding question [CC-000001]"
    assert ticket(engine, ticket_id).status == "sent"


def test_operators_can_override_the_templates(engine: Engine, tmp_path: Path) -> None:
    overrides = tmp_path / "templates"
    (overrides / "mail").mkdir(parents=True)
    (overrides / "mail" / "footer.txt.j2").write_text("Acme Coding LLC, {{ reference }}.\n")
    ticket_id = new_ticket(engine)
    outgoing = composer(overrides).acknowledgement(
        ticket_id,
        Message(
            direction="inbound",
            dedupe_key="k",
            from_address="coder@clinic.example",
            outcome="created",
        ),
    )
    assert outgoing.text.rstrip().endswith("Acme Coding LLC, CC-000001.")


def test_a_copy_goes_to_the_imap_sent_folder(dovecot: Dovecot, mail_user: str) -> None:
    mailbox = MailboxConfig(
        name="consult",
        host=LOOPBACK,
        port=dovecot.port("none"),
        tls="none",
        username=mail_user,
        password=dovecot.password(mail_user),
    )
    raw = question("A copy of our answer (made up).", message_id="<copy@caseconsultant.example>")
    assert copy_to_sent(mailbox, "Sent", raw)
    assert len(dovecot.folder_uids(mail_user, "Sent")) == 1
    wrong = MailboxConfig(**{**mailbox.__dict__, "password": "wrong"})
    assert not copy_to_sent(wrong, "Sent", raw)  # logged; the delivery stands


def test_cc_goes_only_where_the_consultant_chose_and_is_capped(engine: Engine) -> None:
    """Hardening issue, point 9: a question copied to 10,000 addresses, approved as it
    stands, is answered to the customer alone; copying is chosen address by address,
    and one answer goes to [delivery] max_recipients addresses at most."""
    many = ", ".join(f"person{n}@spam.test" for n in range(10_000))
    raw = question("Is E11.65 billable?", headers={"Cc": many})
    ticket_id, delivery_id = approved(engine, raw)
    with Session(engine) as session:
        sent = session.get(Message, state(engine, delivery_id).message_id)
        assert sent is not None
        assert (sent.to, sent.cc) == (["coder@clinic.example"], [])
        candidates = copy_candidates(session, ticket_id, [OURS, "coder@clinic.example"])
    assert len(candidates) == 10_000 and candidates[0] == "person0@spam.test"
    other = new_ticket(engine, question("And E11.9?", headers={"Cc": many}))
    draft_ticket(engine, other, lambda text: {"draft": "drafted", "findings": []})
    queue = reply_queuer(composer(), OURS, 10)
    with pytest.raises(TicketActionError, match=r"11 recipients .* max_recipients = 10"):
        approve(engine, other, "dana", queue, cc=candidates[:10])
    with pytest.raises(TicketActionError, match="not a plain address"):
        approve(engine, other, "dana", queue, cc=["bob@clinic..test"])
    copied = approve(engine, other, "dana", queue, cc=candidates[:9])
    with Session(engine) as session:
        sent = session.get(Message, state(engine, copied.delivery_id).message_id)
        assert sent is not None and sent.cc == candidates[:9]


def test_a_malformed_customer_address_fails_visibly_once(engine: Engine, tmp_path: Path) -> None:
    """Hardening issue, point 2: `<bob@clinic..test>` used to make a delivery that the
    email package refused at every sweep, forever `queued`."""
    for sender in ("bob@clinic..test", "carol@clinic.test."):
        ticket_id = new_ticket(engine, question(sender=sender, message_id=None))
        assert queue_acknowledgement(engine, ticket_id, composer(), OURS) is None
        with Session(engine) as session:
            (ack,) = session.exec(select(Delivery).where(Delivery.ticket_id == ticket_id)).all()
        assert ack.state == "failed" and "not a plain address" in ack.error
        draft_ticket(engine, ticket_id, lambda text: {"draft": "drafted", "findings": []})
        with pytest.raises(TicketActionError, match="no address we can reply to"):
            approve(engine, ticket_id, "dana", reply_queuer(composer(), OURS, 10))
    assert unacknowledged(engine) == []


def test_any_error_building_a_message_fails_its_delivery_once(engine: Engine) -> None:
    """Whatever the email package refuses while building the bytes (a header it cannot
    parse), the delivery is failed with the reason, not left queued."""
    ticket_id, delivery_id = approved(engine)
    with Session(engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        session.exec(  # type: ignore[call-overload]
            update(Message).where(Message.id == delivery.message_id).values(to=["a@b..c"])
        )
    outcome = deliver(engine, delivery_id, MaildirTransport(Path("/nonexistent")), SETTINGS)
    assert outcome.status == "failed" and "cannot be built" in outcome.detail
    assert (state(engine, delivery_id).state, state(engine, delivery_id).attempts) == ("failed", 0)
    assert ticket(engine, ticket_id).status == "failed"
    assert due_deliveries(engine, stale_after=timedelta(minutes=10)) == []
