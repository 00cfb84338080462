"""Composing what we send: the consultant's reply, the acknowledgement of a new ticket
and the decline to a sender outside the allowlist, each from its Jinja2 template.

Nothing a customer wrote reaches a header unchecked: subjects lose line breaks and
control characters, addresses must be plain addr-specs, and Message-IDs we continue
must be single tokens. The customer's own words are never quoted into what we send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import jinja2

from consultant.config import Config
from consultant.mail.addresses import is_addr_spec
from consultant.templating import template_environment
from consultant.tickets.models import Message, ticket_reference

REPLY_TEXT = "mail/reply.txt.j2"
REPLY_HTML = "mail/reply.html.j2"
ACKNOWLEDGEMENT = "mail/acknowledgement.txt.j2"
DECLINE = "mail/not_allowed.txt.j2"
FOOTER = "mail/footer.txt.j2"

SUBJECT_LIMIT = 200  # characters of the customer's subject kept before our tag
REFERENCES_KEPT = 20  # RFC 5322 lets a long References chain be trimmed; keep the ends

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|fwd?|wg)\s*(\[\d+\])?\s*:\s*)+", re.I)
_TAG = re.compile(r"\s*\[CC-\d+\]", re.I)
_MESSAGE_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]{1,250}")  # printable, no < or >


@dataclass(frozen=True)
class Outgoing:
    """An email ready to queue: addresses, threading and both bodies."""

    to: list[str]
    cc: list[str]
    subject: str
    in_reply_to: list[str]
    references: list[str]
    text: str
    html: str | None = None


def plain_lines(text: str) -> str:
    """TEXT with LF line ends and no NUL: browsers post a textarea with CRLF, the
    reply's templates find paragraphs by blank lines, and PostgreSQL refuses a NUL."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def one_line(text: str) -> str:
    """TEXT fit for a header: line breaks and control characters become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def reply_subject(subject: str, ticket_id: int | None) -> str:
    """`Re: <the customer's subject> [CC-000123]`, with one Re: and one tag however
    often the thread went back and forth."""
    bare = _TAG.sub("", _REPLY_PREFIX.sub("", one_line(subject))).strip()
    if len(bare) > SUBJECT_LIMIT:
        bare = bare[:SUBJECT_LIMIT].rstrip() + "…"
    parts = ["Re:", bare or "Your coding question"]
    if ticket_id is not None:
        parts.append(f"[{ticket_reference(ticket_id)}]")
    return " ".join(parts)


def safe_addresses(addresses: Iterable[str | None], exclude: Iterable[str] = ()) -> list[str]:
    """Plain addr-specs from ADDRESSES, each once, leaving out EXCLUDE (our own)."""
    excluded = {a.lower() for a in exclude}
    kept: dict[str, None] = {}
    for address in addresses:
        if address and is_addr_spec(address) and address.lower() not in excluded:
            kept.setdefault(address.lower())
    return list(kept)


def thread_ids(message: Message) -> tuple[list[str], list[str]]:
    """In-Reply-To and References for an answer to MESSAGE: its own id, after the
    chain it continued (the first and the newest kept when the chain is long)."""
    if not message.message_id or not _MESSAGE_ID.fullmatch(message.message_id):
        return [], []
    chain = [i for i in message.references if _MESSAGE_ID.fullmatch(i)]
    chain = [i for i in dict.fromkeys(chain) if i != message.message_id]
    if len(chain) >= REFERENCES_KEPT:
        chain = [chain[0], *chain[-(REFERENCES_KEPT - 2) :]]
    return [message.message_id], [*chain, message.message_id]


class Composer:
    """Renders our emails from the templates (the operator's override folder first)."""

    def __init__(
        self,
        templates: jinja2.Environment,
        *,
        service_name: str,
        our_addresses: Sequence[str],
        due_hours: int,
    ) -> None:
        self.templates = templates
        self.service_name = service_name
        self.our_addresses = tuple(our_addresses)
        self.due_hours = due_hours

    @classmethod
    def from_config(cls, config: Config) -> Composer:
        return cls(
            template_environment(config.drafting.templates_dir),
            service_name=config.drafting.service_name,
            our_addresses=config.ingest.our_addresses,
            due_hours=config.ingest.due_hours,
        )

    def _render(self, name: str, **context: object) -> str:
        return self.templates.get_template(name).render(service_name=self.service_name, **context)

    def _footer(self, reference: str | None) -> str:
        return self._render(FOOTER, reference=reference).strip()

    def _answer_to(self, message: Message) -> list[str]:
        return safe_addresses([message.reply_to or message.from_address], self.our_addresses)

    def _answer(
        self, question: Message, ticket_id: int | None, text: str, html: str | None = None
    ) -> Outgoing:
        """An answer to QUESTION: to its sender, continuing its thread."""
        in_reply_to, references = thread_ids(question)
        return Outgoing(
            to=self._answer_to(question),
            cc=[],
            subject=reply_subject(question.subject, ticket_id),
            in_reply_to=in_reply_to,
            references=references,
            text=text,
            html=html,
        )

    def reply(
        self, ticket_id: int, question: Message, body: str, *, to: str | None, cc: Sequence[str]
    ) -> Outgoing:
        """The consultant's approved answer to QUESTION, the customer's message it
        answers, continuing its thread: to TO (the ticket's address of record, whoever
        wrote QUESTION) and copied to CC, the addresses the consultant chose."""
        reference = ticket_reference(ticket_id)
        context = {
            "body": plain_lines(body).strip(),
            "reference": reference,
            "footer": self._footer(reference),
        }
        answer = self._answer(
            question,
            ticket_id,
            self._render(REPLY_TEXT, **context),
            self._render(REPLY_HTML, **context),
        )
        recipients = safe_addresses([to], self.our_addresses)
        return replace(
            answer, to=recipients, cc=safe_addresses(cc, [*self.our_addresses, *recipients])
        )

    def acknowledgement(self, ticket_id: int, question: Message) -> Outgoing:
        """Tells the customer their question arrived and which reference it has."""
        reference = ticket_reference(ticket_id)
        text = self._render(
            ACKNOWLEDGEMENT,
            reference=reference,
            due_hours=self.due_hours,
            footer=self._footer(reference),
        )
        return self._answer(question, ticket_id, text)

    def decline(self, question: Message) -> Outgoing:
        """The 'subscribers only' answer; it names no ticket because none was opened."""
        return self._answer(question, None, self._render(DECLINE, footer=self._footer(None)))
