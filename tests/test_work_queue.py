"""The ticket database as the record of work, the queue only waking workers (hardening
issue, point 1): each piece of work is taken once, most urgent first; requests for a
look never pile up; sweeps take turns. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from consultant.config import IngestConfig, load_config
from consultant.database.types import utcnow
from consultant.delivery.deliver import deliver_next
from consultant.delivery.outbox import queue_acknowledgement, reply_queuer
from consultant.delivery.transports import MaildirTransport
from consultant.drafting.ticket_draft import draft_next, draft_ticket
from consultant.tickets.actions import approve
from consultant.tickets.intake import Intake
from consultant.tickets.models import Delivery, Draft, Ticket
from consultant.tickets.references import parse_reference
from tests.mailmaker import question
from tests.test_delivery import OURS, SETTINGS, composer
from workers.app import make_celery
from workers.enqueue import MOST_AT_ONCE, wake
from workers.turns import take_turn


def tickets(engine: Engine, count: int) -> list[int]:
    intake = Intake(engine, IngestConfig(our_addresses=(OURS,)))
    outcomes = [
        intake.accept(question(f"Question {n}", sender=f"c{n}@clinic.example"), "pipe")
        for n in range(count)
    ]
    return [parse_reference(o.ticket) for o in outcomes if o.ticket]


STALE = timedelta(minutes=10)
LIMITS = IngestConfig()


def drafted(text: str) -> dict:
    return {"draft": "drafted", "findings": []}


def drafts_per_ticket(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        rows = session.exec(select(Draft.ticket_id)).all()
    return {ticket_id: rows.count(ticket_id) for ticket_id in set(rows)}


def test_two_workers_never_draft_the_same_ticket(engine: Engine) -> None:
    ids = tickets(engine, 6)
    taken: list[int] = []

    def work() -> None:
        while (done := draft_next(engine, drafted, LIMITS, stale_after=STALE)) is not None:
            taken.append(done[0])

    workers = [threading.Thread(target=work) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert sorted(taken) == ids
    assert drafts_per_ticket(engine) == dict.fromkeys(ids, 1)


def test_a_ticket_a_dead_worker_was_drafting_is_taken_over(engine: Engine) -> None:
    (ticket_id,) = tickets(engine, 1)
    with Session(engine) as session, session.begin():
        session.exec(  # type: ignore[call-overload]
            update(Ticket).where(Ticket.id == ticket_id).values(status="drafting")
        )
    assert draft_next(engine, drafted, LIMITS, stale_after=STALE) is None  # still its worker's
    done = draft_next(engine, drafted, LIMITS, stale_after=timedelta(0))
    assert done is not None and done[1].status == "drafted"


def test_a_ticket_whose_analysis_fails_is_failed_and_the_next_one_drafted(
    engine: Engine,
) -> None:
    first, second = tickets(engine, 2)

    def broken_on_the_first(text: str) -> dict:
        if "Question 0" in text:
            raise RuntimeError("code database file is corrupt")
        return drafted(text)

    outcomes = [draft_next(engine, broken_on_the_first, LIMITS, stale_after=STALE) for _ in "ab"]
    assert [(o[0], o[1].status) for o in outcomes if o] == [(first, "failed"), (second, "drafted")]
    assert draft_next(engine, drafted, LIMITS, stale_after=STALE) is None
    with Session(engine) as session:
        failed = session.get(Ticket, first)
        assert failed is not None and failed.status == "failed"
        assert failed.error == "drafting failed: RuntimeError('code database file is corrupt')"


def test_a_follow_up_that_arrives_while_drafting_is_drafted_next(engine: Engine) -> None:
    intake = Intake(engine, IngestConfig(our_addresses=(OURS,)))
    first = intake.accept(question("Is E11.65 billable?", message_id="<a@clinic.example>"), "p")
    assert first.ticket is not None
    ticket_id = parse_reference(first.ticket)

    def analyze_while_the_customer_writes(text: str) -> dict:
        follow_up = question("And E11.9?", in_reply_to="<a@clinic.example>")
        assert intake.accept(follow_up, "pipe").status == "appended"
        return drafted(text)

    assert draft_next(engine, analyze_while_the_customer_writes, LIMITS, stale_after=STALE)
    again = draft_next(engine, drafted, LIMITS, stale_after=STALE)
    assert again is not None and again == (ticket_id, again[1]) and again[1].status == "drafted"
    assert drafts_per_ticket(engine) == {ticket_id: 2}


def test_the_acknowledgement_goes_out_before_the_answer(engine: Engine, tmp_path: Path) -> None:
    """A reply approved before its ticket's acknowledgement was sent waits for it."""
    (ticket_id,) = tickets(engine, 1)
    ack = queue_acknowledgement(engine, ticket_id, composer(), OURS)
    draft_ticket(engine, ticket_id, lambda text: {"draft": "drafted", "findings": []})
    reply = approve(engine, ticket_id, "dana", reply_queuer(composer(), OURS, 10)).delivery_id
    # Another worker is sending the acknowledgement right now: the answer is not due.
    with Session(engine) as session, session.begin():
        session.exec(  # type: ignore[call-overload]
            update(Delivery).where(Delivery.id == ack).values(state="sending", claimed_at=utcnow())
        )
    outbox = MaildirTransport(tmp_path / "outbox")
    assert deliver_next(engine, outbox, SETTINGS) is None
    with Session(engine) as session, session.begin():
        session.exec(  # type: ignore[call-overload]
            update(Delivery).where(Delivery.id == ack).values(state="queued")
        )
    sent = [deliver_next(engine, outbox, SETTINGS) for _ in range(3)]
    assert [(o.delivery_id, o.status) for o in sent if o] == [(ack, "sent"), (reply, "sent")]


def test_sweeps_take_turns(engine: Engine) -> None:
    every = timedelta(seconds=30)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(take_turn(engine, "sweep", every)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert take_turn(engine, "sweep", every) is False
    assert take_turn(engine, "other", every) is True
    assert take_turn(engine, "sweep", timedelta(0)) is False  # the turn runs for 30 s
    with Session(engine) as session, session.begin():
        from consultant.tickets.models import WorkerTurn

        session.exec(  # type: ignore[call-overload]
            update(WorkerTurn).values(next_at=utcnow() - timedelta(seconds=1))
        )
    assert take_turn(engine, "sweep", every) is True


def test_requests_for_work_never_pile_up(tmp_path: Path) -> None:
    """However often the ingresses and the sweep ask, the queue holds at most
    MOST_AT_ONCE requests: each wakes a worker that takes whatever is waiting."""
    config_file = tmp_path / "c.toml"
    config_file.write_text(f'[paths]\ndata_dir = "{tmp_path}"\n')
    app = make_celery(load_config(config_file))
    for wanted in (3, 3, 500, 1, 500):
        assert wake(app, wanted)
    with sqlite3.connect(tmp_path / "queue.sqlite") as queue:
        (waiting,) = queue.execute("SELECT count(*) FROM queued_messages").fetchone()
    assert waiting == MOST_AT_ONCE
