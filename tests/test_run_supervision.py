"""`consultant run` supervises its children: one that dies (SIGKILL, a crash, a clean
exit) is started again with exponential backoff, and while it is down the others keep
serving; SIGTERM still stops them all."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from consultant.cli.run import Backoff
from consultant.database.engine import make_engine
from consultant.tickets.models import Ticket
from tests.mailmaker import question
from tests.servers.ports import LOOPBACK, free_ports

OURS = "consult@caseconsultant.example"


def test_backoff_doubles_up_to_its_cap_and_resets_after_a_steady_run() -> None:
    backoff = Backoff(first=1, cap=8, steady=60)
    assert [backoff.after(uptime=0.5) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.after(uptime=61) == 1  # it had stayed up: a fresh start
    assert backoff.after(uptime=2) == 2


@dataclass
class Run:
    """A `consultant run` process and what it has logged so far."""

    process: subprocess.Popen
    smtp_port: int
    web_port: int
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, seconds: float = 60, after: int = 0) -> re.Match[str]:
        """The first log line from index AFTER on that matches PATTERN."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if found := re.search(pattern, line):
                    return found
            assert self.process.poll() is None, "run stopped:\n" + "\n".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines))

    def pid(self, child: str, after: int = 0) -> int:
        return int(self.wait_for(rf"child-started child={child} pid=(\d+)", after=after)[1])


@contextmanager
def consultant_run(
    tmp_path: Path, code_db: Path, ports: tuple[int, int] | None = None
) -> Iterator[Run]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n'
        f'[codes]\ndatabase = "{code_db}"\n'
        "[queue]\nsweep_seconds = 1\n[delivery]\nacknowledge = false\n"
    )
    smtp_port, web_port = ports or free_ports(2)
    command = [sys.executable, "-m", "consultant", "--config", str(config), "run"]
    process = subprocess.Popen(
        [*command, "--smtp-port", str(smtp_port), "--web-port", str(web_port), "-c", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = Run(process, smtp_port, web_port)
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: run.lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        yield run
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def smtp_answers(port: int) -> bool:
    try:
        with smtplib.SMTP(LOOPBACK, port, timeout=5) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/login", timeout=5) as page:
            return page.status == 200
    except OSError:
        return False


def until(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{check} never held"
        time.sleep(0.2)


@contextmanager
def probing(checks: dict[str, Callable[[], bool]]) -> Iterator[dict[str, int]]:
    """Ask each of CHECKS every 0.2 s while the block runs; count the failures."""
    failures = dict.fromkeys(checks, 0)
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            for name, check in checks.items():
                failures[name] += not check()
            time.sleep(0.2)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        done.set()
        thread.join(timeout=30)


def ticket_statuses(tmp_path: Path) -> list[str]:
    with Session(make_engine(f"sqlite:///{tmp_path / 't.sqlite'}")) as session:
        return list(session.exec(select(Ticket.status).order_by(Ticket.id)).all())


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    """Whether PID runs: a zombie (killed, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_killed_worker_or_smtpd_comes_back_while_the_rest_keep_serving(
    tmp_path: Path, code_db: Path
) -> None:
    with consultant_run(tmp_path, code_db) as run:
        worker, smtpd, web = run.pid("worker"), run.pid("smtpd"), run.pid("web")
        until(lambda: smtp_answers(run.smtp_port) and web_answers(run.web_port))

        until(lambda: len(children(worker)) == 2)  # its pool process and its beat
        left_behind = children(worker)
        seen = len(run.lines)
        with probing(
            {"smtp": lambda: smtp_answers(run.smtp_port), "web": lambda: web_answers(run.web_port)}
        ) as failures:
            os.kill(worker, signal.SIGKILL)
            exited = run.wait_for(r"child-exited child=worker .*", after=seen)[0]
            assert 'status="killed by SIGKILL"' in exited and "restart_in=1s" in exited
            new_worker = run.pid("worker", after=seen)
            # The new worker drafts a question that arrives after the restart.
            with smtplib.SMTP(LOOPBACK, run.smtp_port, timeout=10) as client:
                client.sendmail("coder@clinic.example", [OURS], question("Is E11.65 billable?"))
            until(lambda: ticket_statuses(tmp_path) == ["ready"])
        assert new_worker != worker and alive(new_worker)
        # What the killed worker had started went with it: no second beat, no stray pool.
        assert not any(alive(pid) for pid in left_behind)
        assert failures == {"smtp": 0, "web": 0}

        seen = len(run.lines)
        with probing({"web": lambda: web_answers(run.web_port)}) as failures:
            os.kill(smtpd, signal.SIGKILL)
            run.wait_for(r'child-exited child=smtpd status="killed by SIGKILL"', after=seen)
            new_smtpd = run.pid("smtpd", after=seen)
            until(lambda: smtp_answers(run.smtp_port))
            with smtplib.SMTP(LOOPBACK, run.smtp_port, timeout=10) as client:
                client.sendmail("coder@clinic.example", [OURS], question("Is E11.9 billable?"))
        assert new_smtpd != smtpd and failures == {"web": 0}
        assert len(ticket_statuses(tmp_path)) == 2

        started = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=60) == 0
        assert time.monotonic() - started < 30
        assert not any(alive(pid) for pid in (new_worker, new_smtpd, web))


def test_a_child_that_keeps_failing_is_retried_with_growing_delays(
    tmp_path: Path, code_db: Path
) -> None:
    """The review app cannot bind while another program holds its port: it is started
    again after 1, 2 and 4 s, the SMTP ingress serving all along, and once the port is
    free the review app answers."""
    smtp_port, web_port = free_ports(2)
    squatter = socket.create_server((LOOPBACK, web_port))
    with consultant_run(tmp_path, code_db, (smtp_port, web_port)) as run:
        try:
            until(lambda: smtp_answers(run.smtp_port))
            with probing({"smtp": lambda: smtp_answers(run.smtp_port)}) as failures:
                seen, delays = 0, []
                for _ in range(3):
                    found = run.wait_for(r"child-exited child=web .*restart_in=(\d+)s", after=seen)
                    delays.append(found[1])
                    seen = run.lines.index(found.string) + 1
            assert delays == ["1", "2", "4"]
            assert failures == {"smtp": 0}
        finally:
            squatter.close()
        until(lambda: web_answers(run.web_port))
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=60) == 0
