"""SMTP ingress: an aiosmtpd server that stores each message before it says 250.

A 250 reply is our promise to keep the message, so it is given only after the intake
has committed; when the database is unavailable the sender gets 451 and its MTA
queues the message and retries. Recipients outside the configured list get 550 at
RCPT, before any data is sent; the size limit is announced (SIZE) and enforced.

Each message is stored on a thread of its own, off the event loop, so a slow intake
(a database waiting on a lock) never holds other sessions. Stopping does not wait on
it for long either: `stop` lets messages in progress finish for a few seconds, then
leaves the rest unanswered; their senders got no 250, so they send them again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from consultant.config import SmtpdConfig
from consultant.database.engine import DatabaseUnavailable
from consultant.logs import log_event
from consultant.tickets.intake import Intake, Outcome

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 3.0  # how long a stop waits for messages being stored


def recipient_accepted(address: str, recipients: tuple[str, ...]) -> bool:
    """Whether mail to ADDRESS is ours: RECIPIENTS holds addresses and "@domain"
    entries; empty accepts every recipient (for a server behind a relay that has
    already checked)."""
    if not recipients:
        return True
    address = address.lower()
    domain = "@" + address.rpartition("@")[2]
    return address in recipients or domain in recipients


class IngressHandler:
    def __init__(self, intake: Intake, recipients: tuple[str, ...]) -> None:
        self.intake = intake
        self.recipients = recipients
        self._storing = 0  # messages with the intake now
        self._changed = threading.Condition()

    def wait_idle(self, seconds: float) -> int:
        """Wait up to SECONDS for the messages being stored; how many still are."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while self._storing and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self._storing

    async def _store(self, raw: bytes) -> Outcome:
        """The intake's outcome for RAW, from a daemon thread: one the process need not
        wait for when it stops, unlike the loop's executor, whose threads it joins."""
        future: Future[Outcome] = Future()

        def store() -> None:
            if future.set_running_or_notify_cancel():  # not cancelled by a stop already
                try:
                    future.set_result(self.intake.accept(raw, "smtp"))
                except Exception as exc:
                    future.set_exception(exc)
            with self._changed:
                self._storing -= 1
                self._changed.notify_all()

        with self._changed:
            self._storing += 1
        threading.Thread(target=store, name="smtp-intake", daemon=True).start()
        return await asyncio.wrap_future(future)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not recipient_accepted(address, self.recipients):
            return "550 5.1.1 Recipient address rejected: not a mailbox of this service"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            outcome = await self._store(raw)
        except DatabaseUnavailable as exc:
            log_event(log, "smtp-tempfail", logging.WARNING, reason=str(exc)[:300])
            return "451 4.3.0 Cannot store the message now; please try again later"
        except Exception:
            log.exception("smtp-intake-failed size=%d", len(raw))
            return "451 4.3.0 Internal error storing the message; please try again later"
        # Never a ticket reference: the client may be anyone, and a reference is what
        # lets a message join a customer's thread.
        return f"250 2.0.0 Stored: {outcome.status}"


class _TolerantSMTP(SMTP):
    """RFC 5321 caps lines at 1,000 octets, but real mail breaks it (long HTML lines, huge
    headers); refusing such mail with 500 would lose it, so lines up to 1 MiB pass."""

    line_length_limit = 1024 * 1024


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _TolerantSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        """Stop listening, give the messages being stored STOP_GRACE_SECONDS to be
        answered, then close every session."""
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        unanswered = self.handler.wait_idle(STOP_GRACE_SECONDS)
        super().stop(no_assert)
        log_event(log, "smtpd-stopped", unanswered=unanswered)


def make_controller(intake: Intake, config: SmtpdConfig, max_bytes: int) -> Controller:
    """A server thread for CONFIG; call start() and stop()."""
    return _Controller(
        IngressHandler(intake, config.recipients),
        hostname=config.host,
        port=config.port,
        data_size_limit=max_bytes,
        decode_data=False,
        ready_timeout=10,
    )
