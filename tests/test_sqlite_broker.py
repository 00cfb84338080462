"""The embedded queue (workers.sqlite_broker) on its own and under a real worker: a
consumed message is kept until acknowledged and then removed, returns when its
consumer dies, and a pool child killed mid-task never stops the worker (hardening
issue, points 1 and 4)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Producer, Queue
from sqlalchemy import Engine
from sqlmodel import Session, select

from consultant.config import load_config
from consultant.database.migrate import open_database
from consultant.tickets.intake import Intake
from consultant.tickets.models import Ticket
from tests.mailmaker import question
from tests.test_workers import drafts, wait_for_status, worker, write_config
from workers import sqlite_broker

QUEUE = Queue("celery")


def rows(path: Path) -> list[tuple[int, float]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, visible_at FROM queued_messages ORDER BY id").fetchall()


def publish(url: str, *bodies: dict) -> None:
    with Connection(url) as connection:
        producer = Producer(connection.default_channel)
        for body in bodies:
            producer.publish(body, routing_key=QUEUE.name, declare=[QUEUE])


def consume(url: str, count: int, ack: bool, **options: float) -> list[dict]:
    got: list[dict] = []

    def receive(body: dict, message: object) -> None:
        got.append(body)
        if ack:
            message.ack()  # type: ignore[attr-defined]

    with (
        Connection(url, transport_options=options) as connection,
        Consumer(connection, [QUEUE], callbacks=[receive]),
    ):
        for _ in range(count):
            connection.drain_events(timeout=2)
    return got


def test_an_acknowledged_message_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    url = f"sqlite:///{path}"
    publish(url, {"n": 1}, {"n": 2})
    assert len(rows(path)) == 2
    assert consume(url, 2, ack=True) == [{"n": 1}, {"n": 2}]
    assert rows(path) == []  # kombu's SQLAlchemy transport kept every consumed row


def test_an_unacknowledged_message_returns_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    url = f"sqlite:///{path}"
    publish(url, {"n": 1}, {"n": 2})
    assert consume(url, 1, ack=False) == [{"n": 1}]  # the consumer closes without an ack
    assert consume(url, 2, ack=True) == [{"n": 1}, {"n": 2}]
    assert rows(path) == []


def test_a_message_whose_consumer_vanished_returns_after_the_visibility_timeout(
    tmp_path: Path,
) -> None:
    """A consumer killed with SIGKILL says nothing; its reservation runs out."""
    path = tmp_path / "queue.sqlite"
    url = f"sqlite:///{path}"
    publish(url, {"n": 1})
    script = (
        "import os, signal, workers.sqlite_broker\n"
        "from kombu import Connection, Consumer, Queue\n"
        f"c = Connection({url!r}, transport_options={{'visibility_timeout': 1}})\n"
        "def receive(body, message):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "with c, Consumer(c, [Queue('celery')], callbacks=[receive]):\n"
        "    c.drain_events(timeout=5)\n"
    )
    dead = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    assert dead.returncode == -signal.SIGKILL
    ((_, visible_at),) = rows(path)
    assert visible_at > time.time()  # still reserved by the dead consumer
    time.sleep(1.2)
    assert consume(url, 1, ack=True, visibility_timeout=30) == [{"n": 1}]
    assert rows(path) == []


def test_broker_urls_name_a_file() -> None:
    assert sqlite_broker.database_path("sqlite:////srv/cc/queue.sqlite") == Path(
        "/srv/cc/queue.sqlite"
    )
    assert sqlite_broker.database_path("sqlite:///var/queue.sqlite") == Path("var/queue.sqlite")
    with pytest.raises(ValueError, match="not a sqlite:///PATH"):
        sqlite_broker.database_path("sqlite://host/queue.sqlite")


def ready_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Ticket.id).where(Ticket.status == "ready")).all())


def pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_killing_busy_pool_children_never_stops_the_worker(
    code_db: Path, tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> None:
    """Point 4: with kombu's SQLAlchemy transport, SIGKILL of a busy pool child once
    made the worker exit ("This session is in 'prepared' state"); and without the event
    loop, a child killed while waiting for its next task left its replacements waiting
    on the shared queue's lock for ever. Eight tries, each killing the pool child while
    it drafts: the worker lives on, on either broker, and every ticket is drafted once
    (a killed child's ticket is taken over once its claim is stale)."""
    # A short time limit: a killed child's ticket is taken over 10 s after its claim.
    url = request.getfixturevalue("redis").url if broker == "redis" else None
    config_path = write_config(
        tmp_path, code_db, url, "task_time_limit = 5\n", "[delivery]\nacknowledge = false\n"
    )
    config = load_config(config_path)
    intake = Intake(open_database(config.database_url), config.ingest)
    from workers.app import make_celery
    from workers.enqueue import wake

    count = 120  # enough that drafting outlasts the eight kills
    for n in range(count):
        raw = question(f"Question {n}: is E11.65 billable?", sender=f"c{n}@clinic.example")
        assert intake.accept(raw, "pipe").status == "created"
    # The sweep's schedule in a process of its own: the kills below are for the pool.
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "beat",
            "--loglevel",
            "WARNING",
            f"--schedule={tmp_path / 'beat-schedule'}",
        ],
        env={**os.environ, "CONSULTANT_CONFIG": str(config_path)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "beat.log").open("ab"),
    )
    engine = open_database(config.database_url)
    with worker(config_path, "--no-beat") as process:
        wake(make_celery(config), count)
        for _ in range(8):  # eight tries, each killing the pool child while it drafts
            drafted = ready_count(engine)
            if drafted == count:
                break  # every ticket drafted before the eighth kill: no child is drafting
            deadline = time.monotonic() + 60
            while ready_count(engine) == drafted:
                assert time.monotonic() < deadline, "the worker stopped drafting"
                time.sleep(0.05)
            (child,) = pool_children(process.pid)
            os.kill(child, signal.SIGKILL)
            time.sleep(0.3)
            assert process.poll() is None, "the worker stopped when a pool child was killed"
        for ticket_id in range(1, count + 1):
            wait_for_status(tmp_path, "ready", seconds=120, ticket_id=ticket_id)
        assert process.poll() is None
    beat.terminate()
    beat.wait(timeout=30)
    per_ticket = [d.ticket_id for d in drafts(tmp_path)]
    assert sorted(per_ticket) == list(range(1, count + 1))  # each drafted once
