"""The IMAP poller: a mailbox's new messages into tickets, exactly once.

Per batch: FETCH many UIDs at once (BODY.PEEK[], so nothing is marked read), store
them all in one transaction together with the mailbox's new high-water UID, and only
after the commit MOVE them to the processed folder (or flag them). A crash before the
commit leaves the messages unread on the server; a crash after it leaves them in the
folder with UIDs at or below the stored last UID, and the next pass moves them without
storing them again. A UIDVALIDITY change means the server renumbered the folder:
everything is read again and the Message-ID key turns repeats into duplicates.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from consultant.config import MailboxConfig
from consultant.database.engine import DatabaseUnavailable
from consultant.logs import log_event
from consultant.mail.imap_connection import connect
from consultant.tickets.intake import Intake
from consultant.tickets.mailbox_state import (
    LeaseLost,
    Progress,
    acquire_lease,
    load_progress,
    record_progress,
    release_lease,
)

log = logging.getLogger(__name__)

# Bytes fetched per FETCH command at most, so a folder of attachments never has to fit
# in memory at once.
FETCH_BYTES = 32 * 1024 * 1024
IDLE_RESTART_S = 300  # RFC 2177: re-issue IDLE well within the server's 30 minutes
CONNECTION_ERRORS = (IMAPClientError, OSError, ssl.SSLError, socket.timeout, EOFError)


class MailboxBusy(Exception):
    """Another poller holds this mailbox's lease."""


def poller_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


class Backoff:
    """Delays that double from FIRST to at most LAST seconds, with jitter, until reset."""

    def __init__(self, first: float = 1.0, last: float = 60.0) -> None:
        self.first, self.last, self.current = first, last, first

    def next(self) -> float:
        delay = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.current * 2, self.last)
        return delay

    def reset(self) -> None:
        self.current = self.first


class MailboxPoller:
    """Polls one configured mailbox into INTAKE until STOP is set."""

    def __init__(
        self,
        config: MailboxConfig,
        intake: Intake,
        *,
        stop: threading.Event | None = None,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.intake = intake
        self.stop = stop or threading.Event()
        self.owner = owner or poller_id()
        self.source = f"imap:{config.name}"
        self.engine = intake.engine

    # --- the loop --------------------------------------------------------------------

    def run_once(self) -> int:
        """Read everything waiting now and return how many messages were stored.

        Errors propagate: MailboxBusy, DatabaseUnavailable, connection errors."""
        self._take_lease()
        try:
            with connect(self.config) as client:
                return self._drain(client)
        finally:
            with suppress(DatabaseUnavailable):
                release_lease(self.engine, self.config.name, self.owner)

    def run_forever(self) -> None:
        """Poll until STOP, waiting with IDLE where the server offers it; every failure
        (server, network, database, another poller holding the mailbox) is waited out
        with backoff and retried."""
        backoff = Backoff()
        try:
            while not self.stop.is_set():
                try:
                    self._take_lease()
                    with connect(self.config) as client:
                        backoff.reset()
                        self._serve(client)
                except MailboxBusy as exc:
                    self._pause("busy", self.config.lease_seconds / 2, reason=str(exc))
                except DatabaseUnavailable as exc:
                    self._pause("database-unavailable", backoff.next(), reason=str(exc))
                except LeaseLost as exc:
                    self._pause("lease-lost", backoff.next(), reason=str(exc))
                except CONNECTION_ERRORS as exc:
                    self._pause("connection-error", backoff.next(), reason=repr(exc)[:300])
        finally:
            with suppress(DatabaseUnavailable):
                release_lease(self.engine, self.config.name, self.owner)

    def _pause(self, event: str, seconds: float, *, reason: str) -> None:
        log_event(
            log,
            event,
            logging.WARNING,
            mailbox=self.config.name,
            retry_in=f"{seconds:.1f}s",
            reason=reason,
        )
        self.stop.wait(seconds)

    def _take_lease(self) -> None:
        if not acquire_lease(self.engine, self.config.name, self.owner, self.config.lease_seconds):
            raise MailboxBusy(
                f"mailbox {self.config.name!r} is being polled by another poller; "
                f"its lease lasts up to {self.config.lease_seconds:g} s after it stops"
            )

    def _serve(self, client: IMAPClient) -> None:
        idle = self.config.idle and b"IDLE" in client.capabilities()
        while not self.stop.is_set():
            self._drain(client)
            if idle:
                self._idle(client)
            else:
                self._sleep(client)
            self._take_lease()

    def _idle(self, client: IMAPClient) -> None:
        """Wait for the server to announce new mail, renewing the lease meanwhile."""
        client.idle()
        try:
            started = time.monotonic()
            check = min(5.0, self.config.lease_seconds / 3)
            while not self.stop.is_set() and time.monotonic() - started < IDLE_RESTART_S:
                responses = client.idle_check(timeout=check)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return
                self._take_lease()
        finally:
            client.idle_done()

    def _sleep(self, client: IMAPClient) -> None:
        deadline = time.monotonic() + self.config.poll_interval
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self.stop.wait(min(left, self.config.lease_seconds / 3))
            self._take_lease()
        client.noop()

    # --- one pass over the folder ----------------------------------------------------

    def _drain(self, client: IMAPClient) -> int:
        folder = client.select_folder(self.config.folder, readonly=False)
        uidvalidity = int(folder[b"UIDVALIDITY"])
        progress = load_progress(self.engine, self.config.name)
        last_uid = progress.last_uid
        if progress.uidvalidity != uidvalidity:
            if progress.uidvalidity is not None:
                log_event(
                    log,
                    "uidvalidity-changed",
                    logging.WARNING,
                    mailbox=self.config.name,
                    old=progress.uidvalidity,
                    new=uidvalidity,
                )
            last_uid = 0
        if last_uid:
            self._finish_leftovers(client, last_uid)
        criteria: list = ["UID", f"{last_uid + 1}:*"]
        if not self.config.processed_folder:
            criteria += ["UNKEYWORD", self.config.processed_flag]
        # "n:*" always matches the highest UID, even one below n.
        uids = sorted(uid for uid in client.search(criteria) if uid > last_uid)
        stored = 0
        for batch, sizes in self._batches(client, uids):
            if self.stop.is_set():
                break
            self._take_lease()  # a long backlog must not outlast the lease
            stored += self._store_batch(client, batch, sizes, uidvalidity)
        return stored

    def _finish_leftovers(self, client: IMAPClient, last_uid: int) -> None:
        """Messages already committed whose move or flag a crash interrupted."""
        criteria: list = ["UID", f"1:{last_uid}"]
        if not self.config.processed_folder:
            criteria += ["UNKEYWORD", self.config.processed_flag]
        leftovers = [uid for uid in client.search(criteria) if uid <= last_uid]
        if leftovers:
            self._mark_processed(client, leftovers)
            log_event(log, "leftovers-moved", mailbox=self.config.name, count=len(leftovers))

    def _batches(
        self, client: IMAPClient, uids: Sequence[int]
    ) -> Iterator[tuple[list[int], dict[int, int]]]:
        """UIDS in batches of at most batch_size messages and FETCH_BYTES bytes."""
        step = self.config.batch_size
        for start in range(0, len(uids), step * 4):
            chunk = list(uids[start : start + step * 4])
            sizes = {
                uid: int(data.get(b"RFC822.SIZE", 0))
                for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items()
            }
            batch: list[int] = []
            total = 0
            for uid in chunk:
                if uid not in sizes:  # expunged meanwhile
                    continue
                if batch and (len(batch) >= step or total + sizes[uid] > FETCH_BYTES):
                    yield batch, sizes
                    batch, total = [], 0
                batch.append(uid)
                total += sizes[uid]
            if batch:
                yield batch, sizes

    def _store_batch(
        self, client: IMAPClient, batch: list[int], sizes: dict[int, int], uidvalidity: int
    ) -> int:
        limit = self.intake.config.max_message_bytes
        wanted = [uid for uid in batch if sizes[uid] <= limit]
        fetched = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        oversized = [uid for uid in batch if sizes[uid] > limit]
        headers = client.fetch(oversized, ["BODY.PEEK[HEADER]"]) if oversized else {}
        present = [uid for uid in batch if uid in fetched or uid in headers]
        if not present:
            return 0
        progress = Progress(uidvalidity, max(present))

        def record(session) -> None:  # type: ignore[no-untyped-def]
            for uid in oversized:
                if uid in headers:
                    self.intake.reject_oversized(
                        session, headers[uid][b"BODY[HEADER]"], sizes[uid], self.source
                    )
            record_progress(session, self.config.name, self.owner, progress)

        raws = [fetched[uid][b"BODY[]"] for uid in batch if uid in fetched]
        outcomes = self.intake.accept_batch(raws, self.source, also=record)
        self._mark_processed(client, present)
        log_event(
            log,
            "batch",
            mailbox=self.config.name,
            messages=len(present),
            last_uid=progress.last_uid,
            created=sum(o.status == "created" for o in outcomes),
        )
        return len(present)

    def _mark_processed(self, client: IMAPClient, uids: list[int]) -> None:
        target = self.config.processed_folder
        if not target:
            client.add_flags(uids, [self.config.processed_flag.encode()], silent=True)
            return
        if not client.folder_exists(target):
            with suppress(IMAPClientError):  # another poller may have just created it
                client.create_folder(target)
        if b"MOVE" in client.capabilities():
            client.move(uids, target)
        else:
            client.copy(uids, target)
            client.delete_messages(uids, silent=True)
            if b"UIDPLUS" in client.capabilities():
                client.uid_expunge(uids)
            else:
                client.expunge()
