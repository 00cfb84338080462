"""A message's attachments, as a ticket keeps them.

Their bytes are kept up to a per-message budget (a 30 MB video must not cost the 200 KB
operative note after it, so each one that still fits is kept); the rest keep their name,
type, size and hash. Text attachments give their text at once, since the question is
often in the attached note rather than in the mail.

A PDF's text is read later (`extract_pdf_text`, by the drafting step), never while the
message is being stored: pypdf is pure Python, and a small hostile PDF (pages of
hundreds of thousands of empty text operators, a decompression bomb) can keep it busy
for minutes or inflate gigabytes, which must not delay a commit, an SMTP 250 or an MTA's
pipe. So the reading runs in a child process that is killed at its deadline, stops at a
budget of decompressed bytes, and has its memory capped; a PDF it could not read says
why (`unread_reason`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.errors import MessageError
from email.header import Header
from email.message import Message
from typing import Any

from consultant.logs import log_event
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

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 200_000  # of text taken from one attachment
PDF_MAX_PAGES = 50
_NAME_LIMIT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DELIVERY_STATUS = frozenset(("message/delivery-status", "message/global-delivery-status"))

# What became of a PDF's text (Attachment.extraction): PENDING until the drafting step
# reads it, then READ, or the reason it was not (fully) read, one of UNREAD.
PENDING = "pending"
READ = "read"
UNREAD = ("too-large", "timeout", "encrypted", "broken", "not-stored")

# The extraction child's memory beyond its decompression budget: Python, pypdf and the
# objects it parses a page into. A bomb in a filter the budget cannot see fails here.
_CHILD_MEMORY = 512 * 1024 * 1024
# pypdf's per-stream output limits, set to what is left of the file's budget.
_OUTPUT_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "jbig2_maximum_output_length",
    "array_based_stream_maximum_output_length",
)


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment (or attached message) of a parsed message."""

    filename: str  # decoded, without directories or control characters; '' if none
    content_type: str  # lowercase 'type/subtype'
    size: int  # decoded bytes
    sha256: str  # hex digest of the decoded bytes
    data: bytes | None  # None when the message's attachment budget was spent
    text: str  # of a text/* attachment, for the analysis; '' otherwise (a PDF's comes later)
    inline: bool  # shown inside the HTML body (has a Content-ID, not 'attachment')
    content_id: str = ""  # what the HTML's cid: URLs name, without angle brackets
    extraction: str = ""  # a PDF's: PENDING, or "not-stored" when its bytes were not kept


@dataclass(frozen=True)
class PdfText:
    """What extract_pdf_text read: the text of the pages it got to, and READ or the
    reason it stopped (one of UNREAD)."""

    text: str
    status: str


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
        is_pdf = b"%PDF-" in data[:1024]  # where the PDF standard allows the header to be
        attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=ctype,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                data=data if keep else None,
                text="" if is_pdf else _text(part, data, ctype),
                inline=bool(content_id) and not is_attachment(part),
                content_id=content_id,
                extraction=(PENDING if keep else "not-stored") if is_pdf else "",
            )
        )
    return tuple(attachments), defects


def is_delivery_status(attachment: ParsedAttachment) -> bool:
    """Whether ATTACHMENT is the machine-readable part of a delivery report (RFC 3464)."""
    return attachment.content_type in _DELIVERY_STATUS


def extract_pdf_text(data: bytes, *, max_bytes: int, seconds: float) -> PdfText:
    """The text of the first PDF_MAX_PAGES pages of the PDF DATA, read in a child
    process killed after SECONDS, whose streams may decompress to MAX_BYTES in all.

    The child reports each page as it goes, so a PDF stopped at a limit keeps the text
    of the pages read before it.
    """
    seconds = max(seconds, 0.001)
    command = [sys.executable, "-m", __name__, str(max_bytes), str(seconds)]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=seconds)
    except subprocess.TimeoutExpired as expired:  # run() has killed the child
        output, returncode, status = expired.stdout or b"", None, "timeout"
    else:
        output, returncode, status = done.stdout, done.returncode, None
    pieces: list[str] = []
    for line in output.split(b"\n")[:-1]:  # a line cut short by the kill is dropped
        report = json.loads(line)
        if "text" in report:
            pieces.append(report["text"])
        else:
            status = report["status"]
    if status is None:  # the child died without a word (a signal, a failed start)
        log_event(log, "pdf-extract-failed", logging.WARNING, returncode=returncode)
        status = "broken"
    return PdfText(normalize_text("\n\n".join(pieces))[:MAX_TEXT_CHARS], status)


def unread_reason(status: str, *, max_bytes: int, seconds: float) -> str:
    """Why a PDF whose extraction is STATUS (one of UNREAD) was not read, for the
    consultant, saying what would help."""
    reasons = {
        "too-large": f"its content decompresses to more than {max_bytes:,} bytes "
        "([ingest] extract_max_bytes)",
        "timeout": f"reading the message's attachments took longer than {seconds:g} s "
        "([ingest] extract_seconds)",
        "encrypted": "it is encrypted; ask the sender for a copy without a password",
        "broken": "it is damaged or not a PDF that can be read; ask the sender to send it again",
        "not-stored": "its file was not kept: the message's attachments are over "
        "[ingest] max_attachment_bytes",
    }
    return reasons[status]


class _TooLarge(Exception):
    """The file's streams decompress to more than its budget."""


class _Encrypted(Exception):
    """The file needs a password."""


class _DecodeBudget:
    """The decompressed bytes a file's streams may still use, in all."""

    def __init__(self, left: int) -> None:
        self.left = left

    def bound(self, decode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
        """pypdf's stream decoder DECODE, bounded: no stream inflates past what is left
        (pypdf stops at its output limits, which are set to it), and each stream
        decoded uses its length up."""
        from pypdf import apply_configuration
        from pypdf.errors import LimitReachedError

        def decode_within(stream: Any) -> bytes:
            if self.left <= 0:  # to pypdf, a limit of 0 means none
                raise _TooLarge
            try:
                with apply_configuration(**dict.fromkeys(_OUTPUT_LIMITS, self.left)):
                    data = decode(stream)
            except LimitReachedError:
                self.left = 0
                raise _TooLarge from None
            self.left -= len(data)
            if self.left < 0:
                raise _TooLarge
            return data

        return decode_within


def _pages_text(data: bytes, max_bytes: int) -> Iterator[str]:
    """The text of each page of DATA, up to PDF_MAX_PAGES pages or MAX_TEXT_CHARS.

    pypdf is imported here, in the extraction child only: the processes that store
    mail never load it.
    """
    import pypdf.filters
    from pypdf import PdfReader

    # pypdf logs a warning for every damaged PDF, quoting bytes of it.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    budget = _DecodeBudget(max_bytes)
    # Every stream pypdf reads (page content, object streams, fonts) is decoded here.
    pypdf.filters.decode_stream_data = budget.bound(pypdf.filters.decode_stream_data)
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Encrypted
    length = 0
    for number, page in enumerate(reader.pages):
        if number >= PDF_MAX_PAGES or length >= MAX_TEXT_CHARS:
            return
        piece = (page.extract_text() or "")[: MAX_TEXT_CHARS - length]
        if budget.left <= 0:  # pypdf may have caught _TooLarge and gone on
            raise _TooLarge
        length += len(piece)
        yield piece


def _extraction_child(max_bytes: int, seconds: float) -> None:
    """The child's side of extract_pdf_text: the PDF on stdin; on stdout a JSON line
    per page read ({"text": ...}), then {"status": ...}."""
    memory = _CHILD_MEMORY + 2 * max_bytes
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = math.ceil(seconds) + 1  # so a child whose parent died before killing it stops
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    data = sys.stdin.buffer.read()
    try:
        for piece in _pages_text(data, max_bytes):
            sys.stdout.write(json.dumps({"text": piece}) + "\n")
            sys.stdout.flush()
        status = READ
    except _Encrypted:
        status = "encrypted"
    except (_TooLarge, MemoryError):
        status = "too-large"
    except Exception:  # pypdf raises nearly any exception type on damaged or hostile files
        status = "broken"
    sys.stdout.write(json.dumps({"status": status}) + "\n")


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
    if not ctype.startswith("text/"):
        return ""
    text = decode_bytes(data[: MAX_TEXT_CHARS * 4], text_charset(part))
    if ctype == "text/html":
        text = html_to_text(text)
    return normalize_text(text)[:MAX_TEXT_CHARS]


if __name__ == "__main__":
    _extraction_child(int(sys.argv[1]), float(sys.argv[2]))
