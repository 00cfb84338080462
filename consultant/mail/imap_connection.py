"""Connecting and logging in to a configured IMAP mailbox.

Certificates are verified unless the config says `verify_tls = false`; STARTTLS is
required (never silently skipped) when `tls = "starttls"`. Secrets can come from a
command (a password manager, or a script that refreshes an OAuth2 token), so no
secret has to sit in the config file.
"""

from __future__ import annotations

import shlex
import ssl
import subprocess
from contextlib import suppress

from imapclient import IMAPClient

from consultant.config import MailboxConfig


class MailboxConfigError(Exception):
    """The mailbox's settings cannot work (e.g. the secret command fails)."""


def tls_context(config: MailboxConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _command_output(command: str, what: str, mailbox: str) -> str:
    try:
        result = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MailboxConfigError(
            f"mailbox {mailbox!r}: the {what} command failed ({exc}); run it by hand to see why"
        ) from None
    value = result.stdout.strip()
    if not value:
        raise MailboxConfigError(f"mailbox {mailbox!r}: the {what} command printed nothing")
    return value


def connect(config: MailboxConfig) -> IMAPClient:
    """A logged-in client for CONFIG; the caller closes it (it is a context manager)."""
    context = tls_context(config)
    client = IMAPClient(
        config.host,
        port=config.port,
        ssl=config.tls == "implicit",
        ssl_context=context if config.tls == "implicit" else None,
        timeout=config.timeout,
    )
    try:
        if config.tls == "starttls":
            client.starttls(context)
        if config.oauth2_token_command:
            token = _command_output(config.oauth2_token_command, "oauth2_token", config.name)
            client.oauth2_login(config.username, token)
        else:
            password = config.password
            if config.password_command:
                password = _command_output(config.password_command, "password", config.name)
            client.login(config.username, password or "")
    except BaseException:
        with suppress(OSError):  # a failed TLS handshake may have closed the socket
            client.shutdown()
        raise
    return client
