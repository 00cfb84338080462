"""The intake's decisions that protect one customer from another (hardening issue,
points 6, 7 and 9): who may join a ticket and change where its answer goes, who owns
a Message-ID, whom a flood may make us write to. On SQLite and PostgreSQL; every
sender and patient here is made up."""

from __future__ import annotations

import smtplib
from dataclasses import replace

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.config import IngestConfig
from consultant.mail.authentication import failed_authentication
from consultant.tickets.intake import Intake
from consultant.tickets.models import AuditEvent, Message, Ticket
from consultant.tickets.references import parse_reference
from consultant.tickets.rules import RULES, SENDER_UNVERIFIED
from tests.mailmaker import question

CONFIG = IngestConfig(our_addresses=("consult@caseconsultant.example",))
VERA = "vera@clinic.test"


@pytest.fixture
def intake(engine: Engine) -> Intake:
    return Intake(engine, CONFIG)


def messages(engine: Engine, ticket: str) -> list[Message]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.ticket_id == parse_reference(ticket))
                .order_by(col(Message.id))
            ).all()
        )


def test_a_forged_reply_to_on_a_follow_up_is_a_warning_not_a_new_address(
    intake: Intake, engine: Engine
) -> None:
    """Point 6: From forged as the customer, Reply-To the attacker's, the reference in
    the subject. It joins (it may be her), but the answer's address stays hers and
    the new Reply-To is a warning for the consultant."""
    first = intake.accept(question("Is E11.65 billable?", sender=VERA), "pipe")
    assert first.ticket is not None
    forged = question(
        "Please also resend the earlier answer",
        sender=VERA,
        subject=f"Re: Coding question [{first.ticket}]",
        headers={"Reply-To": "mallory@evil.test"},
    )
    outcome = intake.accept(forged, "pipe")
    assert (outcome.status, outcome.ticket) == ("appended", first.ticket)
    opening, follow_up = messages(engine, first.ticket)
    assert opening.warnings == []
    (warning,) = follow_up.warnings
    assert "mallory@evil.test" in warning and f"goes to {VERA}" in warning
    # The customer's own follow-up with her own address raises nothing.
    own = question("One more thing", sender=VERA, subject=f"Re: [{first.ticket}]")
    intake.accept(own, "pipe")
    assert messages(engine, first.ticket)[-1].warnings == []


def test_a_from_that_failed_authentication_is_a_warning(intake: Intake, engine: Engine) -> None:
    """Point 6: the receiving server's Authentication-Results (the topmost header)
    says the From domain failed DMARC; a lower, forged 'pass' is not believed."""
    # The sender's own invention, and on top the header the receiving server added.
    raw = question(
        "Is Z91.011 billable?",
        sender=VERA,
        headers={"Authentication-Results": "evil.test; dmarc=pass header.from=clinic.test"},
    )
    raw = (
        b"Authentication-Results: mx.caseconsultant.example; spf=fail "
        b"smtp.mailfrom=clinic.test;\r\n dkim=none; dmarc=fail (p=reject) "
        b"header.from=clinic.test\r\n" + raw
    )
    outcome = intake.accept(raw, "pipe")
    assert outcome.ticket is not None
    (message,) = messages(engine, outcome.ticket)
    (warning,) = message.warnings
    assert warning.startswith(SENDER_UNVERIFIED) and "dmarc=fail" in warning
    # With [ingest] authserv_id set, only our server's header counts.
    strict = Intake(engine, replace(CONFIG, authserv_id="mx.other.example"))
    other = strict.accept(
        question(
            "Again?",
            sender="ann@clinic.test",
            headers={"Authentication-Results": "mx.example; dmarc=fail header.from=clinic.test"},
        ),
        "pipe",
    )
    assert other.ticket is not None
    assert messages(engine, other.ticket)[0].warnings == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("mx.example; dmarc=pass header.from=clinic.test", None),
        ("mx.example; dmarc=fail (p=none) header.from=clinic.test", "dmarc=fail"),
        ("mx.example; spf=softfail smtp.mailfrom=clinic.test", "spf=softfail"),
        ("mx.example; spf=fail smtp.mailfrom=x.test; dkim=pass header.d=clinic.test", None),
        ("mx.example; spf=fail; dkim=pass header.d=other.test", "spf=fail"),
        ("mx.example; none", None),
        ("mx.example (our (nested) comment); dmarc=fail header.from=sub.clinic.test", "dmarc"),
        ("", None),
    ],
)
def test_authentication_results_are_read_as_rfc_8601_says(
    header: str, expected: str | None
) -> None:
    found = failed_authentication(header, VERA, None)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(expected)


def test_a_strangers_message_under_a_customers_message_id_is_kept_apart(
    intake: Intake, engine: Engine
) -> None:
    """Point 7: reusing the victim's Message-ID neither plants text in her thread nor
    tells the stranger her ticket."""
    victim = intake.accept(
        question("Is E11.65 billable?", message_id="<victim1@clinic.test>", sender=VERA), "smtp"
    )
    stranger = intake.accept(
        question(
            "Show me the answer", message_id="<victim1@clinic.test>", sender="mallory@evil.test"
        ),
        "smtp",
    )
    assert stranger.ticket != victim.ticket
    assert stranger.status == "created"  # a question of its own, with its own ticket
    assert victim.ticket is not None
    assert [m.from_address for m in messages(engine, victim.ticket)] == [VERA]
    assert stranger.ticket is not None
    (kept,) = messages(engine, stranger.ticket)
    assert "reused-message-id" in kept.defects
    # Sent again, it is a duplicate of the stranger's own message, not of hers.
    again = intake.accept(
        question(
            "Show me the answer", message_id="<victim1@clinic.test>", sender="mallory@evil.test"
        ),
        "smtp",
    )
    assert (again.status, again.ticket) == ("duplicate", stranger.ticket)


def test_a_reply_to_named_by_many_senders_is_rate_limited(engine: Engine) -> None:
    """Point 9: the limit counts every address we would write to, so five From
    addresses with one Reply-To cannot make five acknowledgements to that third party."""
    intake = Intake(engine, replace(CONFIG, rate_limit=3))
    outcomes = [
        intake.accept(
            question(
                f"Question {n}",
                sender=f"sender{n}@spam.test",
                headers={"Reply-To": "victim@third.test"},
            ),
            "pipe",
        )
        for n in range(5)
    ]
    assert [o.status for o in outcomes] == ["created"] * 3 + ["ignored"] * 2
    assert "to this Reply-To" in outcomes[3].reason
    with Session(engine) as session:
        tickets = session.exec(select(Ticket)).all()
    assert len(tickets) == 3


def test_every_decision_names_its_rule_and_the_rules_are_one_list(
    intake: Intake, engine: Engine
) -> None:
    assert [rule.__name__ for rule in RULES] == [
        "unparsable",
        "seen_before",
        "ours_came_back",
        "no_sender",
        "from_us",
        "automated",
        "flooding",
        "reply",
        "not_allowed",
        "new_question",
    ]
    intake.accept(question("I am away", headers={"Auto-Submitted": "auto-replied"}), "pipe")
    with Session(engine) as session:
        (event,) = session.exec(select(AuditEvent)).all()
    assert (event.action, event.detail["rule"]) == ("message.ignored", "automated")


def test_no_smtp_answer_names_a_ticket(engine: Engine) -> None:
    """Point 7: `250 … Stored: duplicate CC-000225` told a stranger the victim's
    reference. The SMTP answer names the outcome only."""
    from tests.test_smtp_ingress import serve

    for port in serve(Intake(engine, CONFIG)):
        answers = []
        for sender in (VERA, "mallory@evil.test", "mallory@evil.test"):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo()
                client.mail(sender)
                client.rcpt("consult@caseconsultant.example")
                raw = question("Hello", message_id="<victim1@clinic.test>", sender=sender)
                answers.append(client.data(raw))
    assert [code for code, _ in answers] == [250, 250, 250]
    assert [text for _, text in answers] == [
        b"2.0.0 Stored: created",
        b"2.0.0 Stored: created",
        b"2.0.0 Stored: duplicate",
    ]
