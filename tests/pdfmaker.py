"""PDFs written out by hand for the attachment tests: pages of text, hostile pages
(hundreds of thousands of empty text operators), decompression bombs and encrypted
files, built in the test rather than committed. Every patient named here is invented."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Sequence
from email.message import EmailMessage

from pypdf import PdfReader, PdfWriter

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
HOSTILE_PAGE = b"BT () Tj ET\n" * 280_000  # about 5 s of pypdf per page


def shown(phrase: str) -> bytes:
    """A content stream showing PHRASE in Helvetica."""
    return f"BT /F1 12 Tf 72 720 Td ({phrase}) Tj ET\n".encode()


def pdf(contents: Sequence[bytes], *, compressed: bool = True) -> bytes:
    """A PDF with one page per content stream of CONTENTS (Flate-compressed unless
    COMPRESSED is false), all sharing one font."""
    return pdf_of_streams([zlib.compress(c) if compressed else c for c in contents], compressed)


def pdf_of_streams(streams: Sequence[bytes], flate: bool = True) -> bytes:
    """A PDF whose pages have STREAMS, already encoded, as their content."""
    font = 3 + 2 * len(streams)
    kids = " ".join(f"{3 + 2 * page} 0 R" for page in range(len(streams)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(streams)} >>".encode(),
    ]
    for page, stream in enumerate(streams):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * page} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        flate_filter = b" /Filter /FlateDecode" if flate else b""
        objects.append(
            b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(stream), flate_filter, stream)
        )
    objects.append(_FONT)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def hostile_pdf(pages: int = 50, first: Sequence[bytes] = ()) -> bytes:
    """The issue's PDF: PAGES pages (after the pages FIRST) of empty text operators,
    each a small compressed stream that costs pypdf seconds to read."""
    return pdf([*first, *([HOSTILE_PAGE] * pages)])


def bomb_stream(size: int) -> bytes:
    """A Flate stream that inflates to SIZE bytes: a phrase, then spaces; compressed
    piece by piece, so the test never holds it inflated either."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(shown("Made-up bomb page"))]
    chunk = b" " * (1 << 20)
    for _ in range(size >> 20):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return b"".join(parts)


def encrypted_pdf(phrase: str, password: str = "made-up-secret") -> bytes:
    """A one-page PDF showing PHRASE, encrypted (AES-256) with a user password."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([shown(phrase)]))))
    writer.encrypt(password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mail_with(
    files: Iterable[tuple[str, bytes]],
    *,
    body: str = "Which code fits the attached note?",
    message_id: str = "<pdf-question@clinic.example>",
) -> bytes:
    """A coder's question with FILES (name, PDF bytes) attached."""
    mail = EmailMessage()
    mail["From"] = "Dana Coder <coder@clinic.example>"
    mail["To"] = "consult@caseconsultant.example"
    mail["Subject"] = "Operative note attached"
    mail["Message-ID"] = message_id
    mail.set_content(body)
    for name, data in files:
        mail.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return mail.as_bytes()
