"""Raw message bytes become a ticket message record, or a rejection with a reason.

Every message here is made up in the test; the patients and senders are invented.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultant.mail.attachments import extract_pdf_text
from consultant.mail.parse import MAX_REFERENCES, UnparsableMessage, parse_message

HEADERS = (
    "From: Dana Coder <dana@example-clinic.test>\n"
    "To: questions@caseconsultant.test\n"
    "Subject: Knee scope question\n"
    "Date: Tue, 14 Apr 2026 09:12:40 -0400\n"
    "Message-ID: <q1@example-clinic.test>\n"
)


def message(body: str, *, ctype: str = "text/plain; charset=utf-8", headers: str = "") -> bytes:
    return f"{HEADERS}{headers}MIME-Version: 1.0\nContent-Type: {ctype}\n\n{body}".encode()


def tiny_pdf(phrase: str) -> bytes:
    """A one-page PDF that shows PHRASE in Helvetica, written out by hand."""
    stream = f"BT /F1 12 Tf 72 720 Td ({phrase}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


def with_attachments(*files: tuple[str, str, bytes]) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Dana Coder <dana@example-clinic.test>"
    mail["To"] = "questions@caseconsultant.test"
    mail["Subject"] = "Operative note attached"
    mail.set_content("Which CPT code fits the attached note?\n")
    for filename, ctype, data in files:
        maintype, subtype = ctype.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


# --- what every message gets ------------------------------------------------------------


def test_a_plain_question_becomes_its_record() -> None:
    raw = message(
        "Is 29881 billable with 29877-59?\n\n"
        "On Mon, Apr 13, 2026 at 9:00 AM Help <help@caseconsultant.test> wrote:\n"
        "> Please send the operative note.\n\n"
        "-- \nDana Coder, CPC\n",
        headers="In-Reply-To: <a1@caseconsultant.test>\n"
        "Reply-To: Billing <BILLING@Example-Clinic.test>\n"
        "Cc: Lee <lee@example-clinic.test>, lee@example-clinic.test\n",
    )
    parsed = parse_message(raw)
    assert parsed.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert parsed.size == len(raw)
    assert (parsed.from_name, parsed.from_address) == ("Dana Coder", "dana@example-clinic.test")
    assert parsed.reply_to == "billing@example-clinic.test"
    assert parsed.to == ("questions@caseconsultant.test",)
    assert parsed.cc == ("lee@example-clinic.test",)
    assert parsed.in_reply_to == ("a1@caseconsultant.test",)
    assert parsed.subject == "Knee scope question"
    assert parsed.question == "Is 29881 billable with 29877-59?"
    assert parsed.quoted.endswith("> Please send the operative note.")
    assert parsed.signature == "--\nDana Coder, CPC"
    # the full text keeps everything the sender sent
    assert "29881" in parsed.text and "operative note" in parsed.text and "CPC" in parsed.text
    assert parsed.html is None and parsed.attachments == ()
    assert parsed.automated is None and not parsed.bounce and not parsed.list_mail
    assert parsed.defects == ()


def test_reply_prefixes_stay_in_the_subject() -> None:
    raw = message("x").replace(b"Subject: Knee", b"Subject: RE: Fwd: Knee")
    assert parse_message(raw).subject == "RE: Fwd: Knee scope question"


def test_outlook_history_is_quoted_and_text_keeps_it() -> None:
    parsed = parse_message(
        message(
            "Can we bill N18.31 here?\n\n-----Original Message-----\nFrom: Help Desk\n"
            "Sent: Friday, April 10, 2026 4:01 PM\n\nUse E11.22 for patient Jane Testperson."
        )
    )
    assert parsed.question == "Can we bill N18.31 here?"
    assert parsed.quoted.startswith("-----Original Message-----")
    assert "Jane Testperson" in parsed.quoted and "Jane Testperson" not in parsed.question
    assert parsed.text.startswith("Can we bill N18.31 here?") and "E11.22" in parsed.text


# --- bytes and charsets ----------------------------------------------------------------------


def test_cr_only_line_endings_keep_all_text() -> None:
    body = "First line about 29881.\nSecond line about E11.22.\n\nLast line."
    parsed = parse_message(message(body).replace(b"\n", b"\r"))
    assert parsed.subject == "Knee scope question"
    assert parsed.from_address == "dana@example-clinic.test"
    assert parsed.text == body
    assert "cr-line-endings" in parsed.defects


def test_nul_bytes_are_removed() -> None:
    parsed = parse_message(message("Is E11.\x0022 bill\x00able?").replace(b"Knee", b"Kn\x00ee"))
    assert parsed.text == "Is E11.22 billable?"
    assert parsed.subject == "Knee scope question"
    assert "nul-bytes" in parsed.defects


def test_unknown_charset_falls_back() -> None:
    parsed = parse_message(
        message("Fracture du fémur, S72.001A?", ctype="text/plain; charset=fakescii")
    )
    assert parsed.text == "Fracture du fémur, S72.001A?"
    assert "unknown-charset:fakescii" in parsed.defects


def test_wrong_charset_falls_back_to_windows_1252() -> None:
    raw = message("x", headers="Content-Transfer-Encoding: 8bit\n").replace(
        b"\n\nx", b"\n\n" + "Fémur – S72.001A".encode("cp1252")
    )
    parsed = parse_message(raw)
    assert parsed.text == "Fémur – S72.001A"
    assert "wrong-charset:utf-8" in parsed.defects


def test_encoded_and_raw_8bit_headers_are_decoded() -> None:
    raw = message("x").replace(
        b"Subject: Knee scope question",
        b"Subject: =?utf-8?B?"
        + base64.b64encode("Frage zur Kniearthroskopie –".encode())
        # a multi-byte character split across two encoded words, folded in between
        + b"?=\n =?utf-8?Q?_=C3?= =?utf-8?Q?=BC?=ber 29881",
    )
    raw = raw.replace(b"Dana Coder <", "Dana Cöder <".encode())  # raw UTF-8, no encoding
    parsed = parse_message(raw)
    assert parsed.subject == "Frage zur Kniearthroskopie – über 29881"
    assert parsed.from_name == "Dana Cöder"


def test_long_subject_is_capped_to_one_line() -> None:
    long = "Coding question " * 8000  # 128,000 characters
    raw = message("x").replace(b"Subject: Knee scope question", f"Subject: {long}".encode())
    parsed = parse_message(raw)
    assert len(parsed.subject) == 998
    assert parsed.subject.startswith("Coding question Coding")
    assert "subject-truncated" in parsed.defects
    assert len(parse_message(raw, max_header_chars=100).subject) == 100


def test_control_characters_leave_the_subject() -> None:
    raw = message("x").replace(
        b"Subject: Knee scope question", b"Subject: =?utf-8?Q?Knee=0D=0A=00scope=07_question?="
    )
    assert parse_message(raw).subject == "Knee scope question"  # line breaks: white space


# --- MIME structure -------------------------------------------------------------------------


def test_missing_boundary_is_recovered_from_the_body() -> None:
    body = (
        "--b1\nContent-Type: text/plain\n\nIs 99213-25 right with 20610?\n"
        "--b1\nContent-Type: text/html\n\n<p>html version</p>\n--b1--\n"
    )
    parsed = parse_message(message(body, ctype="multipart/alternative"))
    assert parsed.text == "Is 99213-25 right with 20610?"
    assert parsed.html == "<p>html version</p>"
    assert "missing-boundary" in parsed.defects and "boundary-recovered" in parsed.defects


def test_multipart_without_any_boundary_is_read_as_text() -> None:
    parsed = parse_message(message("Is G0439 billable twice a year?\n", ctype="multipart/mixed"))
    assert parsed.text == "Is G0439 billable twice a year?"
    assert "missing-boundary" in parsed.defects


def test_html_only_body_gives_text_and_sanitized_html() -> None:
    markup = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body onload=x()>"
        "<p onclick=steal()>Is <b>E11.22</b> billable&nbsp;with N18.31?</p>"
        "<script>alert('hi')</script><img src=x onerror=alert(1)>"
        '<img src="https://tracker.example.test/open.gif" alt="pixel">'
        '<img src="cid:logo@example-clinic.test" alt="logo">'
        '<p><a href="javascript:alert(\'x\')">link</a> <a href="https://example.test/">site</a></p>'
        "</body></html>"
    )
    parsed = parse_message(message(markup, ctype="text/html; charset=utf-8"))
    assert parsed.text == "Is E11.22 billable with N18.31?\n\nlink site"
    assert "alert" not in parsed.text and "color" not in parsed.text
    html = parsed.html
    assert html is not None and "E11.22" in html
    for bad in ("<script", "onerror", "onclick", "onload", "javascript:", "<style", "tracker"):
        assert bad not in html.lower(), bad
    assert 'src="cid:logo@example-clinic.test"' in html
    assert 'href="https://example.test/"' in html


def test_a_huge_deeply_nested_html_body_is_sanitized_quickly() -> None:
    markup = "<p>Is 29881 billable?</p>" + "<div>" * 50_000 + "deep" + "</div>" * 50_000
    parsed = parse_message(message(markup, ctype="text/html"))
    assert parsed.html is not None and parsed.html.startswith("<p>Is 29881 billable?</p>")
    assert parsed.text.startswith("Is 29881 billable?")


def test_mime_nested_beyond_what_python_can_follow_is_rejected() -> None:
    raw = b"Content-Type: text/plain\n\nhello\n"
    for level in range(3000):
        raw = b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n%s\n--b%d--\n' % (
            level,
            level,
            raw,
            level,
        )
    with pytest.raises(UnparsableMessage) as rejected:
        parse_message(HEADERS.encode() + raw)
    assert rejected.value.kind == "too-deep"


# --- attachments --------------------------------------------------------------------------


def test_attachments_are_kept_until_the_cap() -> None:
    first, second, third = b"A" * 600, b"B" * 600, b"C" * 100
    raw = with_attachments(
        ("first.bin", "application/octet-stream", first),
        ("second.bin", "application/octet-stream", second),
        ("third.bin", "application/octet-stream", third),
    )
    parsed = parse_message(raw, max_attachment_bytes=1000)
    kept = {a.filename: a for a in parsed.attachments}
    assert kept["first.bin"].data == first
    assert kept["second.bin"].data is None  # over the cap: metadata only
    assert kept["second.bin"].size == 600
    assert kept["second.bin"].sha256 == hashlib.sha256(second).hexdigest()
    assert kept["third.bin"].data == third  # still fits after the big one
    assert "attachment-cap-reached" in parsed.defects
    assert parsed.text == "Which CPT code fits the attached note?"


def test_pdf_attachments_are_kept_for_their_text_to_be_read_later() -> None:
    """Parsing never reads a PDF (a hostile one would hold the commit); it is marked
    pending, and extract_pdf_text reads it (see tests/test_pdf_text.py)."""
    raw = with_attachments(
        ("op-note.pdf", "application/pdf", tiny_pdf("Arthroscopy for Jane Testpatient 29881")),
        ("broken.pdf", "application/pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog"),
    )
    note, broken = parse_message(raw).attachments
    assert (note.filename, note.content_type) == ("op-note.pdf", "application/pdf")
    assert (note.text, note.extraction) == ("", "pending")
    assert note.data is not None
    read = extract_pdf_text(note.data, max_bytes=1 << 20, seconds=20)
    assert "Arthroscopy for Jane Testpatient 29881" in read.text
    assert broken.extraction == "pending" and broken.data is not None


def test_text_attachments_give_text_and_names_are_cleaned() -> None:
    raw = with_attachments(("../../etc/notes.txt", "text/plain", b"Dx: M17.11\r\n"))
    raw = raw.replace(
        b'filename="../../etc/notes.txt"', b"filename*=utf-8''..%2F..%2Fn%C3%B6te.txt"
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "nöte.txt"
    assert attachment.text == "Dx: M17.11"
    assert not attachment.inline


def test_inline_images_and_winmail_dat() -> None:
    raw = message(
        '--m\nContent-Type: text/html\n\n<p>See <img src="cid:scan@x"></p>\n'
        "--m\nContent-Type: image/png\nContent-ID: <scan@x>\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(b"\x89PNG fake").decode()
        + "\n--m\nContent-Type: application/ms-tnef; name=winmail.dat\n"
        "Content-Disposition: attachment; filename=winmail.dat\n"
        "Content-Transfer-Encoding: base64\n\neJ8+IgEA\n--m--\n",
        ctype='multipart/related; boundary="m"',
    )
    image, tnef = parse_message(raw).attachments
    assert (image.inline, image.content_id, image.data) == (True, "scan@x", b"\x89PNG fake")
    assert (tnef.filename, tnef.content_type, tnef.inline) == (
        "winmail.dat",
        "application/ms-tnef",
        False,
    )


# --- threading headers and dates ---------------------------------------------------------


def test_message_ids_are_normalized() -> None:
    raw = message("x").replace(
        b"Message-ID: <q1@example-clinic.test>", b"Message-ID:   \n  < q1@example-clinic.test >  "
    )
    assert parse_message(raw).message_id == "q1@example-clinic.test"
    blank = message("x").replace(b"<q1@example-clinic.test>", b"<>")
    assert parse_message(blank).message_id is None
    bare = message("x").replace(b"<q1@example-clinic.test>", b"q1@example-clinic.test")
    assert parse_message(bare).message_id == "q1@example-clinic.test"


def test_references_keep_their_order_and_the_last_fifty() -> None:
    ids = [f"<r{n}@example.test>" for n in range(60)]
    references = "References: " + "\n ".join(ids) + " <r5@example.test>\n"
    parsed = parse_message(message("x", headers=references))
    assert len(parsed.references) == MAX_REFERENCES
    assert parsed.references == tuple(f"r{n}@example.test" for n in range(10, 60))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 Apr 2026 09:12:40 -0400", datetime(2026, 4, 14, 13, 12, 40, tzinfo=UTC)),
        ("14 Apr 2026 23:30:00 +0900", datetime(2026, 4, 14, 14, 30, tzinfo=UTC)),
        ("Tue, 14 Apr 2026 09:12:40 -0000", datetime(2026, 4, 14, 9, 12, 40, tzinfo=UTC)),
        ("2026-04-14T09:12:40+02:00", datetime(2026, 4, 14, 7, 12, 40, tzinfo=UTC)),
        ("next Tuesday", None),
    ],
)
def test_dates_become_utc(value: str, expected: datetime | None) -> None:
    raw = message("x").replace(b"Tue, 14 Apr 2026 09:12:40 -0400", value.encode())
    parsed = parse_message(raw)
    assert parsed.date == expected
    assert parsed.date is None or parsed.date.tzinfo is UTC
    assert ("unparseable-date" in parsed.defects) is (expected is None)


def test_sender_stands_in_for_a_missing_from_address() -> None:
    raw = message("x", headers="Sender: Front Desk <desk@example-clinic.test>\n").replace(
        b"From: Dana Coder <dana@example-clinic.test>", b"From: Dana Coder"
    )
    parsed = parse_message(raw)
    assert (parsed.from_name, parsed.from_address) == ("Dana Coder", "desk@example-clinic.test")


def test_a_message_without_from_is_parsed_not_rejected() -> None:
    raw = message("Is 99214 right?").replace(b"From: Dana Coder <dana@example-clinic.test>\n", b"")
    parsed = parse_message(raw)
    assert (parsed.from_name, parsed.from_address) == ("", None)
    assert parsed.text == "Is 99214 right?"


def test_machine_mail_is_flagged_and_its_headers_kept() -> None:
    parsed = parse_message(
        message(
            "I am out of the office.",
            headers="Auto-Submitted: auto-replied\nPrecedence: bulk\nReturn-Path: <>\n"
            "List-Id: Coders <coders.example.test>\nX-CaseConsultant-Ticket: T-1042\n",
        )
    )
    assert parsed.automated == "Auto-Submitted header is 'auto-replied'"
    assert parsed.list_mail
    assert dict(parsed.extra_headers) == {
        "auto-submitted": "auto-replied",
        "precedence": "bulk",
        "return-path": "<>",
        "list-id": "Coders <coders.example.test>",
        "x-caseconsultant-ticket": "T-1042",
    }


def test_delivery_reports_are_bounces() -> None:
    report = (
        "--r\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\n"
        "Final-Recipient: rfc822; gone@example.test\nAction: failed\nStatus: 5.1.1\n"
        "--r\nContent-Type: message/rfc822\n\nSubject: Your answer\n\nE11.22 is billable.\n--r--\n"
    )
    parsed = parse_message(
        message(report, ctype='multipart/report; report-type=delivery-status; boundary="r"')
    )
    assert parsed.bounce
    assert parsed.text == "Your message could not be delivered."
    status, original = parsed.attachments
    assert status.content_type == "message/delivery-status"
    assert original.content_type == "message/rfc822"
    assert original.data is not None and b"E11.22 is billable." in original.data


# --- what is rejected, and what is not ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (b"", "empty", "empty message (0 bytes)"),
        (b" \r\n\t\x00\n", "blank", "blank message (6 bytes of white space or NUL bytes only)"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096),
            "outlook-msg",
            "an Outlook .msg file, not an RFC 5322 message; ask the sender to forward it as email",
        ),
        (tiny_pdf("x"), "binary", "a PDF file without mail headers"),
        (bytes(range(256)) * 8, "binary", "binary data without mail headers"),
    ],
)
def test_what_is_not_an_email_is_rejected_with_a_reason(raw: bytes, kind: str, reason: str) -> None:
    with pytest.raises(UnparsableMessage) as rejected:
        parse_message(raw)
    assert rejected.value.kind == kind
    assert rejected.value.reason.startswith(reason)
    assert str(rejected.value) == rejected.value.reason


def test_text_without_headers_is_a_message_without_sender() -> None:
    parsed = parse_message(b"Patient: 45 year old with knee pain\nWhat is the code?")
    assert parsed.text == "Patient: 45 year old with knee pain\nWhat is the code?"
    assert (parsed.subject, parsed.from_address, parsed.message_id) == ("", None, None)
    assert "no-headers" in parsed.defects


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([b"", HEADERS.encode(), message("x")]))
def test_any_bytes_parse_or_are_rejected(noise: bytes, prefix: bytes) -> None:
    try:
        parsed = parse_message(prefix + noise)
    except UnparsableMessage as rejected:
        assert rejected.reason
        return
    for text in (parsed.text, parsed.subject, parsed.question, parsed.from_name):
        assert "\x00" not in text and "\r" not in text
        text.encode("utf-8")  # no lone surrogates: every field can be stored
