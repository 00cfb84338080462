"""Burst benchmark: a flood of questions by SMTP into `consultant run` on the embedded
default, every one acknowledged, drafted, approved as soon as it is ready and answered.

Run: python bench/burst.py [--first 200] [--then 300] [--senders 50] [--codes PATH]
                           [--timeout 900]

Untimed setup: a config with nothing but a data directory in a temporary folder (the
embedded default: SQLite tickets, the queue in a file, replies to the Maildir outbox),
and the code database from `consultant codes import-dir ../shared/data`, or --codes to
reuse one (it is only read). `consultant run -c 2` starts as a user starts it.

Timed: FIRST questions over one SMTP connection from SENDERS senders, then THEN more,
while a consultant (this process, through the same approve action as the CLI and the
review app) approves each draft the moment it is ready. Reports how long until every
acknowledgement and every answer was delivered, how long the backlog took to drain
after the last question arrived, and checks what the hardening issue asks: each
acknowledgement delivered before its answer, each delivery attempted once, nothing
left in the queue file. tests/test_burst.py runs the same scenario and asserts it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/burst.py` puts bench/, not the root, first
    sys.path.insert(0, str(ROOT))

from consultant.config import Config, load_config  # noqa: E402
from consultant.delivery.compose import Composer  # noqa: E402
from consultant.delivery.outbox import reply_queuer  # noqa: E402
from consultant.tickets.actions import StaleTicket, approve  # noqa: E402
from consultant.tickets.models import Delivery, Ticket  # noqa: E402
from tests.mailmaker import question, smtp_client  # noqa: E402
from tests.servers.ports import free_ports  # noqa: E402

PHRASES = (
    "Is E11.65 billable for a type 2 diabetic with hyperglycemia?",
    "Can 29881 and 29877 be reported together on one claim?",
    "What is the code for a stage 3 pressure ulcer of the sacral region?",
    "Is J1100 still valid for dexamethasone injections?",
    "Which ICD-10-CM code fits acute kidney injury with CKD stage 3a?",
    "Dx code for a screening colonoscopy, average risk?",
    "Is Z79.84 right for long-term use of oral hypoglycemics?",
    "Can modifier 25 go on 99214 with a joint injection the same day?",
)


@dataclass
class Figures:
    questions: int
    sent_all_s: float = 0.0  # the last question answered 250
    acknowledged_all_s: float = 0.0  # from the first question to the last acknowledgement
    answered_all_s: float = 0.0  # from the first question to the last answer delivered
    drain_s: float = 0.0  # from the last question's 250 to the last answer delivered
    approved: int = 0
    problems: list[str] = field(default_factory=list)


def write_config(folder: Path, code_db: Path) -> Path:
    """The embedded default, but in FOLDER: SQLite, the queue file, the outbox."""
    path = folder / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{folder / "data"}"\n[codes]\ndatabase = "{code_db}"\n'
        "[queue]\nsweep_seconds = 5\n"
    )
    return path


@contextmanager
def consultant_run(config: Path, smtp_port: int, web_port: int) -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-m", "consultant", "--config", str(config), "run", "-c", "2"]
    with (config.parent / "run.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--smtp-port", str(smtp_port), "--web-port", str(web_port)],
            stdout=log,
            stderr=log,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _approver(config: Config, engine: Engine, stop: threading.Event, figures: Figures) -> None:
    """A consultant approving every draft as it becomes ready."""
    from workers.app import make_celery
    from workers.enqueue import wake

    app = make_celery(config)
    queue = reply_queuer(
        Composer.from_config(config), config.delivery.from_address, config.delivery.max_recipients
    )
    while not stop.is_set():
        with Session(engine) as session:
            ready = session.exec(select(Ticket.id).where(Ticket.status == "ready")).all()
        for ticket_id in ready:
            try:
                approve(engine, ticket_id, "dana@clinic.example", queue)
            except StaleTicket:
                continue
            figures.approved += 1
            wake(app)
        time.sleep(0.2)


def _deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))).all())


def burst(
    config_path: Path, engine: Engine, *, first: int, then: int, senders: int, timeout: float
) -> Figures:
    """Run the scenario against `consultant run` and measure it (see the module doc)."""
    config = load_config(config_path)
    figures = Figures(questions=first + then)
    smtp_port, web_port = free_ports(2)
    with consultant_run(config_path, smtp_port, web_port) as process:
        stop = threading.Event()
        approver = threading.Thread(target=_approver, args=(config, engine, stop, figures))
        client = smtp_client(smtp_port)
        start = time.monotonic()
        approver.start()
        try:
            for n in range(first + then):
                sender = f"coder{n % senders}@clinic{n % 7}.example"
                body = f"Question {n}: {PHRASES[n % len(PHRASES)]}"
                client.sendmail(
                    sender, [config.delivery.from_address], question(body, sender=sender)
                )
                if n + 1 == first:
                    time.sleep(1)  # the second wave arrives while the first is worked on
            client.quit()
            figures.sent_all_s = time.monotonic() - start
            deadline = start + timeout
            while True:
                assert process.poll() is None, "consultant run stopped; see run.log"
                deliveries = _deliveries(engine)
                acks = [d for d in deliveries if d.kind == "acknowledgement"]
                replies = [d for d in deliveries if d.kind == "reply"]
                acknowledged = len(acks) == figures.questions and all(
                    d.state == "sent" for d in acks
                )
                if acknowledged and not figures.acknowledged_all_s:
                    figures.acknowledged_all_s = time.monotonic() - start
                if len(replies) == figures.questions and all(
                    d.state in ("sent", "failed") for d in replies
                ):
                    figures.answered_all_s = time.monotonic() - start
                    break
                if time.monotonic() > deadline:
                    figures.problems.append(
                        f"not done in {timeout:g} s: {len(acks)} acknowledgements, "
                        f"{len(replies)} answers queued"
                    )
                    return figures
                time.sleep(0.25)
        finally:
            stop.set()
            approver.join()
        figures.drain_s = figures.answered_all_s - figures.sent_all_s
        _check(config, deliveries, figures)
    return figures


_DRAIN_GRACE = 10.0  # seconds the queue file gets to empty once every answer is out


def _check(config: Config, deliveries: list[Delivery], figures: Figures) -> None:
    """What the hardening issue asks of a burst, as problems found."""
    by_ticket: dict[int | None, dict[str, Delivery]] = {}
    for delivery in deliveries:
        by_ticket.setdefault(delivery.ticket_id, {})[delivery.kind] = delivery
        if delivery.state != "sent":
            figures.problems.append(f"delivery {delivery.id} is {delivery.state}")
        if delivery.attempts != 1:
            figures.problems.append(f"delivery {delivery.id} took {delivery.attempts} attempts")
    for ticket_id, kinds in by_ticket.items():
        ack, reply = kinds.get("acknowledgement"), kinds.get("reply")
        if ack is None or reply is None or ack.sent_at is None or reply.sent_at is None:
            figures.problems.append(f"ticket {ticket_id} lacks an acknowledgement or an answer")
        elif not ack.sent_at < reply.sent_at:
            figures.problems.append(f"ticket {ticket_id} was answered before it was acknowledged")
    queue_file = Path(config.queue.broker_url.removeprefix("sqlite:///"))
    # The sweep may have just asked for a look, and the wake-ups of the last answers may
    # still be on their way to an idle worker: the file must drain within a few seconds;
    # anything left after that is work kept in the file.
    deadline = time.monotonic() + _DRAIN_GRACE
    while True:
        with closing(sqlite3.connect(queue_file)) as queue:
            (left,) = queue.execute("SELECT count(*) FROM queued_messages").fetchone()
        if left <= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if left > 2:
        figures.problems.append(f"{left} messages left in {queue_file}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=200)
    parser.add_argument("--then", type=int, default=300)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--codes", type=Path, help="an existing code database (read only)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    from consultant.database.migrate import open_database

    with tempfile.TemporaryDirectory(prefix="cc-burst-") as folder_name:
        folder = Path(folder_name)
        code_db = args.codes or folder / "codes.sqlite"
        if args.codes is None:
            data = ROOT.parent / "shared" / "data"
            subprocess.run(
                [sys.executable, "-m", "consultant", "codes", "import-dir", str(data)],
                env={**os.environ, "CONSULTANT_HOME": str(folder)},
                check=True,
                stdout=subprocess.DEVNULL,
            )
        config_path = write_config(folder, code_db)
        engine = open_database(load_config(config_path).database_url)
        figures = burst(
            config_path,
            engine,
            first=args.first,
            then=args.then,
            senders=args.senders,
            timeout=args.timeout,
        )
    print(f"questions: {figures.questions} ({args.first} then {args.then}, {args.senders} senders)")
    print(f"all questions answered 250 by the SMTP ingress: {figures.sent_all_s:.1f} s")
    print(f"all acknowledgements delivered: {figures.acknowledged_all_s:.1f} s")
    print(f"all answers delivered: {figures.answered_all_s:.1f} s (approved {figures.approved})")
    print(f"backlog drained after the last question: {figures.drain_s:.1f} s")
    for problem in figures.problems[:20]:
        print(f"PROBLEM: {problem}")
    sys.exit(1 if figures.problems else 0)


if __name__ == "__main__":
    main()
