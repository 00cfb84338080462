"""An aiosmtpd server on a free loopback port standing in for a mail server we send to
(the customer's, or a relay): it keeps what it accepts, answers DATA from a script
(4xx, 5xx), can hold its answer (to kill a worker mid-delivery), and speaks STARTTLS
or implicit TLS with AUTH when asked."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.ports import LOOPBACK, free_port


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The message as Python parses it, with the wire's CRLF line ends made LF."""
        raw = self.raw.replace(b"\r\n", b"\n")
        return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class MailServer:
    """What the server saw. `script` holds DATA answers used in turn (then 250);
    `hold_data`/`hold_rcpt` make it wait that many seconds before answering."""

    port: int
    received: list[Received] = field(default_factory=list)  # accepted (250) only
    attempts: int = 0  # DATA commands seen, answered or not
    script: deque[str] = field(default_factory=deque)
    hold_data: float = 0.0
    hold_rcpt: float = 0.0
    reached_data: threading.Event = field(default_factory=threading.Event)
    reached_rcpt: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int, seconds: float = 60) -> list[Received]:
        """The accepted messages once there are COUNT of them."""
        end = time.monotonic() + seconds
        while len(self.received) < count:
            assert time.monotonic() < end, f"{len(self.received)} messages arrived, not {count}"
            time.sleep(0.05)
        return list(self.received)


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.server.reached_rcpt.set()
        if self.server.hold_rcpt:
            await asyncio.sleep(self.server.hold_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        server = self.server
        server.attempts += 1
        if server.script:
            return server.script.popleft()
        assert isinstance(envelope.content, bytes)
        # Accepted the moment it is kept: a client that never hears the 250 (killed,
        # timed out) cannot know whether it arrived, as with a real server.
        server.received.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.content)
        )
        server.reached_data.set()
        if server.hold_data:
            await asyncio.sleep(server.hold_data)
        return "250 2.0.0 Ok: queued"


def _authenticator(users: dict[str, str]):  # type: ignore[no-untyped-def]
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object):  # type: ignore[no-untyped-def]
        if isinstance(data, LoginPassword):
            name, password = data.login.decode(), data.password.decode()
            return AuthResult(success=users.get(name) == password, handled=False)
        return AuthResult(success=False, handled=False)

    return check


@contextmanager
def mail_server(
    *,
    tls: str = "none",
    cert_context: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[MailServer]:
    """A running server; TLS ("starttls" or "implicit") needs CERT_CONTEXT, a server
    context holding its certificate. USERS turns on AUTH (required)."""
    server = MailServer(port=free_port())
    kwargs: dict[str, object] = {}
    if tls == "starttls":
        kwargs.update(tls_context=cert_context, require_starttls=True)
    elif tls == "implicit":
        kwargs.update(ssl_context=cert_context)
    if users is not None:
        # aiosmtpd does not count implicit TLS as TLS for AUTH (and warns about it).
        kwargs.update(
            authenticator=_authenticator(users),
            auth_required=True,
            auth_require_tls=tls != "implicit",
        )
    controller = Controller(_Handler(server), hostname=LOOPBACK, port=server.port, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
