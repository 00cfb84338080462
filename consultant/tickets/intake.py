"""Where a message becomes a ticket.

Every ingress (IMAP poller, pipe, SMTP) hands raw bytes here and gets one Outcome per
message. The raw message and everything parsed from it are committed in one
transaction before the ingress acknowledges anything (moves the IMAP message, exits 0,
answers 250), and the database's unique Message-ID key makes a second delivery of the
same message a `duplicate` however it arrives, so a crash at any point loses nothing
and doubles nothing.

What becomes of each message is decided by the rules in tickets.rules (RULES, in
order: unparsable, seen before, our own mail, automated, flooding, a reply to a
thread, not allowed, a new question) and stored here with the name of the rule that
decided, beside the warnings a consultant must confirm before answering.
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
from consultant.tickets.declines import Decliner
from consultant.tickets.models import REOPENED_BY_REPLY, ticket_reference
from consultant.tickets.rows import Pending, RowWriter, resolve
from consultant.tickets.rules import (
    APPEND,
    DECLINE,
    DUPLICATE,
    HOLD,
    IGNORE,
    REJECT,
    Candidate,
    Decision,
    decide,
    warnings,
)
from consultant.tickets.threading import Thread, referenced_ids

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
                (
                    address
                    for item in items
                    if item.parsed
                    for address in (item.parsed.from_address, item.parsed.reply_to)
                    if address
                ),
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
        """Ask the rules (tickets.rules) what becomes of ITEM, and record it."""
        candidate = Candidate(w, self.config, item.parsed, item.rejection, item.key)
        decision = decide(candidate)
        if decision.action == REJECT:
            return self._reject(w, item, decision.reason)
        if not decision.store:
            status = "ignored" if decision.action == IGNORE else "duplicate"
            return _Result(status, decision.ticket_id, decision.reason)
        parsed = candidate.parsed
        assert parsed is not None and candidate.key is not None
        message = self._message(
            w, item, parsed, candidate.key, candidate.defects, warnings(candidate, decision)
        )
        if decision.action == DUPLICATE:
            return self._keep(w, message, decision, "duplicate", decision.ticket_id)
        if decision.action == IGNORE:
            return self._keep(w, message, decision, "ignored", decision.ticket_id)
        if decision.action == DECLINE:
            assert self.decline is not None
            self.decline(w.session, parsed)
            return self._keep(w, message, decision, "ignored", None)
        if decision.action == APPEND:
            assert candidate.thread is not None
            return self._append(w, message, candidate.thread)
        assert candidate.sender is not None
        customer_id = w.customer(candidate.sender, parsed.from_name)
        status = "held" if decision.action == HOLD else "new"
        return self._open(w, message, customer_id, status, decision.reason)

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
        decision: Decision,
        status: str,
        ticket_id: int | Pending | None,
    ) -> _Result:
        """Store MESSAGE on TICKET_ID's thread (when it has one) without reopening it."""
        message_id = message.save(w, outcome=status, reason=decision.reason, ticket_id=ticket_id)
        w.audit(
            message.source,
            f"message.{status}",
            ticket_id=ticket_id,
            message_id=message_id,
            reason=decision.reason,
            rule=decision.rule,
        )
        return _Result(status, ticket_id, decision.reason)

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
        defects: Sequence[str],
        warnings: Sequence[str],
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
            "warnings": list(warnings),
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
                "extraction": part.extraction,
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
