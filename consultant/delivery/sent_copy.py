"""A copy of what we sent in the IMAP Sent folder, so the shared mailbox shows the
whole conversation in any mail client. It is a convenience: failing to copy is logged
and never undoes or repeats the delivery."""

from __future__ import annotations

import logging

from imapclient import SEEN
from imapclient.exceptions import IMAPClientError

from consultant.config import MailboxConfig
from consultant.logs import log_event
from consultant.mail.imap_connection import MailboxConfigError, connect

log = logging.getLogger(__name__)


def copy_to_sent(mailbox: MailboxConfig, folder: str, raw: bytes) -> bool:
    try:
        with connect(mailbox) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=[SEEN])
    except (OSError, IMAPClientError, MailboxConfigError) as exc:
        log_event(
            log,
            "sent-copy-failed",
            logging.WARNING,
            mailbox=mailbox.name,
            folder=folder,
            reason=repr(exc)[:300],
        )
        return False
    return True
