"""A message's attachments, as a ticket keeps them.

Their bytes are kept up to a per-message budget (a 30 MB video must not cost the 200 KB
operative note after it, so each one that still fits is kept); the rest keep their name,
type, size and hash. PDF and text attachments also give their text, since the question
is often in the attached note rather than in the mail.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from email.errors import MessageError
from email.header import Header
from email.message import Message

from pypdf import PdfReader

from consultant.mail.message import (
    content_type,
    decode_bytes,
    decode_header_value,
    html_to_text,
    is_attachment,
    message_ids,
    normalize_text,
    text_charset,
)

MAX_TEXT_CHARS = 200_000  # of text taken from one attachment
PDF_MAX_PAGES = 50
PDF_MAX_BYTES = 20 * 1024 * 1024  # larger PDFs keep no text: pypdf would take too long
_NAME_LIMIT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DELIVERY_STATUS = frozenset(("message/delivery-status", "message/global-delivery-status"))

# pypdf logs a warning for every damaged PDF, quoting bytes of it: not for our logs.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment (or attached message) of a parsed message."""

    filename: str  # decoded, without directories or control characters; '' if none
    content_type: str  # lowercase 'type/subtype'
    size: int  # decoded bytes
    sha256: str  # hex digest of the decoded bytes
    data: bytes | None  # None when the message's attachment budget was spent
    text: str  # text of a PDF or text/* attachment, for the analysis; '' otherwise
    inline: bool  # shown inside the HTML body (has a Content-ID, not 'attachment')
    content_id: str = ""  # what the HTML's cid: URLs name, without angle brackets


def read_attachments(
    parts: list[Message], max_bytes: int
) -> tuple[tuple[ParsedAttachment, ...], list[str]]:
    """PARTS as attachments, keeping the bytes of each that fits in MAX_BYTES (in total),
    and the short names of what was worked around."""
    attachments: list[ParsedAttachment] = []
    defects: list[str] = []
    budget = max_bytes
    for part in parts:
        data = _part_bytes(part)
        if data is None:
            defects.append("attachment-unreadable")
            data = b""
        keep = len(data) <= budget
        if keep:
            budget -= len(data)
        else:
            defects.append("attachment-cap-reached")
        filename = _filename(part)
        ctype = content_type(part)[:_NAME_LIMIT]
        ids = message_ids(str(part.get("Content-ID", "")))
        content_id = ids[0][:_NAME_LIMIT] if ids else ""
        attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=ctype,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                data=data if keep else None,
                text=_text(part, data, ctype),
                inline=bool(content_id) and not is_attachment(part),
                content_id=content_id,
            )
        )
    return tuple(attachments), defects


def is_delivery_status(attachment: ParsedAttachment) -> bool:
    """Whether ATTACHMENT is the machine-readable part of a delivery report (RFC 3464)."""
    return attachment.content_type in _DELIVERY_STATUS


def pdf_text(data: bytes) -> str:
    """The text of the first PDF_MAX_PAGES pages of a PDF; '' when it has none, is
    encrypted, too large, or broken."""
    if len(data) > PDF_MAX_BYTES:
        return ""
    pieces: list[str] = []
    length = 0
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return ""
        for number, page in enumerate(reader.pages):
            if number >= PDF_MAX_PAGES or length >= MAX_TEXT_CHARS:
                break
            piece = page.extract_text() or ""
            pieces.append(piece)
            length += len(piece)
    except Exception:  # pypdf raises nearly any exception type on damaged or hostile files
        return ""
    return "\n\n".join(pieces)


def _part_bytes(part: Message) -> bytes | None:
    """PART's decoded content; for an attached message, the message itself. None when
    it cannot be serialized (hostile nesting, headers the email package cannot fold)."""
    try:
        if part.is_multipart():  # message/rfc822 and delivery reports hold parsed messages
            return b"\n".join(child.as_bytes() for child in part.get_payload())
        payload = part.get_payload(decode=True)
    except (RecursionError, LookupError, ValueError, TypeError, MessageError):
        return None
    return payload if isinstance(payload, bytes) else b""


def _filename(part: Message) -> str:
    """The attachment's file name: RFC 2231 and RFC 2047 decoded, raw 8-bit names too
    (which the email package would turn into U+FFFD), without any directory."""
    source = part
    if any(isinstance(part.get(name), Header) for name in ("Content-Disposition", "Content-Type")):
        source = Message()
        for name in ("Content-Disposition", "Content-Type"):
            if (value := part.get(name)) is not None:
                source[name] = decode_header_value(value)
    try:
        name = source.get_filename() or ""
    except (LookupError, ValueError, TypeError):  # a charset in filename*= that is none
        return ""
    name = decode_header_value(name)
    name = re.split(r"[/\\]", name)[-1]
    return " ".join(_CONTROL.sub("", name).split())[:_NAME_LIMIT]


def _text(part: Message, data: bytes, ctype: str) -> str:
    if b"%PDF-" in data[:1024]:  # where the PDF standard allows the header to be
        text = pdf_text(data)
    elif ctype.startswith("text/"):
        text = decode_bytes(data[: MAX_TEXT_CHARS * 4], text_charset(part))
        if ctype == "text/html":
            text = html_to_text(text)
    else:
        return ""
    return normalize_text(text)[:MAX_TEXT_CHARS]
