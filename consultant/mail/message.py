"""A customer's email (or pasted plain text) reduced to the question it asks.

Mail arrives from every client there is: CR-only line endings, NUL bytes, wrong or
unknown charsets, HTML-only bodies, replies that carry the whole earlier thread. The
analysis must see only what the customer wrote this time, so quoted history and the
signature are split off here and kept apart (never lost: the full text stays too).
"""

from __future__ import annotations

import binascii
import codecs
import html
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import Header, decode_header
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
# Labels Python does not know, or knows as a narrower charset than senders really use
# (after the WHATWG Encoding Standard: GB2312 mail is GBK, Shift_JIS is Windows-31J ...).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "iso-gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
}
# Python codecs that are not mail charsets: a label naming one would turn "\\x00" in the
# text into control characters, or fail in ways charsets do not.
_NOT_MAIL_CHARSETS = frozenset(
    ("idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "charmap")
)

# Invisible characters dropped, odd spaces made plain.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\x00"))
_PLAIN = _INVISIBLE | dict.fromkeys(map(ord, "\xa0\u2007\u202f\t"), " ")
_BLANK_LINES = re.compile(r"\n{3,}")


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
    data = clean_bytes(raw)
    if looks_like_message(data):
        message = message_from_bytes(data)
        subject = strip_reply_prefixes(header_text(message, "Subject"))
        body = collect_body(message).text()
    else:
        message, subject, body = None, "", decode_bytes(data)
    body = normalize_text(body)
    own, quoted, signature = split_reply(body)
    question = "\n\n".join(part for part in (subject, own) if part)
    return Mail(subject, body, question, quoted, signature, message)


# --- bytes and charsets ---------------------------------------------------------------


def clean_bytes(raw: bytes) -> bytes:
    """UTF-16 re-encoded as UTF-8, NULs and a UTF-8 byte order mark dropped, every line
    ending made LF, leading white space removed.

    CR-only mail (old Mac clients) would otherwise parse as one endless header line, and
    a blank first line (or a space before the first header) would make every header body.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raw = raw.decode("utf-16", errors="replace").encode("utf-8")
    data = raw.replace(b"\x00", b"").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.removeprefix(codecs.BOM_UTF8).lstrip()


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """DATA as text: the declared charset if it works, else UTF-8, Windows-1252, Latin-1."""
    return decode_checked(data, charset)[0]


def decode_checked(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """`decode_bytes`, plus what was wrong with CHARSET when a fallback had to be used:
    'unknown-charset:NAME' (no such codec) or 'wrong-charset:NAME' (the bytes are not in
    it); None when the declared charset (or, undeclared, UTF-8) worked."""
    problem = None
    if charset:
        try:
            return _no_surrogates(data.decode(_codec(charset))), None
        except LookupError:
            problem = f"unknown-charset:{_label(charset)}"
        except ValueError:  # UnicodeDecodeError, and codecs' own complaints
            problem = f"wrong-charset:{_label(charset)}"
    if b"\x1b$" in data and data.isascii():  # ISO-2022-JP, labeled or not; UTF-8 would "work"
        return data.decode("iso2022_jp_2", errors="replace"), problem
    for name in _FALLBACK_CHARSETS:
        try:
            return _no_surrogates(data.decode(name)), problem
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), problem


def _codec(charset: str) -> str:
    """Python's codec for a MIME charset label, via the labels mail clients really use;
    LookupError for labels that name no text charset (or one no mail is written in)."""
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name).removeprefix("x-")  # x-mac-cyrillic: mac-cyrillic
    codec = codecs.lookup(name).name
    if codec in _NOT_MAIL_CHARSETS:
        raise LookupError(codec)
    return codec


def _label(charset: str) -> str:
    """A charset label safe and short enough to name in a defect."""
    return re.sub(r"[^a-z0-9._:+-]", "", charset.lower())[:40]


def _no_surrogates(text: str) -> str:
    """TEXT without lone surrogates (UTF-7 can decode to them; no database stores them)."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", errors="replace").decode("utf-8")


def normalize_text(text: str) -> str:
    """Invisible characters dropped, odd spaces made plain, trailing blanks trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # ASCII is the common case, and replace() five times faster than translate()
    ascii_text = text.isascii()
    text = text.replace("\t", " ").replace("\x00", "") if ascii_text else text.translate(_PLAIN)
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def looks_like_message(data: bytes) -> bool:
    """Whether DATA (after `clean_bytes`) starts with mail headers rather than being text
    pasted on its own, which may well start with "Patient: ..."."""
    head = data.split(b"\n\n", 1)[0].decode("latin-1")
    lines = head.split("\n")
    if lines and lines[0].startswith("From "):  # mbox separator line
        lines = lines[1:]
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    names = {line.split(":", 1)[0].strip().lower() for line in lines if _HEADER_LINE.match(line)}
    return bool(names & _KNOWN_HEADERS)


# --- headers ----------------------------------------------------------------------------

# Spaces inside the encoded text are not allowed (RFC 2047) but common.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a raw 8-bit byte, as the email package keeps it
_SURROGATE = re.compile("[\ud800-\udfff]")
_MESSAGE_ID = re.compile(r"<([^<>]*)>")


def header_text(message: Message, name: str) -> str:
    """A header's value decoded (`decode_header_value`); '' when absent."""
    value = message.get(name)
    return "" if value is None else decode_header_value(value)


def decode_header_value(value: str | Header) -> str:
    """A raw header value as text, white space collapsed.

    Raw 8-bit bytes (which the email package keeps as surrogate escapes, or wraps in a
    Header) and RFC 2047 encoded words are decoded with the same charset fallbacks as
    bodies; an encoded word that cannot be decoded is kept as written.
    """
    if isinstance(value, Header):
        value = "".join(
            chunk.decode("ascii", "surrogateescape") if isinstance(chunk, bytes) else chunk
            for chunk, _charset in decode_header(value)
        )
    text = " ".join(str(value).split())  # unfolded first: some fold inside encoded words
    text = " ".join(_decode_words(text).split()) if "=?" in text else _raw_text(text)
    return _no_surrogates(text)


def _raw_text(text: str) -> str:
    """TEXT with the raw 8-bit bytes the email package kept as surrogate escapes decoded."""
    if _ESCAPED_BYTE.search(text) is None:
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


def _decode_words(text: str) -> str:
    """TEXT with its RFC 2047 encoded words decoded.

    White space between two encoded words is dropped, and adjacent words in one charset
    are decoded together: senders split multi-byte characters across words.
    """
    out: list[str] = []
    run = bytearray()  # bytes of adjacent encoded words in one charset
    run_charset = ""

    def flush() -> None:
        if run:
            out.append(decode_bytes(bytes(run), run_charset))
            run.clear()

    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if between and not (position and between.isspace()):
            flush()
            out.append(_raw_text(between))
        position = match.end()
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        try:
            data = _word_bytes(match.group(2).lower(), match.group(3))
        except (binascii.Error, ValueError):
            flush()
            out.append(_raw_text(match.group(0)))
            continue
        if charset.lower() != run_charset.lower():
            flush()
        run += data
        run_charset = charset
    flush()
    out.append(_raw_text(text[position:]))
    return "".join(out)


def _word_bytes(encoding: str, payload: str) -> bytes:
    data = payload.encode("utf-8", "surrogateescape")
    if encoding == "q":
        return binascii.a2b_qp(data, header=True)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def message_ids(value: str) -> list[str]:
    """The message ids in a Message-ID, In-Reply-To, References or Content-ID value, as
    threading compares them: without angle brackets and white space.

    Ids written without brackets count when they hold an '@' (or are all there is).
    """
    text = _no_surrogates(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    found = _MESSAGE_ID.findall(text)
    if not found:
        words = text.replace(",", " ").split()
        found = words if len(words) == 1 else [word for word in words if "@" in word]
    ids = ("".join(item.split()) for item in found)
    return [item for item in ids if item]


_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|sv|vs|antw|r|tr)\s*(?:\[\d+\])?\s*:|\s*\[external\])\s*", re.I
)


def strip_reply_prefixes(subject: str) -> str:
    """SUBJECT without the 'Re:', 'Fwd:', '[EXTERNAL]' ... that replies pile up."""
    while (stripped := _REPLY_PREFIX.sub("", subject)) != subject:
        subject = stripped
    return subject.strip()


# --- body parts -----------------------------------------------------------------------

# Deeper MIME trees are malformed or hostile; their deeper parts are not read.
_MAX_DEPTH = 100
_DEFECT_NAMES = {
    "NoBoundaryInMultipartDefect": "missing-boundary",
    "StartBoundaryNotFoundDefect": "boundary-not-found",
    "CloseBoundaryNotFoundDefect": "close-boundary-not-found",
    "MultipartInvariantViolationDefect": "",  # always comes with one of the two above
}
# A line that opens a MIME part: "--boundary", then (maybe after a blank line) a header.
_BOUNDARY_LINE = re.compile(
    rb"^--([^\s\"\\][^\n\"\\]{0,198}?)[ \t]*\n(?:[ \t]*\n)?content-[a-z0-9-]+[ \t]*:", re.I | re.M
)
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


@dataclass
class Body:
    """What one walk over a message's MIME tree finds."""

    plain: list[str] = field(default_factory=list)  # inline text/plain parts
    markup: list[str] = field(default_factory=list)  # HTML parts the text comes from if no plain
    html: list[str] = field(default_factory=list)  # every inline HTML body part, for display
    attachments: list[Message] = field(default_factory=list)  # parts that are not body text
    defects: list[str] = field(default_factory=list)  # short names of what was worked around

    def text(self) -> str:
        """The message's own text: plain text preferred, HTML converted when that is all."""
        if any(text.strip() for text in self.plain):
            return "\n\n".join(self.plain)
        return "\n\n".join(html_to_text(text) for text in self.markup)


def collect_body(message: Message) -> Body:
    """Body text, HTML and attachments of MESSAGE in one walk.

    Inline text parts are the body; of a multipart/alternative, its plain text when it
    has any. Attached messages (message/rfc822, bounces' copies) are not the sender's
    words: they are attachments, as is every part that is not inline text or HTML. A
    multipart whose boundary is missing or wrong is re-read with the boundary its body
    uses, or else read as plain text, so no text is lost.
    """
    body = Body()
    _collect(message, body, body.plain, body.markup, 0)
    return body


def content_type(part: Message) -> str:
    """PART's 'type/subtype', lowercase; text/plain when it is not one (RFC 2045)."""
    ctype = part.get_content_type()
    if _MEDIA_TYPE.fullmatch(ctype):
        return ctype
    found = _MEDIA_TYPE.match(ctype)  # "multipart/mixed\tboundary=..." (a missing ';')
    return found.group(0) if found else "text/plain"


def is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment"


def _collect(part: Message, body: Body, plain: list[str], markup: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        body.defects.append("mime-too-deep")
        return
    for defect in part.defects:
        name = type(defect).__name__
        if short := _DEFECT_NAMES.get(name, _kebab(name)):
            body.defects.append(short)
    ctype = content_type(part)
    if is_attachment(part) or ctype.startswith("message/"):
        body.attachments.append(part)
    elif part.is_multipart():
        children = part.get_payload()
        if ctype != "multipart/alternative":
            for child in children:
                _collect(child, body, plain, markup, depth + 1)
            return
        sub_plain: list[str] = []
        sub_markup: list[str] = []
        for child in children:
            _collect(child, body, sub_plain, sub_markup, depth + 1)
        if any(text.strip() for text in sub_plain):
            plain.extend(sub_plain)
        else:
            markup.extend(sub_markup)
    elif ctype.startswith("multipart/"):  # no boundary, or not the one the body uses
        recovered = _reparse_multipart(part, ctype)
        if recovered is not None:
            body.defects.append("boundary-recovered")
            _collect(recovered, body, plain, markup, depth + 1)
        elif text := _payload_text(part, body):
            plain.append(text)
    elif ctype == "text/plain":
        plain.append(_payload_text(part, body))
    elif ctype == "text/html":
        text = _payload_text(part, body)
        markup.append(text)
        body.html.append(text)
    else:
        body.attachments.append(part)


def _kebab(defect: str) -> str:
    """'CloseBoundaryNotFoundDefect' -> 'close-boundary-not-found'."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", defect.removesuffix("Defect")).lower()


def _reparse_multipart(part: Message, ctype: str) -> Message | None:
    """PART parsed again with the boundary its body really uses (a folded boundary
    parameter unfolded, else the first '--...' line followed by a part header); None when
    there is none to find."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    declared = part.get_boundary()
    boundary = None
    if declared and "\n" in declared:
        unfolded = re.sub(r"\r?\n", "", declared).encode("utf-8", "surrogateescape")
        if b"\n--" + unfolded in b"\n" + payload:
            boundary = unfolded
    if boundary is None:
        found = _BOUNDARY_LINE.search(payload)
        if found is None or found.group(1) == (declared or "").encode("utf-8", "surrogateescape"):
            return None
        boundary = found.group(1)
    header = b'Content-Type: %s; boundary="%s"\n\n' % (ctype.encode(), boundary)
    try:
        return message_from_bytes(header + payload)
    except RecursionError:
        return None


def text_charset(part: Message) -> str | None:
    """The charset to decode PART's text with; None (UTF-8 first) for 'us-ascii', since
    8-bit text mislabeled ASCII is usually UTF-8."""
    charset = part.get_content_charset()
    return None if charset in ("us-ascii", "ascii") else charset


def _payload_text(part: Message, body: Body) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", errors="surrogateescape")
    text, problem = decode_checked(payload, text_charset(part))
    if problem:
        body.defects.append(problem)
    return text


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
        elif (
            in_signature
            or _SIGNATURE.match(line.strip())
            or line in ("--", "-- ")
            or _signs_off(line, lines[index + 1 :])
        ):
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


# Most senders sign without "-- ": a closing line, or a name with credentials, followed by
# nothing but short lines (title, practice, address, phone) and a disclaimer is a
# signature, where credentials like "CCS" and street names must not be read as clinical.
_CLOSING = re.compile(
    r"^\s*(?:thanks?(?: you)?(?: so much| again| in advance)?|thx|ty|many thanks|cheers"
    r"|(?:best|kind|warm|warmest)?\s*regards|best(?: wishes)?|sincerely|respectfully"
    r"|appreciate it|v/r)\s*[,.!]*\s*$",
    re.I,
)
_CREDENTIALED = re.compile(
    r"^\s*[A-Z][\w'.-]+(?:\s+[A-Z][\w'.-]*){0,3}\s*,\s*(?:CCS|CPC|CRC|RHIT|RHIA|COC|CPB|CCA"
    r"|CDIP|CCDS|CPMA|CEMC|CIC|CPCO|CCS-P|MBA|MHA|RN|BSN|LPN|MD|DO|PA-C|NP|CMA|CMPE)\b"
)
_DISCLAIMER = re.compile(
    r"confidential|intended (?:only )?(?:for|recipient)|privileged|disclaimer"
    r"|protected health information|if you (?:have )?received this",
    re.I,
)
_SIGNATURE_WORDS = 12


def _signs_off(line: str, rest: list[str]) -> bool:
    """Whether LINE closes the message: what follows it reads as a signature block."""
    if not (_CLOSING.match(line) or _CREDENTIALED.match(line) or _DISCLAIMER.search(line)):
        return False
    if not any(later.strip() for later in rest):
        return False  # a closing word at the very end signs nothing off
    for later in rest:
        stripped = later.strip()
        if stripped.startswith(">") or _HISTORY.match(stripped) or _ON_WROTE.match(stripped):
            break
        if _DISCLAIMER.search(stripped):
            continue
        if "?" in stripped or len(stripped.split()) > _SIGNATURE_WORDS:
            return False
    return True


def _starts_history(line: str, following: list[str]) -> bool:
    if _HISTORY.match(line):
        return True
    return bool(_OUTLOOK_FROM.match(line)) and any(_OUTLOOK_NEXT.match(f) for f in following)


def _next_nonblank_quoted(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False
