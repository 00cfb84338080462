"""Connecting and logging in to a configured IMAP mailbox.

Certificates are verified unless the config says `verify_tls = false`; STARTTLS is
required (never silently skipped) when `tls = "starttls"`. Secrets can come from a
command (a password manager, or a script that refreshes an OAuth2 token), so no
secret has to sit in the config file.
"""

from __future__ import annotations

from contextlib import suppress

from imapclient import IMAPClient

from consultant.config import MailboxConfig
from consultant.mail.credentials import SecretCommandError, command_output, tls_context


class MailboxConfigError(Exception):
    """The mailbox's settings cannot work (e.g. the secret command fails)."""


def _secret(command: str, what: str, mailbox: str) -> str:
    try:
        return command_output(command, what)
    except SecretCommandError as exc:
        raise MailboxConfigError(f"mailbox {mailbox!r}: {exc}") from None


def connect(config: MailboxConfig) -> IMAPClient:
    """A logged-in client for CONFIG; the caller closes it (it is a context manager)."""
    # Loading the CA store takes ~20 ms; a plain connection never needs it.
    context = tls_context(config.ca_file, config.verify_tls) if config.tls != "none" else None
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
            token = _secret(config.oauth2_token_command, "oauth2_token", config.name)
            client.oauth2_login(config.username, token)
        else:
            password = config.password
            if config.password_command:
                password = _secret(config.password_command, "password", config.name)
            client.login(config.username, password or "")
    except BaseException:
        with suppress(OSError):  # a failed TLS handshake may have closed the socket
            client.shutdown()
        raise
    return client
