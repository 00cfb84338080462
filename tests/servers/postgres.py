"""Fresh PostgreSQL databases for tests: on the local server if one answers, else a private one.

`postgres_url()` yields the SQLAlchemy URL of a new, empty database and drops it afterwards.
The shared server is the one CI and developers run at 127.0.0.1:5432 (user postgres, trust
auth). Without it, or with `private=True`, a throwaway cluster is made from Debian's binaries
under /usr/lib/postgresql/<version>/bin on a free port, and removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from tests.servers.children import tied_to_this_process
from tests.servers.ports import LOOPBACK, free_port

SHARED_PORT = 5432
SUPERUSER = "postgres"
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
CONNECT_TIMEOUT = 3
START_TIMEOUT = 60
STOP_TIMEOUT = 10
START_ATTEMPTS = 3


class PostgresError(RuntimeError):
    """No PostgreSQL could be reached or started."""


@dataclass(frozen=True)
class PostgresServer:
    """A server on which the tests may create and drop databases as the superuser."""

    host: str
    port: int
    private: bool

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg, as the superuser."""
        return (
            f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname} "
            f"connect_timeout={CONNECT_TIMEOUT}"
        )

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL for `dbname` on this server, using psycopg 3."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database (its SQLAlchemy URL), dropped with any open sessions after."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.url(name)
        finally:
            with psycopg.connect(self.conninfo(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def shared_server() -> PostgresServer | None:
    """The server at 127.0.0.1:5432 if it lets the superuser in, else None."""
    server = PostgresServer(LOOPBACK, SHARED_PORT, private=False)
    try:
        psycopg.connect(server.conninfo()).close()
    except psycopg.OperationalError:
        return None
    return server


def debian_bin_dir() -> Path:
    """Newest /usr/lib/postgresql/<version>/bin (not /usr/local/bin, which may be anything)."""
    found = [
        path.parent
        for path in DEBIAN_BINARIES.glob("*/bin/postgres")
        if re.fullmatch(r"\d+", path.parent.parent.name)
    ]
    if not found:
        raise PostgresError(
            f"no {DEBIAN_BINARIES}/<version>/bin/postgres: apt-get install postgresql"
        )
    return max(found, key=lambda path: int(path.parent.name))


class _Owner(NamedTuple):
    uid: int
    gid: int


def _owner() -> _Owner | None:
    """PostgreSQL refuses to run as root; root hands the cluster to the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresError(
            "running as root needs the `postgres` system user: apt-get install postgresql"
        ) from None
    return _Owner(entry.pw_uid, entry.pw_gid)


def _as(owner: _Owner | None) -> dict[str, Any]:
    """subprocess arguments that drop to `owner` with no supplementary groups kept."""
    if owner is None:
        return {}
    return {"user": owner.uid, "group": owner.gid, "extra_groups": []}


@contextlib.contextmanager
def private_server() -> Iterator[PostgresServer]:
    """A throwaway cluster on a free loopback port, trust auth, no fsync; deleted afterwards.

    The postmaster is this process's own child (not daemonised by pg_ctl), so it is reaped
    here and cannot outlive the block.
    """
    bin_dir = debian_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="postgres-test-"))
    owner = _owner()
    if owner is not None:
        os.chown(root, owner.uid, owner.gid)
        for parent in root.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                shutil.rmtree(root)
                raise PostgresError(
                    f"{parent} is not searchable by the postgres user; point TMPDIR at a "
                    "world-searchable directory such as /tmp"
                )
    try:
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                f"--pgdata={root / 'data'}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            **_as(owner),
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        for attempt in range(1, START_ATTEMPTS + 1):
            with _postmaster(bin_dir, root, owner, last=attempt == START_ATTEMPTS) as server:
                if server is not None:
                    yield server
                    return
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _postmaster(
    bin_dir: Path, root: Path, owner: _Owner | None, last: bool
) -> Iterator[PostgresServer | None]:
    """Run the postmaster for the block; None if it lost its port to another process."""
    port = free_port()
    log = root / "server.log"
    options = {
        "listen_addresses": LOOPBACK,
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    command = [str(bin_dir / "postgres"), "-D", str(root / "data"), "-p", str(port)]
    command += ["-k", str(root)]
    for name, value in options.items():
        command += ["-c", f"{name}={value}"]
    with log.open("ab") as out:
        postmaster = subprocess.Popen(
            command,
            **_as(owner),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=tied_to_this_process(),  # its backends exit when it dies
        )
    try:
        server = PostgresServer(LOOPBACK, port, private=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if postmaster.poll() is not None:
                text = log.read_text(errors="replace")
                if last or "could not bind" not in text:
                    raise PostgresError(f"postgres exited at start:\n{text}")
                yield None
                return
            try:
                psycopg.connect(server.conninfo()).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"postgres did not answer on port {port} in {START_TIMEOUT}s:\n"
                        f"{log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        if postmaster.poll() is None:
            postmaster.send_signal(signal.SIGQUIT)  # immediate shutdown: the data is thrown away
            try:
                postmaster.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                postmaster.kill()
                postmaster.wait()


@contextlib.contextmanager
def postgres_server(private: bool = False) -> Iterator[PostgresServer]:
    """The shared server if it answers (and `private` is False), else a private cluster."""
    shared = None if private else shared_server()
    if shared is not None:
        yield shared
        return
    with private_server() as server:
        yield server


@contextlib.contextmanager
def postgres_url(private: bool = False) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://) of a fresh database, dropped afterwards."""
    with postgres_server(private) as server, server.database() as url:
        yield url
