"""Patient data stays with the service's user: the ticket database, the queue and the
outbox hold patients' names and MRNs, and the accounts' password hashes.

Every command runs with umask 077 (files 0600, folders 0700) and makes the data
directory its owner's alone; a config file naming a password is warned about when
others can read it.
"""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

import click

from consultant.config import Config

PRIVATE_UMASK = 0o077  # files 0600, folders 0700, whatever the caller's umask


def private_data_dir(path: Path) -> None:
    """Make PATH (0700) or close it to others. A folder an older release made 0755 is
    tightened without a word: it is the service's own, nothing else needs into it, and
    closing it keeps others out of every file already there (made 0644 back then)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError as exc:
        click.echo(
            f"Warning: cannot make the data directory {path} private ({exc.strerror}); it "
            f"holds patient data: create it, or `chmod 700 {path}`, as the service's user",
            err=True,
        )


def _holds_secret(config: Config) -> bool:
    """Whether the config names a password or key (rather than a command printing one)."""
    urls = (config.database_url, config.queue.broker_url)
    return bool(
        config.smtp.password
        or config.web.secret_key
        or any(mailbox.password for mailbox in config.mailboxes)
        or any(urlsplit(url).password for url in urls)
    )


def warn_if_readable(config: Config) -> None:
    source = config.source
    if source is None or not _holds_secret(config):
        return
    if stat.S_IMODE(source.stat().st_mode) & 0o044:
        click.echo(
            f"Warning: {source} holds a password or secret key and other users can read "
            f"it; run `chmod 600 {source}`",
            err=True,
        )
