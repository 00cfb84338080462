"""Patient data stays with the service's user: the data directory is 0700 and every file
the service makes in it 0600 (the ticket database and its WAL, the queue, the outbox,
the web secret), whatever the umask it was started with; a config file holding a
password that others can read is warned about once."""

from __future__ import annotations

import os
import signal
import smtplib
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.mailmaker import question
from tests.servers.ports import LOOPBACK, free_ports

OURS = "consult@caseconsultant.example"
SECRET = "made-up-review-app-secret-0123456789-abcdefgh"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(root: Path) -> dict[str, int]:
    """The mode of ROOT and of everything under it, by path relative to ROOT."""
    found = {".": mode(root)}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = mode(path)
    return found


def open_umask() -> None:
    """How a careless shell or service manager starts us: new files 0644, dirs 0755."""
    os.umask(0o022)


def consultant(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=open_umask,
    )


def test_everything_consultant_run_writes_is_for_its_owner_only(
    tmp_path: Path, code_db: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{data}"\n[codes]\ndatabase = "{code_db}"\n'
        "[queue]\nsweep_seconds = 1\n"
        f'[web]\nsecret_key = "{SECRET}"\n'
    )
    config.chmod(0o644)  # readable by others, and it holds the review app's secret
    smtp_port, web_port = free_ports(2)
    command = [sys.executable, "-m", "consultant", "--config", str(config), "run"]
    process = subprocess.Popen(
        [*command, "--smtp-port", str(smtp_port), "--web-port", str(web_port), "-c", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=open_umask,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with smtplib.SMTP(LOOPBACK, smtp_port, timeout=10) as client:
                    client.sendmail("coder@clinic.example", [OURS], question())
                break
            except OSError:
                assert time.monotonic() < deadline, "the SMTP ingress does not answer"
                time.sleep(0.2)
        outbox = data / "outbox" / "new"
        while not (outbox.is_dir() and any(outbox.iterdir())):  # the acknowledgement
            assert time.monotonic() < deadline + 60, "nothing reached the outbox"
            time.sleep(0.2)
        found = modes(data)  # while it runs: SQLite removes its -wal and -shm at the end
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    expected = {"consultant.sqlite", "consultant.sqlite-wal", "consultant.sqlite-shm"}
    assert expected | {"queue.sqlite", "outbox", "outbox/new"} <= found.keys()
    assert any(name.startswith("outbox/new/") for name in found)
    loose = {
        name: f"{permissions:o}"
        for name, permissions in found.items()
        if permissions != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert loose == {}
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        f"Warning: {config} holds a password or secret key and other users can read it;"
        f" run `chmod 600 {config}`"
    ]


def test_a_data_directory_an_older_release_left_open_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "consultant.sqlite").write_bytes(b"")
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{data}"\n')
    done = consultant(config, "db", "status")
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700  # which also closes the file made 0644 back then


def test_a_readable_config_is_warned_about_only_when_it_holds_a_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    base = f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
    warning = f"run `chmod 600 {config}`"
    secrets = (
        '[smtp]\nhost = "relay.example"\nusername = "cc"\npassword = "made-up"\n',
        '[[mailboxes]]\nname = "consult"\nhost = "imap.example"\nusername = "cc"\n'
        'password = "made-up"\n',
        f'[database]\nurl = "postgresql+psycopg://cc:made-up@{LOOPBACK}:1/cc"\n',
        f'[web]\nsecret_key = "{SECRET}"\n',
    )
    for secret in secrets:
        config.write_text(base + secret)
        config.chmod(0o640)
        assert warning in consultant(config, "db", "status").stderr, secret
        config.chmod(0o600)
        assert warning not in consultant(config, "db", "status").stderr, secret
    config.write_text(base)
    config.chmod(0o644)
    assert warning not in consultant(config, "db", "status").stderr  # nothing secret


def test_celery_started_directly_makes_its_files_private_too(tmp_path: Path) -> None:
    """`celery -A workers worker` (the production entry point) has no `consultant`
    command around it: workers.main sets the umask itself."""
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{data}"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-c", "1", "-l", "WARNING"],
        env={**os.environ, "CONSULTANT_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=open_umask,
    )
    try:
        queue = data / "queue.sqlite"
        deadline = time.monotonic() + 60
        while not queue.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        assert (mode(data), mode(queue)) == (0o700, 0o600)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
