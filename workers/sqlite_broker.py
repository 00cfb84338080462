"""The embedded queue: a kombu transport on one SQLite file, for `sqlite:///PATH` broker
URLs. It needs no server and keeps its messages on disk.

Why not kombu's SQLAlchemy transport: it marks a consumed message invisible and never
removes it (the file grows with every task ever run), forgets a message whose worker
died (it stays invisible), and shares one ORM session between the consumer and the
acknowledgements, which a killed pool child once broke for good ("This session is in
'prepared' state"), stopping the worker.

Here a consumed message is reserved, not removed: an acknowledgement deletes it, a
rejection with requeue (a pool child lost mid-task) makes it visible again at its place
in the queue, and a message whose consumer died without either becomes visible again
after the visibility timeout, as with Redis. Every statement runs on the channel's own
connection under a lock, in autocommit mode, so nothing is shared with another thread's
half-finished transaction.

The ticket database is the record of what work exists; this queue only carries the
requests to look at it, which the workers' sweep makes again if they are lost.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import unquote, urlsplit

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.utils.json import dumps, loads

SCHEME = "sqlite"
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queued_messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    delivery_tag TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    visible_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queued_messages_ready ON queued_messages (queue, visible_at, id);
"""


def database_path(url: str) -> Path:
    """The file a `sqlite:///PATH` broker URL names (four slashes for an absolute path,
    as in SQLAlchemy's URLs)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or parts.netloc or not parts.path.startswith("/"):
        raise ValueError(f"not a {SCHEME}:///PATH broker URL: {url!r}")
    path = unquote(parts.path[1:])
    if not path:
        raise ValueError(f"the broker URL {url!r} names no file")
    return Path(path).expanduser()


class QoS(virtual.QoS):
    """Acknowledgements and rejections act on the stored message."""

    def ack(self, delivery_tag: str) -> None:
        self.channel.forget(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            self.channel.release([delivery_tag])
        else:
            self.channel.forget(delivery_tag)
        self._quick_ack(delivery_tag)

    def restore_unacked(self) -> list:
        """Make every unacknowledged message visible again where it was in its queue
        (kombu's default would publish copies of them)."""
        self._flush()
        tags = list(self._delivered)
        self._delivered.clear()
        self.channel.release(tags)
        return []


class Channel(virtual.Channel):
    QoS = QoS
    # kombu base64-encodes bodies by default; JSON text needs no second encoding.
    body_encoding = None  # type: ignore[assignment]

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        client = self.connection.client
        options = client.transport_options
        self.visibility_timeout = float(
            options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT)
        )
        self._path = database_path(client.hostname)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._pid = 0
        self._db: sqlite3.Connection | None = None
        self._inherited: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        with self._locked():
            pass  # open the file and its table now, so a bad path fails here

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The channel's connection, for one statement or transaction at a time.

        A pool child forked from the worker inherits this channel; SQLite's locks and a
        held threading lock do not survive a fork, so the child opens its own, and keeps
        the inherited connection unused but referenced (closing it in the child could
        disturb the parent's)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._inherited, self._db = self._db, self._open()
        with self._lock:
            if self._db is None:
                raise sqlite3.OperationalError(f"the queue {self._path} is closed")
            yield self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        # WAL: producers and consumers do not block each other. NORMAL: a message
        # survives a crash of any process; after a power loss the last ones may be
        # gone, and the sweep asks for that work again.
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:
        tag = message["properties"]["delivery_tag"]
        with self._locked() as db:
            db.execute(
                "INSERT INTO queued_messages (queue, delivery_tag, payload, visible_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (delivery_tag) DO UPDATE SET visible_at = excluded.visible_at",
                (queue, tag, dumps(message), time.time()),
            )

    def _get(self, queue: str, timeout: float | None = None) -> dict:
        now = time.time()
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT id, payload FROM queued_messages"
                    " WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT 1",
                    (queue, now),
                ).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE queued_messages SET visible_at = ? WHERE id = ?",
                        (now + self.visibility_timeout, row[0]),
                    )
            finally:
                db.execute("COMMIT")
        if row is None:
            raise Empty()
        return loads(row[1])  # type: ignore[no-any-return]

    def forget(self, delivery_tag: str) -> None:
        with self._locked() as db:
            db.execute("DELETE FROM queued_messages WHERE delivery_tag = ?", (delivery_tag,))

    def release(self, delivery_tags: list[str]) -> None:
        if not delivery_tags:
            return
        with self._locked() as db:
            db.executemany(
                "UPDATE queued_messages SET visible_at = 0 WHERE delivery_tag = ?",
                [(tag,) for tag in delivery_tags],
            )

    def _size(self, queue: str) -> int:
        with self._locked() as db:
            (count,) = db.execute(
                "SELECT count(*) FROM queued_messages WHERE queue = ? AND visible_at <= ?",
                (queue, time.time()),
            ).fetchone()
        return int(count)

    def _purge(self, queue: str) -> int:
        with self._locked() as db:
            cursor = db.execute(
                "DELETE FROM queued_messages WHERE queue = ? AND visible_at <= ?",
                (queue, time.time()),
            )
        return cursor.rowcount

    def close(self) -> None:
        super().close()  # returns unacknowledged messages first
        if self._pid == os.getpid() and self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None


class Transport(virtual.Transport):
    """Polled from the worker's event loop, as Redis's sockets are watched: Celery then
    gives each pool child its own pipe. Without an event loop, the children share one
    queue guarded by a semaphore, and a child killed while it held it (waiting for its
    next task) leaves every later child waiting for ever."""

    Channel = Channel
    can_parse_url = True  # the whole URL reaches the channel as the hostname
    default_port = 0
    driver_type = "sqlite"
    driver_name = "sqlite3"
    polling_interval = 0.1  # an empty poll is one indexed SELECT
    connection_errors = (sqlite3.OperationalError,)
    channel_errors = (sqlite3.OperationalError,)
    implements = virtual.Transport.implements.extend(asynchronous=True)

    def driver_version(self) -> str:
        return sqlite3.sqlite_version

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        def deliver_ready() -> None:
            """Hand over the messages that are ready, as far as prefetching allows."""
            try:
                while True:
                    self.drain_events(connection, timeout=0)
            except (TimeoutError, Empty):
                pass

        loop.call_repeatedly(self.polling_interval, deliver_ready)


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
