"""A raw email (or pasted text) becomes the question: decoded, and split from history."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from consultant.mail.message import html_to_text, read_mail, split_reply

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "email"


def message(body: str, *, ctype: str = "text/plain; charset=utf-8", headers: str = "") -> bytes:
    return (
        "From: Coder <coder@example-clinic.test>\n"
        "To: questions@caseconsultant.test\n"
        "Subject: Coding question\n"
        f"{headers}"
        f"Content-Type: {ctype}\n\n{body}"
    ).encode()


def test_plain_text_without_headers_is_all_question() -> None:
    mail = read_mail(b"Is E11.22 billable?\nThanks")
    assert mail.message is None
    assert mail.subject == ""
    assert mail.question == "Is E11.22 billable?\nThanks"


def test_pasted_text_starting_like_a_header_is_not_parsed_as_one() -> None:
    mail = read_mail(b"Patient: 45 year old with knee pain\nWhat is the code?")
    assert mail.message is None
    assert mail.question.startswith("Patient: 45 year old")


def test_subject_joins_the_question_without_reply_prefixes() -> None:
    raw = message("Is it billable?").replace(
        b"Subject: Coding question", b"Subject: RE: Fwd: [EXTERNAL] E11.22 question"
    )
    mail = read_mail(raw)
    assert mail.subject == "E11.22 question"
    assert mail.question == "E11.22 question\n\nIs it billable?"


def test_encoded_word_subject_is_decoded() -> None:
    raw = message("body").replace(
        b"Subject: Coding question",
        b"Subject: =?utf-8?B?" + base64.b64encode("Frage – E11.9".encode()) + b"?=",
    )
    assert read_mail(raw).subject == "Frage – E11.9"


def test_cr_only_line_endings_are_normalized_before_parsing() -> None:
    raw = (FIXTURES / "autoreply-cr-only.eml").read_bytes()
    assert b"\n" not in raw  # the fixture really is CR-only
    mail = read_mail(raw)
    assert mail.message is not None
    assert mail.subject == "Away until May 5"
    assert mail.text.startswith("I am currently away")


def test_nul_bytes_are_removed() -> None:
    mail = read_mail(message("Is E11.\x0022 bill\x00able?"))
    assert "\x00" not in mail.text
    assert "E11.22 billable" in mail.question


def test_utf16_input_is_decoded() -> None:
    mail = read_mail("Is E11.22 billable?".encode("utf-16"))
    assert mail.question == "Is E11.22 billable?"


@pytest.mark.parametrize(
    ("charset", "payload", "expected"),
    [
        ("iso-8859-1", "Fracture du fémur".encode("latin-1"), "Fracture du fémur"),
        ("x-no-such-charset", "Fémur".encode(), "Fémur"),  # unknown name: UTF-8 fallback
        ("us-ascii", "Fémur".encode(), "Fémur"),  # mislabelled 8-bit UTF-8
        ("utf-8", "Fémur".encode("cp1252"), "Fémur"),  # wrong label: Windows-1252 fallback
    ],
)
def test_charsets_with_fallbacks(charset: str, payload: bytes, expected: str) -> None:
    raw = (
        b"From: a@example.test\nSubject: q\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\nContent-Transfer-Encoding: 8bit\n\n"
        + payload
    )
    assert read_mail(raw).text == expected


def test_quoted_printable_and_base64_bodies() -> None:
    qp = message(
        "Is E11.22 =E2=80=94 billable?",
        headers="Content-Transfer-Encoding: quoted-printable\n",
    )
    assert read_mail(qp).text == "Is E11.22 — billable?"
    b64 = message(
        base64.b64encode(b"Is N18.31 billable?").decode(),
        headers="Content-Transfer-Encoding: base64\n",
    )
    assert read_mail(b64).text == "Is N18.31 billable?"


def test_multipart_alternative_prefers_plain_text() -> None:
    raw = message(
        "--b\nContent-Type: text/plain\n\nplain version\n"
        "--b\nContent-Type: text/html\n\n<p>html version</p>\n--b--\n",
        ctype='multipart/alternative; boundary="b"',
    )
    assert read_mail(raw).text == "plain version"


def test_html_only_message_is_stripped_to_text() -> None:
    raw = message(
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Is <b>E11.22</b> billable&nbsp;with N18.31?</p><script>alert(1)</script>"
        "<div>Thanks<br>Ann</div></body></html>",
        ctype="text/html; charset=utf-8",
    )
    mail = read_mail(raw)
    assert mail.text == "Is E11.22 billable with N18.31?\n\nThanks\nAnn"
    assert "color" not in mail.text and "alert" not in mail.text


def test_html_blockquote_becomes_quoted_history() -> None:
    raw = message(
        "<div>Can 29881 go with 29877?</div><div class=gmail_quote>"
        "<div>On Mon, Apr 6, 2026 at 9:00 AM Help &lt;help@example.test&gt; wrote:</div>"
        "<blockquote>Old answer about 99213</blockquote></div>",
        ctype="text/html",
    )
    mail = read_mail(raw)
    assert "29881" in mail.question and "99213" not in mail.question
    assert "> Old answer about 99213" in mail.quoted


def test_broken_html_falls_back_to_tag_stripping() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p>E11.9 &amp; E78.5<p>") == "E11.9 & E78.5"


def test_attachments_and_attached_messages_are_not_the_question() -> None:
    raw = message(
        "--m\nContent-Type: text/plain\n\nSee attached, is 29881 right?\n"
        "--m\nContent-Type: text/plain\nContent-Disposition: attachment; filename=note.txt\n\n"
        "operative note 99999\n"
        "--m\nContent-Type: message/rfc822\n\nSubject: old\n\nforwarded 12345\n--m--\n",
        ctype='multipart/mixed; boundary="m"',
    )
    mail = read_mail(raw)
    assert mail.text == "See attached, is 29881 right?"


def test_on_wrote_and_quoted_lines_are_history() -> None:
    own, quoted, signature = split_reply(
        "Thanks, and what about E11.9?\n\n"
        "On Fri, Apr 10, 2026 at 4:01 PM CaseConsultant <help@example.test>\n"
        "wrote:\n> E11.22 is billable.\n> Source: ICD-10-CM"
    )
    assert own == "Thanks, and what about E11.9?"
    assert "E11.22" in quoted and "wrote:" in quoted
    assert signature == ""


def test_inline_answers_between_quotes_stay_the_senders() -> None:
    own, quoted, _ = split_reply(
        "Jane Coder wrote:\n> Which code?\nE11.9 I think\n> And the CKD stage?\nN18.31"
    )
    assert own == "E11.9 I think\nN18.31"
    assert quoted == "Jane Coder wrote:\n> Which code?\n> And the CKD stage?"


@pytest.mark.parametrize(
    "marker",
    [
        "-----Original Message-----",
        "----- Forwarded message -----",
        "From: Help Desk <help@example.test>\nSent: Friday, April 10, 2026 4:01 PM",
        "________________________________\nFrom: Help Desk",
    ],
)
def test_outlook_style_history_runs_to_the_end(marker: str) -> None:
    own, quoted, _ = split_reply(f"New question: N18.31?\n\n{marker}\nTo: x\n\nOld 99213 text")
    assert own == "New question: N18.31?"
    assert quoted.endswith("Old 99213 text")


def test_signature_is_split_off() -> None:
    raw = message("Is 29881 billable?\n\n-- \nDana, CPC\nPhone (919) 555-0142\n")
    mail = read_mail(raw)
    assert mail.question == "Coding question\n\nIs 29881 billable?"
    assert mail.signature == "--\nDana, CPC\nPhone (919) 555-0142"
    assert "555-0142" in mail.text  # the full text keeps everything


def test_mobile_signature_line_starts_the_signature() -> None:
    own, _, signature = split_reply("Is E11.9 ok?\n\nSent from my iPhone")
    assert own == "Is E11.9 ok?"
    assert signature == "Sent from my iPhone"


def test_example_question_keeps_only_the_new_text() -> None:
    mail = read_mail((Path(__file__).parents[1] / "examples" / "question.eml").read_bytes())
    assert "29881" in mail.question and "E11.22" in mail.question
    assert "99213" not in mail.question  # only in the quoted earlier answer
    assert "NPI" not in mail.question and "NPI" in mail.signature


def test_every_message_of_the_shared_corpus_parses() -> None:
    assert CORPORA.is_dir(), f"{CORPORA} is missing; CI keeps ../shared beside the checkout"
    files = [
        p for p in CORPORA.rglob("*") if p.is_file() and p.name not in ("MANIFEST.txt", "STATS.txt")
    ]
    assert len(files) > 1000
    for path in files:
        mail = read_mail(path.read_bytes())
        assert "\x00" not in mail.text and "\r" not in mail.text, path


def test_a_signature_without_dashes_is_split_off() -> None:
    """Credentials ("CCS", "CPC") and street names in a sign-off are no clinical words."""
    own, _, signature = split_reply(
        "What is the dx code for a stage 3 sacral pressure ulcer?\n\n"
        "Thanks,\nJane Doe, CCS, CPC\nBilling Manager | Sunrise Family Practice\n"
        "1234 Main Street, Suite 200, Springfield, IL 62701\nPhone 555-010-1234\n"
        "CONFIDENTIALITY NOTICE: This e-mail may contain protected health information. If "
        "you have received this message in error, please notify the sender and delete it.\n"
    )
    assert own == "What is the dx code for a stage 3 sacral pressure ulcer?"
    assert "CCS" in signature and "Main Street" in signature and "CONFIDENTIALITY" in signature


def test_a_closing_followed_by_more_questions_is_not_a_signature() -> None:
    own, _, signature = split_reply(
        "Is E11.9 billable?\nThanks,\nalso, can 99213 go with 20610 on the same day? We "
        "billed them last week and the payer denied the injection.\n"
    )
    assert "99213" in own and signature == ""
