"""SMTP ingress: an aiosmtpd server that stores each message before it says 250.

A 250 reply is our promise to keep the message, so it is given only after the intake
has committed; when the database is unavailable the sender gets 451 and its MTA
queues the message and retries. Recipients outside the configured list get 550 at
RCPT, before any data is sent; the size limit is announced (SIZE) and enforced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from consultant.config import SmtpdConfig
from consultant.database.engine import DatabaseUnavailable
from consultant.logs import log_event
from consultant.tickets.intake import Intake

log = logging.getLogger(__name__)


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
            outcome = await asyncio.get_running_loop().run_in_executor(
                None, self.intake.accept, raw, "smtp"
            )
        except DatabaseUnavailable as exc:
            log_event(log, "smtp-tempfail", logging.WARNING, reason=str(exc)[:300])
            return "451 4.3.0 Cannot store the message now; please try again later"
        except Exception:
            log.exception("smtp-intake-failed size=%d", len(raw))
            return "451 4.3.0 Internal error storing the message; please try again later"
        return f"250 2.0.0 Stored: {outcome.status} {outcome.ticket or ''}".rstrip()


class _TolerantSMTP(SMTP):
    """RFC 5321 caps lines at 1,000 octets, but real mail breaks it (long HTML lines, huge
    headers); refusing such mail with 500 would lose it, so lines up to 1 MiB pass."""

    line_length_limit = 1024 * 1024


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _TolerantSMTP(self.handler, **self.SMTP_kwargs)


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
