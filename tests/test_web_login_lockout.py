"""The login lockout against the real `consultant web` (uvicorn in its own process): a
client cannot pick its own address with X-Forwarded-For unless it is a configured
proxy, and parallel wrong passwords for one account are each counted before any is
checked, so no more than the limit are ever tried."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from consultant.accounts.sessions import FAILURES_PER_ADDRESS, FAILURES_PER_CLIENT
from consultant.accounts.users import add_user
from consultant.database.migrate import open_database
from tests.servers.ports import LOOPBACK, free_port
from tests.test_web import PASSWORD, csrf_of

DANA = "dana@caseconsultant.example"
LEE = "lee@caseconsultant.example"
PARALLEL = 30  # wrong passwords for one account at once


@contextmanager
def consultant_web(tmp_path: Path, web: str = "") -> Iterator[str]:
    """`consultant web` on a free loopback port with WEB as its [web] table (two
    consultants made first); yields its base URL and stops it with SIGTERM."""
    url = f"sqlite:///{tmp_path / 't.sqlite'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[database]\nurl = "{url}"\n[web]\n{web}\n'
    )
    engine = open_database(url)
    add_user(engine, DANA, PASSWORD)
    add_user(engine, LEE, PASSWORD)
    engine.dispose()
    port = free_port()
    command = [sys.executable, "-m", "consultant", "--config", str(config), "web"]
    with (tmp_path / "web.log").open("ab") as log:
        process = subprocess.Popen([*command, "--port", str(port)], stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "web.log").read_text()
                assert time.monotonic() < deadline, "consultant web did not start listening"
                time.sleep(0.1)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def login_form(url: str) -> tuple[httpx.Client, str]:
    """A browser at the login page: its client (with the form's cookie) and CSRF token."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    return client, csrf_of(client.get("/login").text)


def log_in(url: str, email: str, password: str, forwarded_for: str | None = None) -> int:
    client, csrf = login_form(url)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf},
        headers=headers,
    )
    return answer.status_code


def fail_as_client(url: str, count: int, forwarded_for: str | None = None) -> None:
    """COUNT wrong logins from one client, each for a different (unknown) address, so
    only the per-client limit is reached."""
    for number in range(count):
        email = f"nobody{number}@clinic.example"
        assert log_in(url, email, "a wrong guess", forwarded_for) == 401


def test_without_trusted_proxies_x_forwarded_for_is_ignored(tmp_path: Path) -> None:
    with consultant_web(tmp_path) as url:
        fail_as_client(url, FAILURES_PER_CLIENT)
        # The locked-out client claims to be someone else: it is still itself.
        assert log_in(url, DANA, PASSWORD, forwarded_for="10.1.2.3") == 429
        assert log_in(url, DANA, PASSWORD) == 429


def test_a_configured_proxy_forwards_its_clients_address(tmp_path: Path) -> None:
    with consultant_web(tmp_path, 'trusted_proxies = ["127.0.0.1"]') as url:
        fail_as_client(url, FAILURES_PER_CLIENT, forwarded_for="10.1.2.3")
        assert log_in(url, DANA, PASSWORD, forwarded_for="10.1.2.3") == 429
        # Another client behind the same proxy is not locked out, and a client cannot
        # hide behind an address it puts in front of the proxy's own entry.
        assert log_in(url, DANA, PASSWORD, forwarded_for="10.1.2.4") == 303
        assert log_in(url, LEE, PASSWORD, forwarded_for="10.9.9.9, 10.1.2.3") == 429


def test_parallel_wrong_passwords_are_counted_before_they_are_checked(tmp_path: Path) -> None:
    with consultant_web(tmp_path) as url:
        forms = [login_form(url) for _ in range(PARALLEL)]
        start = threading.Barrier(PARALLEL)

        def guess(form: tuple[httpx.Client, str]) -> int:
            client, csrf = form
            start.wait()
            answer = client.post(
                "/login", data={"email": DANA, "password": "a wrong guess", "csrf_token": csrf}
            )
            return answer.status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = Counter(pool.map(guess, forms))
        assert set(answers) <= {401, 429}, answers
        assert answers[401] <= FAILURES_PER_ADDRESS, answers  # no more guesses than the limit
        assert answers[401] >= 1, answers
        # Attempts refused at once are not kept, so a burst may leave the account some of
        # its allowance (how much depends on how the burst interleaved): one guess after
        # another uses up exactly the rest, and no more.
        checked = answers[401]
        while log_in(url, DANA, "another wrong guess") == 401:
            checked += 1
            assert checked <= FAILURES_PER_ADDRESS
        assert checked == FAILURES_PER_ADDRESS
        assert log_in(url, DANA, PASSWORD) == 429  # and the account is locked
        assert log_in(url, LEE, PASSWORD) == 303  # the client is not
