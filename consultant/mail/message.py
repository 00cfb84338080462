"""A customer's email (or pasted plain text) reduced to the question it asks.

Mail arrives from every client there is: CR-only line endings, NUL bytes, wrong or
unknown charsets, HTML-only bodies, replies that carry the whole earlier thread. The
analysis must see only what the customer wrote this time, so quoted history and the
signature are split off here and kept apart (never lost: the full text stays too).
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message

import lxml.html
from lxml import etree

# Headers that show the input is an RFC 5322 message rather than pasted text that
# happens to start with "Patient: ...".
_KNOWN_HEADERS = frozenset(
    re.findall(
        r"\S+",
        """from to cc bcc subject date message-id received return-path reply-to sender
        mime-version content-type content-transfer-encoding delivered-to in-reply-to references
        dkim-signature authentication-results auto-submitted precedence list-id envelope-to
        x-original-to thread-topic thread-index importance user-agent""",
    )
)
_HEADER_LINE = re.compile(r"^[!-9;-~]+:")

# Charsets to try, in order, when the declared one is missing, unknown or wrong; Latin-1,
# which decodes any byte, is the last resort.
_FALLBACK_CHARSETS = ("utf-8", "cp1252")

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\x00"))
_SPACES = dict.fromkeys(map(ord, "\xa0\u2007\u202f\t"), " ")


@dataclass(frozen=True)
class Mail:
    """What a message says, split by who wrote it."""

    subject: str
    text: str  # the whole decoded body: new text, signature and quoted history
    question: str  # subject + what the sender wrote this time
    quoted: str  # earlier messages of the thread
    signature: str
    message: Message | None  # the parsed headers; None for plain text input


def read_mail(raw: bytes) -> Mail:
    """Decode RAW (an RFC 5322 message or plain text) and separate its question."""
    data = _clean_bytes(raw)
    if _looks_like_message(data):
        message = message_from_bytes(data)
        subject = _subject(message)
        body = _body_text(message)
    else:
        message, subject, body = None, "", decode_bytes(data)
    body = normalize_text(body)
    own, quoted, signature = split_reply(body)
    question = "\n\n".join(part for part in (subject, own) if part)
    return Mail(subject, body, question, quoted, signature, message)


# --- bytes and charsets ---------------------------------------------------------------


def _clean_bytes(raw: bytes) -> bytes:
    """UTF-16 re-encoded as UTF-8, NULs dropped, every line ending made LF.

    CR-only mail (old Mac clients) would otherwise parse as one endless header line.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raw = raw.decode("utf-16", errors="replace").encode("utf-8")
    return raw.replace(b"\x00", b"").replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """DATA as text: the declared charset if it works, else UTF-8, Windows-1252, Latin-1."""
    for name in (charset, *_FALLBACK_CHARSETS):
        if not name:
            continue
        try:
            return data.decode(name.removeprefix("x-"))  # "x-mac-roman" is "mac-roman"
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def normalize_text(text: str) -> str:
    """Invisible characters dropped, odd spaces made plain, trailing blanks trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_ZERO_WIDTH)
    lines = [line.translate(_SPACES).rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _looks_like_message(data: bytes) -> bool:
    head = data.lstrip(b"\n").split(b"\n\n", 1)[0].decode("latin-1")
    lines = head.split("\n")
    if lines and lines[0].startswith("From "):  # mbox separator line
        lines = lines[1:]
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    names = {line.split(":", 1)[0].strip().lower() for line in lines if _HEADER_LINE.match(line)}
    return bool(names & _KNOWN_HEADERS)


def header_text(message: Message, name: str) -> str:
    """A header's value with RFC 2047 encoded words decoded (as is when they cannot be);
    '' when absent."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeDecodeError, ValueError, TypeError):
        text = str(value)
    return " ".join(text.split())


_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|sv|vs|antw|r|tr)\s*(?:\[\d+\])?\s*:|\s*\[external\])\s*", re.I
)


def _subject(message: Message) -> str:
    subject = header_text(message, "Subject")
    while (stripped := _REPLY_PREFIX.sub("", subject)) != subject:
        subject = stripped
    return subject.strip()


# --- body parts -----------------------------------------------------------------------


def _payload_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", errors="replace")
    charset = part.get_content_charset()
    if charset in ("us-ascii", "ascii"):
        charset = None  # 8-bit text mislabeled ASCII is usually UTF-8
    return decode_bytes(payload, charset)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment"


def _body_text(message: Message) -> str:
    """The message's own text: plain text preferred, HTML converted when that is all."""
    plain: list[str] = []
    markup: list[str] = []
    _collect(message, plain, markup)
    if any(text.strip() for text in plain):
        return "\n\n".join(plain)
    return "\n\n".join(html_to_text(text) for text in markup)


def _collect(part: Message, plain: list[str], markup: list[str]) -> None:
    """Inline text parts; of a multipart/alternative, its plain text when it has any.

    Attached messages (message/rfc822, bounces' copies) are not the sender's words.
    """
    ctype = part.get_content_type()
    if _is_attachment(part) or ctype.startswith("message/"):
        return
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        if ctype == "multipart/alternative":
            sub_plain: list[str] = []
            sub_markup: list[str] = []
            for child in children:
                _collect(child, sub_plain, sub_markup)
            if any(text.strip() for text in sub_plain):
                plain.extend(sub_plain)
            else:
                markup.extend(sub_markup)
            return
        for child in children:
            _collect(child, plain, markup)
        return
    if ctype == "text/html":
        markup.append(_payload_text(part))
    elif ctype == "text/plain":
        plain.append(_payload_text(part))


# --- HTML ----------------------------------------------------------------------------

_BLOCKS = frozenset(
    re.findall(
        r"\S+",
        "p div tr ul ol table h1 h2 h3 h4 h5 h6 pre hr section article header footer address "
        "center dd dt dl form tbody thead",
    )
)
_SKIP = frozenset(("script", "style", "head", "title", "noscript", "template"))


def html_to_text(markup: str) -> str:
    """Visible text of an HTML body, with quoted blocks marked '>' like plain-text mail."""
    try:
        root = lxml.html.document_fromstring(
            markup.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
        )
        text = _render(root, pre=False)
    except (etree.ParserError, ValueError, RecursionError):
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _inline(text: str | None, pre: bool) -> str:
    """Text as a browser shows it: runs of white space (line breaks too) are one space."""
    if not text:
        return ""
    return text if pre else re.sub(r"\s+", " ", text)


def _render(element: etree._Element, pre: bool) -> str:
    tag = element.tag.lower() if isinstance(element.tag, str) else ""  # comments: no tag
    if tag in _SKIP:
        return _inline(element.tail, pre)
    inside = pre or tag == "pre"
    inner = (_inline(element.text, inside) if tag else "") + "".join(
        _render(child, inside) for child in element
    )
    if tag == "blockquote":
        lines = [line.strip() for line in inner.strip().split("\n")]
        inner = "\n" + "\n".join(f"> {line}".rstrip() for line in lines) + "\n"
    elif tag == "li":
        inner = "\n- " + inner.strip() + "\n"
    elif tag == "br":
        inner = "\n"
    elif tag in _BLOCKS:
        inner = "\n" + inner + "\n"
    elif tag in ("td", "th"):
        inner += " "
    return inner + _inline(element.tail, pre)


# --- quoted history and signature -------------------------------------------------------

_ON_WROTE = re.compile(
    r"^\s*(?:On|Am|Le|El|Il|Op|Em)\b.{0,250}(?:wrote|schrieb|a écrit|escribió|ha scritto"
    r"|schreef|escreveu)\s*:\s*$",
    re.I,
)
_WROTE = re.compile(r"^.{1,160}\bwrote:\s*$", re.I)
_HISTORY = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Forwarded message|Mensaje original|"
    r"Ursprüngliche Nachricht|Message d'origine)\s*-{2,}|Begin forwarded message:|_{10,})\s*$",
    re.I,
)
_OUTLOOK_FROM = re.compile(r"^\s*\**(?:From|De|Von|Van)\s*:\**\s+\S", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\**(?:Sent|Date|Envoyé|Gesendet|To|Subject)\s*:", re.I)
_SIGNATURE = re.compile(
    r"^(?:--\s?|Sent from my \w+.*|Sent from (?:Outlook|Mail) for .*|Get Outlook for .*)$", re.I
)


def split_reply(body: str) -> tuple[str, str, str]:
    """(own text, quoted history, signature) of a reply.

    '>' lines are quoted wherever they are, so an answer written between or below
    quoted lines stays the sender's own; an Outlook-style header block or an
    '-----Original Message-----' line starts history that runs to the end.
    """
    lines = body.split("\n")
    own: list[str] = []
    quoted: list[str] = []
    signature: list[str] = []
    in_signature = False
    index = 0
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1 : index + 6]
        if _starts_history(line, following):
            quoted.extend(lines[index:])
            break
        if (
            line.lstrip().startswith(">")
            or _ON_WROTE.match(line)
            or (_WROTE.match(line) and _next_nonblank_quoted(lines, index + 1))
        ):
            quoted.append(line)
        elif (
            line.strip().startswith("On ")
            and following
            and _ON_WROTE.match(f"{line} {following[0]}")
        ):
            quoted.extend((line, following[0]))
            index += 1
        elif in_signature or _SIGNATURE.match(line.strip()) or line in ("--", "-- "):
            in_signature = True
            signature.append(line)
        else:
            own.append(line)
        index += 1
    return (
        normalize_text("\n".join(own)),
        normalize_text("\n".join(quoted)),
        normalize_text("\n".join(signature)),
    )


def _starts_history(line: str, following: list[str]) -> bool:
    if _HISTORY.match(line):
        return True
    return bool(_OUTLOOK_FROM.match(line)) and any(_OUTLOOK_NEXT.match(f) for f in following)


def _next_nonblank_quoted(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False
