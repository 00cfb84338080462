"""Every message of the shared corpus (1,662 real and torture-test files from 18 mail
projects) parses into a record, or is rejected for a documented reason."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

import pytest

from consultant.mail.attachments import extract_pdf_text
from consultant.mail.parse import ParsedMessage, UnparsableMessage, parse_message
from tests.corpus import CORPUS, corpus_files

# The only files that are no email at all; anything else rejected is a regression.
REJECTED = {
    "flanker-dkim/tests/fixtures/messages/dkim/email.01": "empty",
    "spamscope-mail-parser/tests/mails/mail_outlook_1": "outlook-msg",
}


Corpus = dict[str, tuple[bytes, ParsedMessage | UnparsableMessage]]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    """Each corpus file (by its path in the corpus), its bytes, and what parse_message
    made of them."""
    results: Corpus = {}
    for path in corpus_files():
        raw = path.read_bytes()
        try:
            outcome: ParsedMessage | UnparsableMessage = parse_message(raw)
        except UnparsableMessage as rejected:
            outcome = rejected
        except Exception as error:  # report which file, not just the traceback
            raise AssertionError(f"{path}: {type(error).__name__}: {error}") from error
        results[path.relative_to(CORPUS).as_posix()] = (raw, outcome)
    return results


def parsed(corpus: Corpus) -> dict[str, tuple[bytes, ParsedMessage]]:
    return {
        name: (raw, outcome)
        for name, (raw, outcome) in corpus.items()
        if isinstance(outcome, ParsedMessage)
    }


def test_the_whole_corpus_is_read(corpus: Corpus) -> None:
    assert len(corpus) == 1662


def test_only_non_emails_are_rejected_each_with_a_reason(corpus: Corpus) -> None:
    rejected = {
        name: outcome
        for name, (_, outcome) in corpus.items()
        if not isinstance(outcome, ParsedMessage)
    }
    assert {name: outcome.kind for name, outcome in rejected.items()} == REJECTED
    assert all(outcome.reason.strip() for outcome in rejected.values())


def _has_plain_text(message: Message) -> bool:
    """Whether the standard library finds an inline text/plain part with some text
    outside attached messages."""
    parts = [message]
    while parts:
        part = parts.pop()
        disposition = str(part.get("Content-Disposition", "")).split(";")[0].strip().lower()
        if disposition == "attachment" or part.get_content_maintype() == "message":
            continue
        if part.is_multipart():
            parts.extend(part.get_payload())
        elif part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                return True
    return False


def test_person_mail_with_plain_text_has_text(corpus: Corpus) -> None:
    empty = [
        name
        for name, (raw, message) in parsed(corpus).items()
        if message.automated is None
        and not message.text
        and _has_plain_text(message_from_bytes(raw))
    ]
    assert empty == []


def test_no_text_field_holds_nul_cr_or_lone_surrogates(corpus: Corpus) -> None:
    for name, (_, message) in parsed(corpus).items():
        fields = [
            message.text,
            message.question,
            message.quoted,
            message.signature,
            message.subject,
            message.from_name,
            message.html or "",
            *message.extra_headers.values(),
            *(attachment.filename for attachment in message.attachments),
            *(attachment.text for attachment in message.attachments),
        ]
        for text in fields:
            assert "\x00" not in text and "\r" not in text, name
            text.encode("utf-8")  # raises on a lone surrogate, which no database stores
        assert "\n" not in message.subject and len(message.subject) <= 998, name


def test_known_hard_cases(corpus: Corpus) -> None:
    messages = {name: message for name, (_, message) in parsed(corpus).items()}
    unknown = messages["enmime/testdata/low-quality/unk-charset-part.raw"]
    assert unknown.text == "A text section"
    assert "unknown-charset:fakescii" in unknown.defects
    long_header = messages["flanker/tests/fixtures/messages/long-header.eml"]
    assert len(long_header.subject) == 998 and "subject-truncated" in long_header.defects
    tnef = messages["zbateson-mail-mime-parser/tests/_data/emails/m4006.txt"]
    assert ("winmail.dat", "application/ms-tnef") in {
        (attachment.filename, attachment.content_type) for attachment in tnef.attachments
    }
    # 3,043 MIME parts, most of them inside the attached message
    endless = messages["flanker/tests/fixtures/messages/enclosed-endless.eml"]
    assert endless.text == "Hello"
    assert [attachment.content_type for attachment in endless.attachments] == ["message/rfc822"]
    cr_only = messages["sisimai/maildir/mac/lhost-apachejames-01.eml"]
    assert "cr-line-endings" in cr_only.defects and "boundary-recovered" in cr_only.defects
    assert cr_only.text.startswith("Error: Invalid user address")
    invoice = messages["zammad/test/data/mail/mail082.box"]
    pdfs = [a for a in invoice.attachments if a.filename.endswith(".PDF")]
    assert pdfs and all(a.extraction == "pending" and a.data for a in pdfs)
    assert any(extract_pdf_text(a.data or b"", max_bytes=64 << 20, seconds=20).text for a in pdfs)
