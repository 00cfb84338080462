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

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from consultant.config import IngestConfig
from consultant.database.engine import is_unavailable, transaction
from consultant.database.types import utcnow
from consultant.logs import log_event
from consultant.mail.message import strip_reply_prefixes
from consultant.mail.parse import ParsedMessage, UnparsableMessage, parse_message
from consultant.tickets.declines import DECLINE_REASON, Decliner
from consultant.tickets.models import REOPENED_BY_REPLY, ticket_reference
from consultant.tickets.rows import Pending, RowWriter, Stored, resolve
from consultant.tickets.rules import is_allowed, is_ours
from consultant.tickets.threading import Thread, find_thread, referenced_ids

log = logging.getLogger(__name__)

STATUSES = ("created", "appended", "duplicate", "ignored", "rejected")
# Delivery puts this header (our message's id) on everything we send, so a copy that
# comes back forwarded or bounced whole is known for ours even under a new Message-ID.
OUTBOUND_HEADER = "x-caseconsultant-id"


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
class _Result:
    """An Outcome whose ticket may be a new one, numbered when the batch is flushed."""

    status: str
    ticket_id: int | Pending | None = None
    reason: str = ""

    def outcome(self) -> Outcome:
        ticket_id = resolve(self.ticket_id)
        ticket = None if ticket_id is None else ticket_reference(ticket_id)
        return Outcome(self.status, ticket, self.reason)


@dataclass(frozen=True)
class _Prepared:
    raw: bytes
    sha256: str
    source: str
    parsed: ParsedMessage | None
    rejection: str | None

    @property
    def key(self) -> str | None:
        """The dedupe key: the Message-ID, or the raw hash when there is none."""
        if self.parsed is None:
            return None
        return self.parsed.message_id or f"sha256:{self.sha256}"

    @property
    def address(self) -> str | None:
        """Whom to answer: From, else Reply-To."""
        return self.parsed and (self.parsed.from_address or self.parsed.reply_to)


class Intake:
    """Turns raw messages into tickets in ENGINE's database under CONFIG's rules."""

    def __init__(
        self,
        engine: Engine,
        config: IngestConfig,
        *,
        decline: Decliner | None = None,
        after_commit: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> None:
        """AFTER_COMMIT sees each batch's outcomes once they are committed (the queue
        is asked for drafts there)."""
        self.engine = engine
        self.config = config
        if config.not_allowed == "decline" and decline is None:
            raise ValueError("not_allowed = decline needs a decliner to queue the answers")
        self.decline = decline
        self.after_commit = after_commit

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

        The batch is first stored in one go. Should any statement fail (another
        ingress storing the same message at the same moment, data the database
        refuses), the transaction is rolled back and the batch stored again message
        by message, each in a savepoint, so the failure stays with its message.

        ALSO runs in the same transaction (the IMAP poller records how far it has read
        there, so progress and tickets commit together). Raises DatabaseUnavailable
        (nothing stored) when the database cannot be reached; the caller keeps the
        messages and tries again later.
        """
        prepared = [self._prepare(raw, source) for raw in raws]
        try:
            outcomes = self._store_all(prepared, also, careful=False)
        except DBAPIError as exc:
            if is_unavailable(exc):
                raise
            outcomes = self._store_all(prepared, also, careful=True)
        if self.after_commit is not None:
            self.after_commit(outcomes)
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
        writer = self._writer(session)
        result = self._decide(writer, item)
        writer.flush()
        return result.outcome()

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

    def _writer(self, session: Session) -> RowWriter:
        since = utcnow() - timedelta(minutes=self.config.rate_window_minutes)
        return RowWriter(session, since)

    def _store_all(
        self,
        items: list[_Prepared],
        also: Callable[[Session], None] | None,
        *,
        careful: bool,
    ) -> list[Outcome]:
        with transaction(self.engine) as session:
            writer = self._writer(session)
            writer.prefetch(
                (item.key for item in items if item.key),
                (item.sha256 for item in items),
                (item.address for item in items if item.address),
                (i for item in items if item.parsed for i in referenced_ids(item.parsed)),
            )
            store = self._store_carefully if careful else self._decide
            results = [store(writer, item) for item in items]
            writer.flush()
            if also is not None:
                also(session)
        return [result.outcome() for result in results]

    def _store_carefully(self, w: RowWriter, item: _Prepared) -> _Result:
        """ITEM in its own savepoint, written at once: a unique-key race is retried once
        (and then finds the other's row); data the database refuses becomes a recorded
        rejection."""
        for attempt in range(2):
            try:
                with w.session.begin_nested():
                    result = self._decide(w, item)
                    w.flush()
                    return result
            except IntegrityError:
                w.discard()
                if attempt:
                    raise
            except DBAPIError as exc:
                w.discard()
                if is_unavailable(exc):
                    raise
                reason = f"the database refused it ({type(exc.orig).__name__}); it is kept raw"
                with w.session.begin_nested():
                    result = self._reject(w, item, reason)
                    w.flush()
                    return result
        raise AssertionError("unreachable")

    # --- the decision ----------------------------------------------------------------

    def _decide(self, w: RowWriter, item: _Prepared) -> _Result:
        parsed = item.parsed
        if parsed is None or item.key is None:
            return self._reject(w, item, item.rejection or "unparsable")
        key, stored, first = self._dedupe(w, parsed, item.key, item.address)
        if stored is not None:
            if stored.direction == "outbound":
                reason = "our own outbound message came back"
                return _Result("ignored", stored.ticket_id, reason)
            reason = "already received"
            return _Result("duplicate", stored.ticket_id, reason)
        if first is not None:  # a different message reusing the Message-ID
            reason = "Message-ID already used by a different message; kept beside it"
            message = self._message(w, item, parsed, key, defects=["reused-message-id"])
            return self._keep(w, message, "duplicate", reason, first.ticket_id, "duplicate")
        if OUTBOUND_HEADER in parsed.extra_headers:
            reason = f"our own outbound message came back ({OUTBOUND_HEADER} header)"
            message = self._message(w, item, parsed, key)
            return self._keep(w, message, "ignored", reason, None, "ignored")
        address = item.address
        if address is None and not parsed.automated:
            return self._reject(w, item, "no sender address (From or Reply-To) to answer")
        message = self._message(w, item, parsed, key)
        if is_ours(address, self.config):
            reason = "sent from one of our own addresses"
            return self._keep(w, message, "ignored", reason, None, "ignored")
        if parsed.automated:
            thread = find_thread(w, parsed, None)
            ticket_id = thread.ticket_id if thread else None
            return self._keep(w, message, "ignored", parsed.automated, ticket_id, "ignored")
        assert address is not None
        customer_id = w.customer(address, parsed.from_name)
        limit = self.config.rate_limit
        if limit and (count := w.sent_recently(address)) >= limit:
            reason = (
                f"rate-limited: {count} messages from this sender in "
                f"{self.config.rate_window_minutes} minutes (limit {limit})"
            )
            return self._keep(w, message, "ignored", reason, None, "ignored")
        thread = find_thread(w, parsed, customer_id)
        if thread is not None:
            return self._append(w, message, thread)
        if not is_allowed(address, self.config.allow):
            if self.decline is not None:
                self.decline(w.session, parsed)
                return self._keep(w, message, "ignored", DECLINE_REASON, None, "ignored")
            reason = "held: the sender is not on the allowlist"
            return self._open(w, message, customer_id, "held", reason)
        return self._open(w, message, customer_id, "new", "")

    def _dedupe(
        self, w: RowWriter, parsed: ParsedMessage, key: str, address: str | None
    ) -> tuple[str, Stored | None, Stored | None]:
        """The key to store the message under, what is stored under that key already,
        and (for a reused Message-ID) the first message stored under the ID.

        The same message twice never makes a second ticket. Some senders reuse one
        Message-ID for different mail (fixed IDs on notifications, broken clients): a
        message whose sender, subject or text differs from the one stored under its ID
        is a duplicate too, but kept beside the first under its ID plus a hash of its
        content, so its text is not lost.
        """
        stored = w.stored(key)
        if stored is None or parsed.message_id is None or stored.direction == "outbound":
            return key, stored, None
        if (stored.from_address, stored.subject, stored.text) == (
            address,
            parsed.subject,
            parsed.text,
        ):
            return key, stored, None
        content = hashlib.sha256(
            "\n".join((parsed.from_address or "", parsed.subject, parsed.text)).encode()
        ).hexdigest()
        variant = f"{parsed.message_id[:900]} content:{content}"
        return variant, w.stored(variant), stored

    # --- outcomes --------------------------------------------------------------------

    def _reject(self, w: RowWriter, item: _Prepared, reason: str) -> _Result:
        earlier = w.rejected(item.sha256)
        if earlier is not None:
            return _Result("rejected", None, earlier)
        w.blobs([(item.sha256, item.raw)])
        rejection_id = w.rejection(
            {
                "raw_sha256": item.sha256,
                "size": len(item.raw),
                "reason": reason[:1000],
                "source": item.source,
                "received_at": utcnow(),
            }
        )
        w.audit(item.source, "message.rejected", rejection_id=rejection_id, reason=reason)
        return _Result("rejected", None, reason)

    def _keep(
        self,
        w: RowWriter,
        message: _NewMessage,
        outcome: str,
        reason: str,
        ticket_id: int | Pending | None,
        status: str,
    ) -> _Result:
        """Store MESSAGE on TICKET_ID's thread (when it has one) without reopening it."""
        message_id = message.save(w, outcome=outcome, reason=reason, ticket_id=ticket_id)
        w.audit(
            message.source,
            f"message.{status}",
            ticket_id=ticket_id,
            message_id=message_id,
            reason=reason,
        )
        return _Result(status, ticket_id, reason)

    def _append(self, w: RowWriter, message: _NewMessage, thread: Thread) -> _Result:
        ticket_id = thread.ticket_id
        message_id = message.save(w, outcome="appended", reason="", ticket_id=ticket_id)
        now = utcnow()
        changes: dict = {"updated_at": now}
        reopened = thread.status in REOPENED_BY_REPLY
        if reopened:
            changes |= {"status": "open", "due_at": now + timedelta(hours=self.config.due_hours)}
        w.update_ticket(ticket_id, thread.customer_id, thread.status, changes)
        w.audit(message.source, "message.appended", ticket_id=ticket_id, message_id=message_id)
        if reopened:
            w.audit(message.source, "ticket.reopened", ticket_id=ticket_id, message_id=message_id)
        return _Result("appended", ticket_id, "reopened" if reopened else "")

    def _open(
        self, w: RowWriter, message: _NewMessage, customer_id: int, status: str, reason: str
    ) -> _Result:
        now = utcnow()
        ticket_id = w.new_ticket(
            {
                "status": status,
                "subject": strip_reply_prefixes(message.values["subject"])[:998],
                "customer_id": customer_id,
                "due_at": now + timedelta(hours=self.config.due_hours),
                "created_at": now,
                "updated_at": now,
            }
        )
        outcome = "held" if status == "held" else "created"
        message_id = message.save(w, outcome=outcome, reason=reason, ticket_id=ticket_id)
        w.audit(
            message.source,
            "ticket.created",
            ticket_id=ticket_id,
            message_id=message_id,
            status=status,
        )
        return _Result("created", ticket_id, reason)

    # --- rows ------------------------------------------------------------------------

    def _message(
        self,
        w: RowWriter,
        item: _Prepared,
        parsed: ParsedMessage,
        key: str,
        defects: Sequence[str] = (),
    ) -> _NewMessage:
        """The message's row and its attachments', ready to insert; the raw message and
        the attachment files are stored."""
        w.blobs(
            [
                (item.sha256, item.raw),
                *((part.sha256, part.data) for part in parsed.attachments if part.data is not None),
            ]
        )
        values = {
            "direction": "inbound",
            "dedupe_key": key,
            "message_id": parsed.message_id,
            "in_reply_to": list(parsed.in_reply_to),
            "references": list(parsed.references),
            "from_address": item.address,
            "from_name": parsed.from_name,
            "reply_to": parsed.reply_to,
            "to": list(parsed.to),
            "cc": list(parsed.cc),
            "date": parsed.date,
            "subject": parsed.subject,
            "text": parsed.text,
            "question": parsed.question,
            "html": parsed.html,
            "automated": parsed.automated is not None,
            "bounce": parsed.bounce,
            "list_mail": parsed.list_mail,
            "source": item.source,
            "raw_sha256": item.sha256,
            "defects": [*parsed.defects, *defects],
            "received_at": utcnow(),
        }
        attachments = [
            {
                "filename": part.filename,
                "content_type": part.content_type,
                "size": part.size,
                "sha256": part.sha256,
                "blob_sha256": part.sha256 if part.data is not None else None,
                "text": part.text,
                "inline": part.inline,
            }
            for part in parsed.attachments
        ]
        return _NewMessage(values, attachments)


@dataclass
class _NewMessage:
    values: dict
    attachments: list[dict]

    @property
    def source(self) -> str:
        return str(self.values["source"])

    def save(
        self, w: RowWriter, *, outcome: str, reason: str, ticket_id: int | Pending | None
    ) -> Pending:
        values = {
            **self.values,
            "outcome": outcome,
            "reason": reason[:1000],
            "ticket_id": ticket_id,
        }
        return w.message(self.values["dedupe_key"], values, self.attachments)
