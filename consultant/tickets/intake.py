"""Where a message becomes a ticket.

Every ingress (IMAP poller, pipe, SMTP) hands raw bytes here and gets one Outcome per
message. The raw message and everything parsed from it are committed in one
transaction before the ingress acknowledges anything (moves the IMAP message, exits 0,
answers 250), and the database's unique Message-ID key makes a second delivery of the
same message a `duplicate` however it arrives, so a crash at any point loses nothing
and doubles nothing.

Decisions, in order: unparsable input is rejected with its reason; a message seen
before is a duplicate (our own outbound mail coming back is ignored); mail from our
own addresses, auto-replies, bounces and list mail are recorded and ignored; a flooding
sender is rate-limited; a reply joins its thread (and reopens it); a sender outside the
allowlist is held or declined; everything else opens a new ticket.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from consultant.config import IngestConfig
from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.logs import log_event
from consultant.mail.message import strip_reply_prefixes
from consultant.mail.parse import ParsedMessage, UnparsableMessage, parse_message
from consultant.tickets.declines import DECLINE_REASON, queue_decline
from consultant.tickets.models import (
    REOPENED_BY_REPLY,
    Attachment,
    Message,
    RejectedMessage,
    Ticket,
    ticket_reference,
)
from consultant.tickets.rows import RowWriter
from consultant.tickets.rules import domain_of, is_allowed, is_ours, over_rate_limit
from consultant.tickets.threading import Thread, find_thread

log = logging.getLogger(__name__)

STATUSES = ("created", "appended", "duplicate", "ignored", "rejected")


@dataclass(frozen=True)
class Outcome:
    """What became of one message: its ticket (a reference, when it has one), one of
    STATUSES, and why in words a consultant understands."""

    status: str
    ticket: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return {"ticket": self.ticket, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class _Dedupe:
    key: str
    seen: tuple[int, str, int | None] | None  # (message id, direction, ticket id)
    variant_of: tuple[int, str, int | None] | None


@dataclass(frozen=True)
class _Prepared:
    raw: bytes
    sha256: str
    source: str
    parsed: ParsedMessage | None
    rejection: str | None


class Intake:
    """Turns raw messages into tickets in ENGINE's database under CONFIG's rules."""

    def __init__(
        self, engine: Engine, config: IngestConfig, *, service_name: str = "CaseConsultant"
    ) -> None:
        self.engine = engine
        self.config = config
        self.service_name = service_name
        ours = config.our_addresses
        self.our_domain = domain_of(ours[0]) if ours else "caseconsultant.invalid"

    def accept(self, raw: bytes, source: str) -> Outcome:
        return self.accept_batch([raw], source)[0]

    def accept_batch(
        self,
        raws: Sequence[bytes],
        source: str,
        *,
        also: Callable[[Session], None] | None = None,
    ) -> list[Outcome]:
        """Store RAWS in one transaction; one message's bad data never spoils the others.

        ALSO runs in the same transaction (the IMAP poller records how far it has read
        there, so progress and tickets commit together). Raises DatabaseUnavailable
        (nothing stored) when the database cannot be reached; the caller keeps the
        messages and tries again later.
        """
        prepared = [self._prepare(raw, source) for raw in raws]
        with transaction(self.engine) as session:
            writer = RowWriter(session)
            outcomes = [self._store(writer, item) for item in prepared]
            if also is not None:
                also(session)
        for item, outcome in zip(prepared, outcomes, strict=True):
            log_event(
                log,
                "message",
                source=source,
                sha256=item.sha256[:16],
                size=len(item.raw),
                status=outcome.status,
                ticket=outcome.ticket or "-",
                reason=outcome.reason or "-",
            )
        return outcomes

    def reject_oversized(self, session: Session, header: bytes, size: int, source: str) -> Outcome:
        """Record a message too big to fetch whole, keeping its header for a person to
        see who sent it (the IMAP poller's case; the message stays on the server)."""
        item = _Prepared(
            header, hashlib.sha256(header).hexdigest(), source, None, self._too_big(size)
        )
        return self._store(RowWriter(session), item)

    def _too_big(self, size: int) -> str:
        return (
            f"message of {size:,} bytes is over the {self.config.max_message_bytes:,}-byte "
            "limit ([ingest] max_message_bytes); ask the sender to send smaller files"
        )

    def _prepare(self, raw: bytes, source: str) -> _Prepared:
        sha256 = hashlib.sha256(raw).hexdigest()
        if len(raw) > self.config.max_message_bytes:
            return _Prepared(raw, sha256, source, None, self._too_big(len(raw)))
        try:
            parsed = parse_message(raw, max_attachment_bytes=self.config.max_attachment_bytes)
        except UnparsableMessage as exc:
            return _Prepared(raw, sha256, source, None, exc.reason)
        return _Prepared(raw, sha256, source, parsed, None)

    def _store(self, w: RowWriter, item: _Prepared) -> Outcome:
        """Decide and store ITEM inside a savepoint; a unique-key race with another
        ingress (the same message arriving twice at once) is retried once, and then
        finds the other's row."""
        for attempt in range(2):
            try:
                with w.session.begin_nested():
                    return self._decide(w, item)
            except IntegrityError:
                w.forget()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _decide(self, w: RowWriter, item: _Prepared) -> Outcome:
        session = w.session
        parsed = item.parsed
        if parsed is None:
            return self._reject(w, item, item.rejection or "unparsable")
        dedupe = self._dedupe(session, parsed, item.sha256)
        if dedupe.seen is not None:
            seen_id, direction, ticket_id = dedupe.seen
            if direction == "outbound":
                reason = "our own outbound message came back"
                return Outcome("ignored", _reference(ticket_id), reason)
            return Outcome(
                "duplicate", _reference(ticket_id), f"already received (message {seen_id})"
            )
        key = dedupe.key
        if dedupe.variant_of is not None:
            first_id, _direction, ticket_id = dedupe.variant_of
            return self._keep_variant(w, item, parsed, key, first_id, ticket_id)
        address = parsed.from_address or parsed.reply_to
        if address is None and not parsed.automated:
            return self._reject(w, item, "no sender address (From or Reply-To) to answer")

        message, attachments = self._message(w, item, parsed, key)
        if is_ours(address, self.config):
            reason = "sent from one of our own addresses"
            return self._ignore(w, message, attachments, None, reason)
        if parsed.automated:
            thread = find_thread(session, parsed, None)
            return self._ignore(w, message, attachments, thread, parsed.automated)
        assert address is not None
        customer_id = w.customer(address, parsed.from_name)
        if (count := over_rate_limit(session, address, self.config)) is not None:
            return self._ignore(
                w,
                message,
                attachments,
                None,
                f"rate-limited: {count} messages from this sender in "
                f"{self.config.rate_window_minutes} minutes (limit {self.config.rate_limit})",
            )
        thread = find_thread(session, parsed, customer_id)
        if thread is not None:
            return self._append(w, message, attachments, thread)
        if not is_allowed(address, self.config.allow):
            if self.config.not_allowed == "decline":
                queue_decline(
                    session, parsed, our_domain=self.our_domain, service_name=self.service_name
                )
                return self._ignore(w, message, attachments, None, DECLINE_REASON)
            reason = "held: the sender is not on the allowlist"
            return self._open(w, message, attachments, customer_id, "held", reason)
        return self._open(w, message, attachments, customer_id, "new", "")

    def _dedupe(self, session: Session, parsed: ParsedMessage, sha256: str) -> _Dedupe:
        """The message's unique key, and what is stored under it already.

        The key is the Message-ID (the raw hash when there is none): the same message
        twice never makes a second ticket. Some senders reuse one Message-ID for
        different mail (fixed IDs on notifications, broken clients); a message whose
        sender, subject or text differs from the stored one is still a duplicate, but
        it is kept on the first one's thread under its ID plus a hash of its content,
        so its text is not lost.
        """
        if parsed.message_id is None:
            key = f"sha256:{sha256}"
            return _Dedupe(key, self._seen(session, key), None)
        seen = session.exec(
            select(
                Message.id,
                Message.direction,
                Message.ticket_id,
                Message.from_address,
                Message.subject,
                Message.text,
            ).where(Message.dedupe_key == parsed.message_id)
        ).first()
        if seen is None:
            return _Dedupe(parsed.message_id, None, None)
        seen_id, direction, ticket_id, from_address, subject, text = seen
        first = (seen_id, direction, ticket_id)
        if direction == "outbound" or (from_address, subject, text) == (
            parsed.from_address,
            parsed.subject,
            parsed.text,
        ):
            return _Dedupe(parsed.message_id, first, None)
        content = hashlib.sha256(
            "\n".join((parsed.from_address or "", parsed.subject, parsed.text)).encode()
        ).hexdigest()
        key = f"{parsed.message_id[:900]} content:{content}"
        return _Dedupe(key, self._seen(session, key), first)

    def _seen(self, session: Session, key: str) -> tuple[int, str, int | None] | None:
        row = session.exec(
            select(Message.id, Message.direction, Message.ticket_id).where(
                Message.dedupe_key == key
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    # --- outcomes --------------------------------------------------------------------

    def _reject(self, w: RowWriter, item: _Prepared, reason: str) -> Outcome:
        earlier = w.session.exec(
            select(RejectedMessage.reason).where(RejectedMessage.raw_sha256 == item.sha256)
        ).first()
        if earlier is not None:
            return Outcome("rejected", None, earlier)
        w.blob(item.raw, item.sha256)
        rejection_id = w.insert(
            RejectedMessage(
                raw_sha256=item.sha256, size=len(item.raw), reason=reason[:1000], source=item.source
            )
        )
        w.audit(item.source, "message.rejected", rejection_id=rejection_id, reason=reason)
        return Outcome("rejected", None, reason)

    def _save(
        self,
        w: RowWriter,
        message: Message,
        attachments: list[Attachment],
        *,
        outcome: str,
        reason: str,
        ticket_id: int | None,
    ) -> int:
        message.outcome = outcome
        message.reason = reason[:1000]
        message.ticket_id = ticket_id
        message_id = w.insert(message)
        for attachment in attachments:
            attachment.message_id = message_id
        w.insert_many(attachments)
        return message_id

    def _keep_variant(
        self,
        w: RowWriter,
        item: _Prepared,
        parsed: ParsedMessage,
        key: str,
        first_id: int,
        ticket_id: int | None,
    ) -> Outcome:
        message, attachments = self._message(w, item, parsed, key)
        message.defects = [*message.defects, "reused-message-id"]
        reason = f"Message-ID already used by message {first_id}; kept beside it"
        message_id = self._save(
            w, message, attachments, outcome="duplicate", reason=reason, ticket_id=ticket_id
        )
        w.audit(
            item.source,
            "message.duplicate",
            ticket_id=ticket_id,
            message_id=message_id,
            reason=reason,
        )
        return Outcome("duplicate", _reference(ticket_id), reason)

    def _ignore(
        self,
        w: RowWriter,
        message: Message,
        attachments: list[Attachment],
        thread: Thread | None,
        reason: str,
    ) -> Outcome:
        """Keep MESSAGE (on THREAD's ticket when it has one, without reopening it)."""
        ticket_id = thread.ticket_id if thread else None
        message_id = self._save(
            w, message, attachments, outcome="ignored", reason=reason, ticket_id=ticket_id
        )
        w.audit(
            message.source,
            "message.ignored",
            ticket_id=ticket_id,
            message_id=message_id,
            reason=reason,
        )
        return Outcome("ignored", _reference(ticket_id), reason)

    def _append(
        self, w: RowWriter, message: Message, attachments: list[Attachment], thread: Thread
    ) -> Outcome:
        message_id = self._save(
            w, message, attachments, outcome="appended", reason="", ticket_id=thread.ticket_id
        )
        now = utcnow()
        changes: dict = {"updated_at": now, "version": Ticket.version + 1}
        reopened = thread.status in REOPENED_BY_REPLY
        if reopened:
            changes |= {"status": "open", "due_at": now + timedelta(hours=self.config.due_hours)}
        w.session.execute(update(Ticket).where(Ticket.id == thread.ticket_id).values(changes))
        w.audit(
            message.source, "message.appended", ticket_id=thread.ticket_id, message_id=message_id
        )
        if reopened:
            w.audit(
                message.source,
                "ticket.reopened",
                ticket_id=thread.ticket_id,
                message_id=message_id,
            )
        return Outcome("appended", _reference(thread.ticket_id), "reopened" if reopened else "")

    def _open(
        self,
        w: RowWriter,
        message: Message,
        attachments: list[Attachment],
        customer_id: int,
        status: str,
        reason: str,
    ) -> Outcome:
        now = utcnow()
        ticket_id = w.insert(
            Ticket(
                status=status,
                subject=strip_reply_prefixes(message.subject)[:998],
                customer_id=customer_id,
                due_at=now + timedelta(hours=self.config.due_hours),
                created_at=now,
                updated_at=now,
            )
        )
        outcome = "held" if status == "held" else "created"
        message_id = self._save(
            w, message, attachments, outcome=outcome, reason=reason, ticket_id=ticket_id
        )
        w.audit(
            message.source,
            "ticket.created",
            ticket_id=ticket_id,
            message_id=message_id,
            status=status,
        )
        return Outcome("created", _reference(ticket_id), reason)

    # --- rows ------------------------------------------------------------------------

    def _message(
        self, w: RowWriter, item: _Prepared, parsed: ParsedMessage, key: str
    ) -> tuple[Message, list[Attachment]]:
        """The message's row and its attachments' rows, not yet inserted; the raw
        message and the attachment files are stored."""
        message = Message(
            direction="inbound",
            dedupe_key=key,
            message_id=parsed.message_id,
            in_reply_to=list(parsed.in_reply_to),
            references=list(parsed.references),
            from_address=parsed.from_address or parsed.reply_to,
            from_name=parsed.from_name,
            to=list(parsed.to),
            cc=list(parsed.cc),
            date=parsed.date,
            subject=parsed.subject,
            text=parsed.text,
            question=parsed.question,
            html=parsed.html,
            automated=parsed.automated is not None,
            bounce=parsed.bounce,
            list_mail=parsed.list_mail,
            outcome="",
            source=item.source,
            raw_sha256=w.blob(item.raw, item.sha256),
            defects=list(parsed.defects),
        )
        attachments = [
            Attachment(
                message_id=0,
                filename=part.filename,
                content_type=part.content_type,
                size=part.size,
                sha256=part.sha256,
                blob_sha256=w.blob(part.data, part.sha256) if part.data is not None else None,
                text=part.text,
                inline=part.inline,
            )
            for part in parsed.attachments
        ]
        return message, attachments


def _reference(ticket_id: int | None) -> str | None:
    return None if ticket_id is None else ticket_reference(ticket_id)
