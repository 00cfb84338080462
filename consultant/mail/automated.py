"""Is a message an auto-reply, bounce or list mail? Those get no drafted answer.

Answering an out-of-office reply starts a mail loop, and a bounce quotes our own
answer back at us, so each signal here follows the RFCs and the headers the big
mail systems set (RFC 3834 Auto-Submitted, RFC 3464 reports, Microsoft's
X-Auto-Response-Suppress, the empty Return-Path of delivery notifications).
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from consultant.mail.message import header_text

_PRECEDENCE = frozenset(("bulk", "junk", "list", "auto_reply"))
_DAEMONS = frozenset(("mailerdaemon", "postmaster"))
# Subjects auto-responders and MTAs write; anchored, so a person asking about an
# "out of office visit" is not caught.
_AUTO_SUBJECT = re.compile(
    r"^(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|out of (?:the )?office"
    r"|undeliverable|undelivered mail returned to sender|delivery status"
    r"|mail delivery (?:failed|failure|system)|delivery failure|returned mail"
    r"|failure notice|abwesenheitsnotiz|réponse automatique)\b",
    re.I,
)


def automated_reason(message: Message | None) -> str | None:
    """Why MESSAGE was sent by a machine rather than a person; None when it was not."""
    if message is None:  # plain text pasted by a person
        return None
    auto = header_text(message, "Auto-Submitted").lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return f"Auto-Submitted header is {auto!r}"
    precedence = header_text(message, "Precedence").lower()
    if precedence in _PRECEDENCE:
        return f"Precedence header is {precedence!r}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id"):
        if message.get(name) is not None:
            return f"{name} header is present"
    if message.get_content_type() == "multipart/report":
        return "it is a delivery or read report (multipart/report)"
    for header in ("From", "Sender"):
        for _name, address in getaddresses([header_text(message, header)]):
            local = address.split("@", 1)[0]
            if re.sub(r"[-_.]", "", local.lower()) in _DAEMONS:
                return f"{header} is a mail system address ({local})"
    return_path = message.get("Return-Path")
    if return_path is not None and re.sub(r"\s", "", str(return_path)) == "<>":
        return "Return-Path is empty (<>), as on delivery notifications"
    subject = header_text(message, "Subject")
    if _AUTO_SUBJECT.match(subject):
        return "the subject is one that auto-responders and mail systems use"
    return None
