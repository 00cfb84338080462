"""The ticket database as the record of work, the queue only waking workers (hardening
issue, point 1): each piece of work is taken once, most urgent first; requests for a
look never pile up; sweeps take turns. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlmodel import Session

from consultant.config import IngestConfig, load_config
from consultant.database.types import utcnow
from consultant.delivery.deliver import deliver_next
from consultant.delivery.outbox import queue_acknowledgement, reply_queuer
from consultant.delivery.transports import MaildirTransport
from consultant.drafting.ticket_draft import claim_next_draft, draft_ticket
from consultant.tickets.actions import approve
from consultant.tickets.intake import Intake
from consultant.tickets.models import Delivery
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


def test_two_workers_never_take_the_same_ticket(engine: Engine) -> None:
    ids = tickets(engine, 6)
    taken: list[int | None] = []

    def take() -> None:
        for _ in range(3):
            taken.append(claim_next_draft(engine, stale_after=timedelta(minutes=10)))

    workers = [threading.Thread(target=take) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert sorted(t for t in taken if t is not None) == ids
    assert claim_next_draft(engine, stale_after=timedelta(minutes=10)) is None


def test_a_claim_left_by_a_dead_worker_is_taken_over(engine: Engine) -> None:
    (ticket_id,) = tickets(engine, 1)
    assert claim_next_draft(engine, stale_after=timedelta(minutes=10)) == ticket_id
    assert claim_next_draft(engine, stale_after=timedelta(minutes=10)) is None
    assert claim_next_draft(engine, stale_after=timedelta(0)) == ticket_id


def test_a_follow_up_that_arrives_while_drafting_is_drafted_next(engine: Engine) -> None:
    intake = Intake(engine, IngestConfig(our_addresses=(OURS,)))
    first = intake.accept(question("Is E11.65 billable?", message_id="<a@clinic.example>"), "p")
    assert first.ticket is not None
    ticket_id = parse_reference(first.ticket)
    assert claim_next_draft(engine, stale_after=timedelta(minutes=10)) == ticket_id

    def analyze_while_the_customer_writes(text: str) -> dict:
        follow_up = question("And E11.9?", in_reply_to="<a@clinic.example>")
        assert intake.accept(follow_up, "pipe").status == "appended"
        return {"draft": "drafted", "findings": []}

    draft_ticket(engine, ticket_id, analyze_while_the_customer_writes)
    assert claim_next_draft(engine, stale_after=timedelta(minutes=10)) == ticket_id


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
