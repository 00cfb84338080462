"""What the IMAP and SMTP clients share: TLS contexts that verify certificates unless
the config says not to, and secrets printed by a command (a password manager, a script
that refreshes an OAuth2 token), so no secret has to sit in the config file."""

from __future__ import annotations

import shlex
import ssl
import subprocess
from pathlib import Path


class SecretCommandError(Exception):
    """A configured secret command failed or printed nothing."""


def tls_context(ca_file: Path | None, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def command_output(command: str, what: str) -> str:
    """What COMMAND prints, stripped; WHAT names it in errors ("the password command")."""
    try:
        result = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SecretCommandError(
            f"the {what} command failed ({exc}); run it by hand to see why"
        ) from None
    value = result.stdout.strip()
    if not value:
        raise SecretCommandError(f"the {what} command printed nothing")
    return value
