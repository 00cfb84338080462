"""Any raw message bytes made into what a ticket stores as one message, or a clear
rejection.

Whatever arrives (CR-only line endings, NUL bytes, unknown charsets, missing MIME
boundaries, 130 KB subjects, 3,000 parts) is read as far as it can be, and each problem
worked around is named in `defects`. Only input that is no email at all is rejected, as
UnparsableMessage with a reason a consultant can act on:

- 'empty': zero bytes;
- 'blank': nothing but white space and NUL bytes;
- 'outlook-msg': an Outlook .msg file (OLE2 compound file), not an RFC 5322 message;
- 'binary': no mail headers and binary content (a PDF, ZIP, image, or control bytes);
- 'too-deep': MIME parts nested so deep that Python's email parser cannot follow them.

Text without headers is not rejected: it becomes a message with its text and no sender,
as is a message without a From address; the ingester decides what to do with those.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from types import MappingProxyType

from consultant.mail.attachments import ParsedAttachment, is_delivery_status, read_attachments
from consultant.mail.automated import automated_reason
from consultant.mail.message import (
    clean_bytes,
    collect_body,
    content_type,
    decode_header_value,
    looks_like_message,
    message_ids,
    normalize_text,
    split_reply,
)
from consultant.mail.sanitize import sanitize_html

__all__ = ["ParsedAttachment", "ParsedMessage", "UnparsableMessage", "parse_message"]

# Headers the ingester reads (threading, loop protection) beyond the parsed fields.
EXTRA_HEADERS = (
    "auto-submitted",
    "x-caseconsultant-ticket",
    "x-caseconsultant-id",
    "return-path",
    "precedence",
    "list-id",
    "authentication-results",  # the topmost: the receiving server's (mail.authentication)
)
MAX_REFERENCES = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
_LIST_HEADERS = frozenset(("list-id", "list-unsubscribe"))
_LIST_PRECEDENCE = frozenset(("list", "bulk"))
_DAEMONS = frozenset(("mailerdaemon", "postmaster"))  # local parts, without - _ .
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC = (
    (b"%PDF-", "a PDF file"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip file"),
)
# Bytes no text holds (tab, line ends, form feed and the ESC of ISO-2022 excepted).
_CONTROL_BYTES = bytes((*range(0, 9), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F))
_BINARY_SHARE = 0.1  # of the first 8 KiB


class UnparsableMessage(Exception):
    """The bytes are not an email a ticket can be made from.

    `reason` says why in one sentence a consultant understands; `kind` names the case
    for code and metrics ('empty', 'blank', 'outlook-msg', 'binary', 'too-deep').
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class ParsedMessage:
    """One message as a ticket stores it. Strings hold no NUL, CR or lone surrogate."""

    raw_sha256: str
    size: int  # raw byte length
    message_id: str | None  # without angle brackets or white space; None if missing/blank
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]  # in order, duplicates dropped, the last MAX_REFERENCES
    from_name: str
    from_address: str | None  # lowercase; From, else Sender; None when neither has one
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None  # UTC
    subject: str  # one line, Re:/Fwd: prefixes kept
    text: str  # the whole body text: plain text preferred, else text of the HTML
    question: str  # what the sender wrote this time: no quoted history, no signature
    quoted: str
    signature: str
    html: str | None  # the HTML body, sanitized; None when there is no HTML part
    attachments: tuple[ParsedAttachment, ...]
    automated: str | None  # why the message counts as sent by a machine
    bounce: bool  # a delivery status notification
    list_mail: bool
    extra_headers: Mapping[str, str]  # EXTRA_HEADERS present, decoded
    defects: tuple[str, ...]  # short names of what was worked around, in order found


def parse_message(
    raw: bytes, *, max_attachment_bytes: int = 25 * 1024 * 1024, max_header_chars: int = 998
) -> ParsedMessage:
    """RAW parsed; UnparsableMessage when it is no email (see the module docstring).

    MAX_ATTACHMENT_BYTES bounds the attachment bytes kept in all; MAX_HEADER_CHARS caps
    the subject, names, addresses, ids and extra header values.
    """
    data = _readable_bytes(raw)
    defects = _cleaning_defects(raw)
    if not looks_like_message(data):
        _reject_binary(raw)
        defects.append("no-headers")
        data = b"\n" + data  # an empty header block: everything is body
    try:
        message = message_from_bytes(data)
        body = collect_body(message)
    except RecursionError:
        raise UnparsableMessage(
            "too-deep",
            "its MIME parts are nested too deeply to read (a damaged or hostile message); "
            "ask the sender to send the content in a new email",
        ) from None
    defects.extend(body.defects)
    fields: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        fields.setdefault(name.lower(), []).append(value)
    headers = _Headers(fields, max_header_chars, defects)

    from_name, from_address = headers.sender()
    attachments, attachment_defects = read_attachments(body.attachments, max_attachment_bytes)
    defects.extend(attachment_defects)
    text = normalize_text(body.text())
    question, quoted, signature = split_reply(text)
    list_mail = bool(fields.keys() & _LIST_HEADERS) or (
        headers.text("precedence").lower() in _LIST_PRECEDENCE
    )
    return ParsedMessage(
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        message_id=next(iter(headers.ids("message-id")), None),
        in_reply_to=headers.ids("in-reply-to"),
        references=headers.ids("references")[-MAX_REFERENCES:],
        from_name=from_name,
        from_address=from_address,
        reply_to=next(iter(headers.addresses("reply-to")), None),
        to=headers.addresses("to"),
        cc=headers.addresses("cc"),
        date=headers.date(),
        subject=headers.text("subject", "subject-truncated"),
        text=text,
        question=question,
        quoted=quoted,
        signature=signature,
        html=sanitize_html("\n".join(body.html)) if body.html else None,
        attachments=attachments,
        automated=automated_reason(message),
        bounce=_is_bounce(message, attachments, from_address),
        list_mail=list_mail,
        extra_headers=MappingProxyType(
            {name: headers.text(name) for name in EXTRA_HEADERS if name in fields}
        ),
        defects=tuple(dict.fromkeys(defects)),
    )


def _readable_bytes(raw: bytes) -> bytes:
    """RAW cleaned for parsing (`clean_bytes`), or UnparsableMessage if nothing is left or
    it is an Outlook file."""
    if not raw:
        raise UnparsableMessage("empty", "empty message (0 bytes)")
    if raw.startswith(_OLE2):
        raise UnparsableMessage(
            "outlook-msg",
            "an Outlook .msg file, not an RFC 5322 message; ask the sender to forward it as email",
        )
    data = clean_bytes(raw)
    if not data:
        raise UnparsableMessage(
            "blank", f"blank message ({len(raw)} bytes of white space or NUL bytes only)"
        )
    return data


def _cleaning_defects(raw: bytes) -> list[str]:
    defects = []
    if raw[:1].isspace():
        defects.append("leading-white-space")
    if b"\x00" in raw and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        defects.append("nul-bytes")
    if raw.count(b"\r") > raw.count(b"\r\n"):
        defects.append("cr-line-endings")
    return defects


def _reject_binary(raw: bytes) -> None:
    """UnparsableMessage when RAW, which has no mail headers, is a file rather than text."""
    kind = next((name for magic, name in _MAGIC if raw.startswith(magic)), None)
    head = raw[:8192]
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if kind is None and controls > _BINARY_SHARE * len(head):
        kind = "binary data"
    if kind is not None:
        raise UnparsableMessage(
            "binary",
            f"{kind} without mail headers, not an email; ask the sender to attach it to an email",
        )


def _is_bounce(
    message: Message, attachments: tuple[ParsedAttachment, ...], from_address: str | None
) -> bool:
    """A delivery status notification: an RFC 3464 report (even with a broken MIME
    structure), or mail from a mailer daemon or postmaster (qmail, Exchange 2003 and old
    sendmail send their reports as plain text)."""
    report_type = message.get_param("report-type")
    if isinstance(report_type, tuple):  # RFC 2231 encoded
        report_type = report_type[2]
    if content_type(message) == "multipart/report" and str(report_type).strip().lower() == (
        "delivery-status"
    ):
        return True
    if any(is_delivery_status(attachment) for attachment in attachments):
        return True
    local = (from_address or "").split("@", 1)[0]
    return re.sub(r"[-_.]", "", local) in _DAEMONS


@dataclass
class _Headers:
    """Header values by lowercase name, decoded and capped on the way out."""

    fields: dict[str, list[str]]
    limit: int
    defects: list[str]

    def text(self, name: str, truncated: str = "header-truncated") -> str:
        """The first NAME header as one line: decoded, without control characters."""
        values = self.fields.get(name)
        if not values:
            return ""
        text = " ".join(_CONTROL.sub("", decode_header_value(values[0])).split())
        return self._cap(text, truncated)

    def mailboxes(self, name: str) -> list[tuple[str, str | None]]:
        """(display name, lowercase address or None when it is none) of every NAME header."""
        found: list[tuple[str, str | None]] = []
        values = self.fields.get(name)
        if not values:
            return found
        for display, address in getaddresses(values):
            display = decode_header_value(display)
            display = self._cap(" ".join(_CONTROL.sub("", display).split()))
            address = decode_header_value(address).lower()
            valid = _ADDRESS.fullmatch(address) and len(address) <= self.limit
            if display or valid:
                found.append((display, address if valid else None))
        return found

    def sender(self) -> tuple[str, str | None]:
        """(display name, address) of From; the address from Sender when From has none.

        A From without any address ("From: Dana Coder") is all name.
        """
        mailboxes = self.mailboxes("from")
        name = next((display for display, _ in mailboxes if display), "")
        address = next((address for _, address in mailboxes if address), None)
        if address is None:
            name = name or self.text("from")
            mailboxes = self.mailboxes("sender")
            name = name or next((display for display, _ in mailboxes if display), "")
            address = next((address for _, address in mailboxes if address), None)
        return name, address

    def addresses(self, name: str) -> tuple[str, ...]:
        """The addresses of every NAME header, lowercase, duplicates dropped."""
        return tuple(dict.fromkeys(address for _, address in self.mailboxes(name) if address))

    def ids(self, name: str) -> tuple[str, ...]:
        """Message ids of every NAME header, in order, duplicates dropped."""
        ids = (
            self._cap(item) for value in self.fields.get(name, []) for item in message_ids(value)
        )
        return tuple(dict.fromkeys(ids))

    def date(self) -> datetime | None:
        """The Date header in UTC (a zone-less date taken as UTC); None when it is missing
        or no date."""
        text = self.text("date")
        if not text:
            return None
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                self.defects.append("unparseable-date")
                return None
        try:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except (OverflowError, ValueError):
            self.defects.append("unparseable-date")
            return None

    def _cap(self, text: str, truncated: str = "header-truncated") -> str:
        if len(text) <= self.limit:
            return text
        self.defects.append(truncated)
        return text[: self.limit]
