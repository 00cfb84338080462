"""The whole service end to end, on real parts and on the embedded default: a question
arrives, is acknowledged and drafted, a consultant approves it, the reply goes out with
threading headers and the customer's answer joins the same ticket and is drafted again.
Then the faults: a worker killed mid-delivery (before and after the hand-over), Redis
restarted with sends waiting, and a server answering 4xx then 5xx: nothing lost, nothing
sent twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from mailbox import Maildir
from pathlib import Path

from sqlmodel import Session, select

from consultant.database.engine import make_engine
from consultant.tickets.models import Delivery, Draft, Ticket
from tests.mailmaker import question, smtp_client
from tests.servers.dovecot import Dovecot
from tests.servers.ports import LOOPBACK, free_ports
from tests.servers.redis import RedisServer
from tests.servers.smtp import mail_server
from tests.test_workers import consultant, kill_worker, wait_for_status, worker, write_config

OURS = "consult@caseconsultant.example"


def answer_to(reply_headers: dict[str, str], body: str, message_id: str) -> bytes:
    """The customer's answer to our reply, threaded as a mail client threads it."""
    return question(
        body,
        subject=reply_headers["Subject"],
        in_reply_to=reply_headers["Message-ID"],
        references=f"{reply_headers['References']} {reply_headers['Message-ID']}",
        message_id=message_id,
    )


def drafter_drafts(tmp_path: Path, ticket_id: int = 1) -> list[Draft]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")
    with Session(engine) as session:
        return list(
            session.exec(
                select(Draft).where(Draft.ticket_id == ticket_id, Draft.author == "drafting")
            )
        )


def tickets(tmp_path: Path) -> list[Ticket]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")
    with Session(engine) as session:
        return list(session.exec(select(Ticket)))


def wait_for_drafts(tmp_path: Path, count: int, seconds: float = 90) -> list[Draft]:
    deadline = time.monotonic() + seconds
    while len(found := drafter_drafts(tmp_path)) < count:
        assert time.monotonic() < deadline, f"{len(found)} drafts, not {count}"
        time.sleep(0.2)
    return found


def approve(config: Path, reference: str) -> str:
    result = consultant(config, "tickets", "approve", reference, "--as", "dana")
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_imap_in_smtp_out_and_the_customers_answer_threads_back(
    redis: RedisServer, dovecot: Dovecot, mail_user: str, code_db: Path, tmp_path: Path
) -> None:
    with mail_server() as customer:
        config = write_config(
            tmp_path,
            code_db,
            redis.url,
            more=f"""
[[mailboxes]]
name = "consult"
host = "{LOOPBACK}"
port = {dovecot.port("none")}
tls = "none"
username = "{mail_user}"
password = "{dovecot.password(mail_user)}"

[smtp]
host = "{LOOPBACK}"
port = {customer.port}
tls = "none"

[delivery]
from_address = "{OURS}"
sent_mailbox = "consult"
""",
        )
        dovecot.append(
            mail_user, "INBOX", [question("Is E11.65 billable?", message_id="<q1@clinic.example>")]
        )
        assert consultant(config, "poll", "--once").returncode == 0
        with worker(config):
            wait_for_status(tmp_path, "ready")
            ack = customer.wait_for(1)[0].message
            assert ack["Auto-Submitted"] == "auto-replied"
            assert "CC-000001" in ack["Subject"] and ack["In-Reply-To"] == "<q1@clinic.example>"
            assert "queued for sending" in approve(config, "CC-1")
            wait_for_status(tmp_path, "sent")
            reply = customer.wait_for(2)[1]
            assert reply.recipients == ["coder@clinic.example"]
            headers = dict(reply.message.items())
            assert headers["From"] == f"CaseConsultant <{OURS}>"
            assert headers["Subject"] == "Re: Coding question [CC-000001]"
            assert headers["In-Reply-To"] == "<q1@clinic.example>"
            assert "Auto-Submitted" not in headers
            assert "E11.65" in reply.message.get_body(("plain",)).get_content()
            deadline = time.monotonic() + 30
            while len(dovecot.folder_uids(mail_user, "Sent")) < 2:
                assert time.monotonic() < deadline, "no copies in the Sent folder"
                time.sleep(0.2)

            follow_up = answer_to(headers, "And E10.65 for type 1?", "<q2@clinic.example>")
            dovecot.append(mail_user, "INBOX", [follow_up])
            assert consultant(config, "poll", "--once").returncode == 0
            first, second = wait_for_drafts(tmp_path, 2)
            wait_for_status(tmp_path, "ready")
        assert "E10.65" in second.body and second.basis_message_id != first.basis_message_id
        assert len(tickets(tmp_path)) == 1
    assert len(customer.received) == 2  # a follow-up gets no second acknowledgement


def test_the_embedded_default_answers_into_its_maildir_outbox(
    code_db: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, code_db, None)
    port, web_port = free_ports(2)  # distinct: both are bound only later, by `run`
    command = [sys.executable, "-m", "consultant", "--config", str(config), "run"]
    process = subprocess.Popen(
        [*command, "--smtp-port", str(port), "--web-port", str(web_port), "-c", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    outbox = tmp_path / "data" / "outbox"

    def outbox_messages(count: int) -> list:
        deadline = time.monotonic() + 60
        while True:
            found = list(Maildir(outbox, create=False)) if outbox.exists() else []
            if len(found) >= count:
                return sorted(found, key=lambda m: m["Date"] + m["Subject"])
            assert time.monotonic() < deadline, f"{len(found)} messages in the outbox"
            time.sleep(0.2)

    try:
        with smtp_client(port) as client:
            client.sendmail(
                "coder@clinic.example",
                [OURS],
                question("Is E11.65 billable?", message_id="<q1@clinic.example>"),
            )
        wait_for_status(tmp_path, "ready")
        (ack,) = outbox_messages(1)
        assert ack["Auto-Submitted"] == "auto-replied"
        assert "queued for sending" in approve(config, "CC-000001")
        wait_for_status(tmp_path, "sent")
        reply = next(m for m in outbox_messages(2) if m["Auto-Submitted"] is None)
        assert reply["In-Reply-To"] == "<q1@clinic.example>"
        follow_up = answer_to(dict(reply.items()), "And E10.65?", "<q2@clinic.example>")
        with smtp_client(port) as client:
            client.sendmail("coder@clinic.example", [reply["From"]], follow_up)
        wait_for_drafts(tmp_path, 2)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"Replies: written to the Maildir outbox {outbox}" in output
    assert len(tickets(tmp_path)) == 1


def deliveries(tmp_path: Path) -> list[Delivery]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)))


def smtp_config(port: int) -> str:
    return (
        f'[smtp]\nhost = "{LOOPBACK}"\nport = {port}\ntls = "none"\n'
        "[delivery]\nacknowledge = false\nretry_seconds = 0.5\nmax_attempts = 3\n"
    )


def test_a_worker_killed_mid_delivery_never_sends_twice(
    redis: RedisServer, code_db: Path, tmp_path: Path
) -> None:
    """Killed before the hand-over (held at RCPT): the next worker sends it. Killed
    after (held at DATA's answer): it may have arrived, so it is failed for a person,
    and the server has it once."""
    with mail_server() as customer:
        # A short time limit makes a dead worker's claim stale after 4 s.
        config = write_config(
            tmp_path, code_db, redis.url, "task_time_limit = 2\n", smtp_config(customer.port)
        )
        for n in (1, 2):
            raw = question(f"Question {n}: is E11.65 billable?", sender=f"c{n}@clinic.example")
            assert consultant(config, "ingest", stdin=raw).returncode == 0
        with worker(config) as first:
            wait_for_status(tmp_path, "ready", ticket_id=1)
            wait_for_status(tmp_path, "ready", ticket_id=2)
            customer.hold_rcpt = 60
            approve(config, "CC-1")
            assert customer.reached_rcpt.wait(30)
            kill_worker(first)
        customer.hold_rcpt = 0
        with worker(config) as second:
            wait_for_status(tmp_path, "sent", ticket_id=1)
            customer.hold_data = 60
            approve(config, "CC-2")
            assert customer.reached_data.wait(30)
            kill_worker(second)
        customer.hold_data = 0
        with worker(config):
            failed = wait_for_status(tmp_path, "failed", ticket_id=2, seconds=60)
            time.sleep(2)  # a few more sweeps: nothing is sent again
        assert "may or may not have arrived" in (failed.error or "")
        assert [d.state for d in deliveries(tmp_path)] == ["sent", "failed"]
        assert sorted(r.recipients[0] for r in customer.received) == [
            "c1@clinic.example",
            "c2@clinic.example",
        ]


def test_redis_restarted_and_a_server_refusing_lose_nothing_and_send_nothing_twice(
    redis: RedisServer, code_db: Path, tmp_path: Path
) -> None:
    with mail_server() as customer:
        config = write_config(tmp_path, code_db, redis.url, more=smtp_config(customer.port))
        for n in (1, 2, 3):
            raw = question(f"Question {n}: is J1100 valid?", sender=f"c{n}@clinic.example")
            assert consultant(config, "ingest", stdin=raw).returncode == 0
        with worker(config):
            for n in (1, 2, 3):
                wait_for_status(tmp_path, "ready", ticket_id=n)
            redis.stop()  # the queue loses everything it held
            for reference in ("CC-1", "CC-2"):
                assert "the queue is unreachable" in approve(config, reference)
            redis.start()
            for n in (1, 2):
                wait_for_status(tmp_path, "sent", ticket_id=n)
            customer.script.extend(["451 4.7.1 Try again later", "554 5.7.1 Rejected by policy"])
            approve(config, "CC-3")
            failed = wait_for_status(tmp_path, "failed", ticket_id=3)
        assert "554 5.7.1 Rejected by policy" in (failed.error or "")
        assert customer.attempts == 4  # two sent, then 451 and 554
        assert sorted(r.recipients[0] for r in customer.received) == [
            "c1@clinic.example",
            "c2@clinic.example",
        ]
        shown = consultant(config, "tickets", "show", "CC-3").stdout.decode()
        assert "Delivery: reply failed, 2 attempt(s)" in shown
