"""The intake's reads and writes for one batch, in as few statements as it can.

Through the ORM, storing a message cost about 2.5 ms (unit of work, identity map,
one query per lookup). Here a batch prefetches what it will ask (stored messages under
its keys, earlier rejections, customers, recent counts per sender, the threads its
replies name) with one query each, and queues every write for flush(): tickets and
messages in one multi-row INSERT each (a new row's id is Pending until then), files,
attachments and audit rows in one statement each.
Every cache also learns what the batch itself inserts, so two messages of one batch
see each other. After a failed statement the caches may lie: `forget()` empties them
and every lookup then asks the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from consultant.database.types import utcnow
from consultant.mail.addresses import domain_of
from consultant.tickets.models import (
    Attachment,
    AuditEvent,
    Blob,
    Customer,
    Message,
    RejectedMessage,
    Ticket,
)

_CHUNK = 500  # values per IN (...) list


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


class Pending:
    """A new row's id, known once flush() has inserted the row."""

    __slots__ = ("value",)

    def __init__(self, value: int | None = None) -> None:
        self.value = value


def resolve(value: int | Pending | None) -> int | None:
    return value.value if isinstance(value, Pending) else value


@dataclass(frozen=True)
class Stored:
    """A message already stored (or queued) under a dedupe key."""

    direction: str
    ticket_id: int | Pending | None
    from_address: str | None
    subject: str
    text: str


class RowWriter:
    def __init__(self, session: Session, rate_since: datetime) -> None:
        self.session = session
        self.rate_since = rate_since
        self._stored: dict[str, Stored | None] = {}
        self._rejected: dict[str, str | None] = {}
        self._blobs: set[str] = set()
        self._customers: dict[str, int | None] = {}  # None: known not to exist yet
        self._sent: dict[str, int] = {}
        self._audit: list[dict[str, Any]] = []
        self._pending_blobs: dict[str, bytes] = {}
        self._pending_messages: list[tuple[dict[str, Any], list[dict], Pending]] = []
        self._pending_tickets: list[tuple[dict[str, Any], Pending]] = []
        # Message-ID -> [(direction, ticket id)] of stored messages on a ticket, and
        # ticket id -> (customer id, status): what threading asks.
        self._on_tickets: dict[str, list[tuple[str, int | Pending]]] = {}
        self._tickets: dict[int | Pending, tuple[int, str]] = {}
        # ticket id -> where its answers go (see address_of_record)
        self._record: dict[int | Pending, str | None] = {}
        dialect = session.get_bind().dialect.name
        self._insert_ignore = (postgresql if dialect == "postgresql" else sqlite).insert

    # --- prefetch --------------------------------------------------------------------

    def prefetch(
        self,
        keys: Iterable[str],
        shas: Iterable[str],
        addresses: Iterable[str],
        referenced: Iterable[str],
    ) -> None:
        """Answer the batch's lookups with one query per kind."""
        self._load_threads(referenced)
        self._load_stored(keys)
        self._load_rejected(shas)
        self._load_customers(addresses)
        self._load_sent(addresses)

    def forget(self) -> None:
        self._on_tickets.clear()
        self._tickets.clear()
        self._stored.clear()
        self._rejected.clear()
        self._blobs.clear()
        self._customers.clear()
        self._sent.clear()
        self._record.clear()

    # --- loading: each marks what it asked for, found or not ---------------------------

    def _load_threads(self, message_ids: Iterable[str]) -> None:
        for chunk in _chunks(message_ids):
            for message_id in chunk:
                self._on_tickets.setdefault(message_id, [])
            for message_id, direction, ticket_id, customer_id, status in self.session.exec(
                select(
                    Message.message_id,
                    Message.direction,
                    Ticket.id,
                    Ticket.customer_id,
                    Ticket.status,
                )
                .join(Ticket, col(Message.ticket_id) == Ticket.id)
                .where(col(Message.message_id).in_(chunk))
            ):
                self._on_tickets[message_id].append((direction, ticket_id))
                self._tickets[ticket_id] = (customer_id, status)

    def _load_stored(self, keys: Iterable[str]) -> None:
        for chunk in _chunks(keys):
            self._stored.update(dict.fromkeys(chunk))
            for key, *rest in self.session.exec(
                select(
                    Message.dedupe_key,
                    Message.direction,
                    Message.ticket_id,
                    Message.from_address,
                    Message.subject,
                    Message.text,
                ).where(col(Message.dedupe_key).in_(chunk))
            ):
                self._stored[key] = Stored(*rest)

    def _load_rejected(self, shas: Iterable[str]) -> None:
        for chunk in _chunks(shas):
            self._rejected.update(dict.fromkeys(chunk))
            for sha, reason in self.session.exec(
                select(RejectedMessage.raw_sha256, RejectedMessage.reason).where(
                    col(RejectedMessage.raw_sha256).in_(chunk)
                )
            ):
                self._rejected[sha] = reason

    def _load_customers(self, addresses: Iterable[str]) -> None:
        for chunk in _chunks(addresses):
            self._customers.update(dict.fromkeys(chunk))
            for email, customer_id in self.session.exec(
                select(Customer.email, Customer.id).where(col(Customer.email).in_(chunk))
            ):
                self._customers[email] = customer_id

    def _load_sent(self, addresses: Iterable[str]) -> None:
        for chunk in _chunks(addresses):
            self._sent.update(dict.fromkeys(chunk, 0))
            for sender, reply_to in self.session.exec(
                select(Message.from_address, Message.reply_to).where(
                    or_(col(Message.from_address).in_(chunk), col(Message.reply_to).in_(chunk)),
                    Message.direction == "inbound",
                    Message.received_at >= self.rate_since,
                )
            ):
                for address in {sender, reply_to} & self._sent.keys():
                    self._sent[address] += 1

    # --- lookups ---------------------------------------------------------------------

    def stored(self, key: str) -> Stored | None:
        if key not in self._stored:
            self._load_stored([key])
        return self._stored[key]

    def rejected(self, sha256: str) -> str | None:
        if sha256 not in self._rejected:
            self._load_rejected([sha256])
        return self._rejected[sha256]

    def sent_recently(self, address: str) -> int:
        """Inbound messages from ADDRESS, or asking for answers at ADDRESS, since
        rate_since, this batch's included."""
        if address not in self._sent:
            self._load_sent([address])
        return self._sent[address]

    def tickets_of(self, message_id: str) -> list[tuple[str, int | Pending]]:
        """(direction, ticket id) of the stored messages with MESSAGE_ID on a ticket."""
        if message_id not in self._on_tickets:
            self._load_threads([message_id])
        return self._on_tickets[message_id]

    def ticket(self, ticket_id: int | Pending) -> tuple[int, str] | None:
        """(customer id, status) of a ticket, or None when there is no such ticket."""
        if ticket_id not in self._tickets:
            row = self.session.exec(
                select(Ticket.customer_id, Ticket.status).where(Ticket.id == ticket_id)
            ).first()
            if row is None:
                return None
            self._tickets[ticket_id] = (row[0], row[1])
        return self._tickets[ticket_id]

    # --- writes ----------------------------------------------------------------------

    def blobs(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Keep each (sha256, data) once (stored at flush); repeats cost nothing."""
        for sha, data in items:
            if sha not in self._blobs:
                self._pending_blobs[sha] = data

    def _flush_blobs(self) -> None:
        if self._pending_blobs:
            statement = self._insert_ignore(_table(Blob)).on_conflict_do_nothing()
            self.session.execute(
                statement,
                [
                    {"sha256": sha, "size": len(data), "data": data}
                    for sha, data in self._pending_blobs.items()
                ],
            )
            self._blobs.update(self._pending_blobs)
            self._pending_blobs = {}

    def find_customer(self, address: str) -> int | None:
        """The id of the customer with ADDRESS, if there is one."""
        if address not in self._customers:
            self._load_customers([address])
        return self._customers[address]

    def address_of_record(self, ticket_id: int | Pending) -> str | None:
        """Where a ticket's answers go: the Reply-To (else From) of the message that
        opened it. A later message never changes it on its own."""
        if ticket_id not in self._record:
            row = self.session.exec(
                select(Message.reply_to, Message.from_address)
                .where(Message.ticket_id == ticket_id, Message.direction == "inbound")
                .order_by(col(Message.id))
                .limit(1)
            ).first()
            self._record[ticket_id] = row and (row[0] or row[1])
        return self._record[ticket_id]

    def customer(self, address: str, name: str) -> int:
        """The id of the customer with ADDRESS, created on first contact."""
        found = self.find_customer(address)
        if found is None:
            found = self._insert(
                Customer,
                {
                    "email": address,
                    "name": name[:255],
                    "domain": domain_of(address),
                    "created_at": utcnow(),
                },
            )
            self._customers[address] = found
        return found

    def new_ticket(self, values: dict[str, Any]) -> Pending:
        """Queue a ticket for flush(); its id (and reference) is known then."""
        pending = Pending()
        row = {"assignee": None, "version": 1, **values}
        self._pending_tickets.append((row, pending))
        self._tickets[pending] = (values["customer_id"], values["status"])
        return pending

    def update_ticket(
        self, ticket_id: int | Pending, customer_id: int, status: str, changes: dict[str, Any]
    ) -> None:
        """Apply CHANGES to a ticket: a queued one in place, a stored one with an UPDATE
        that bumps its version (the optimistic lock every writer honours)."""
        if isinstance(ticket_id, Pending):
            row = next(row for row, pending in self._pending_tickets if pending is ticket_id)
            row.update(changes)
        else:
            self.session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id)
                .values({**changes, "version": Ticket.version + 1})
            )
        self._tickets[ticket_id] = (customer_id, changes.get("status", status))

    def message(self, key: str, values: dict[str, Any], attachments: list[dict]) -> Pending:
        """Queue a message row and its attachments' for flush(); its id is known then."""
        pending = Pending()
        self._pending_messages.append((values, attachments, pending))
        self._stored[key] = Stored(
            values["direction"],
            values["ticket_id"],
            values["from_address"],
            values["subject"],
            values["text"],
        )
        # Later messages of the batch may reply to this one. Every ID the batch refers
        # to was prefetched, so an ID missing here is one nobody in the batch asks for.
        if values["ticket_id"] is not None and values["message_id"] in self._on_tickets:
            entry = (values["direction"], values["ticket_id"])
            self._on_tickets[values["message_id"]].append(entry)
        if values["direction"] == "inbound":
            for address in {values["from_address"], values["reply_to"]} - {None}:
                self._sent[address] = self.sent_recently(address) + 1
            ticket_id = values["ticket_id"]
            if isinstance(ticket_id, Pending) and ticket_id not in self._record:
                self._record[ticket_id] = values["reply_to"] or values["from_address"]
        return pending

    def rejection(self, values: dict[str, Any]) -> int:
        self._flush_blobs()  # the rejection's raw message first: a foreign key
        rejection_id = self._insert(RejectedMessage, values)
        self._rejected[values["raw_sha256"]] = values["reason"]
        return rejection_id

    def audit(
        self,
        actor: str,
        action: str,
        *,
        ticket_id: int | Pending | None = None,
        message_id: Pending | None = None,
        **detail: object,
    ) -> None:
        """Queue an audit row for flush(); DETAIL holds ids, counts and reasons, never
        message text."""
        self._audit.append(
            {
                "at": utcnow(),
                "actor": actor,
                "action": action,
                "ticket_id": ticket_id,
                "message_id": message_id,
                "detail": detail,
            }
        )

    def discard(self) -> None:
        """Drop what is queued (its savepoint rolled back) and what the caches learned."""
        self._audit = []
        self._pending_blobs = {}
        self._pending_messages = []
        self._pending_tickets = []
        self.forget()

    def flush(self) -> None:
        """Write what is queued: tickets and messages in one multi-row INSERT each, and
        files, attachments and audit rows in one statement each."""
        if self._pending_tickets:
            rows = [row for row, _pending in self._pending_tickets]
            for ticket_id, (_row, pending) in zip(
                self._insert_all(Ticket, rows), self._pending_tickets, strict=True
            ):
                pending.value = ticket_id
            self._pending_tickets = []
        self._flush_blobs()
        if self._pending_messages:
            ids = self._insert_all(
                Message,
                [
                    {**values, "ticket_id": resolve(values["ticket_id"])}
                    for values, _attachments, _pending in self._pending_messages
                ],
            )
            rows = []
            for message_id, (_values, attachments, pending) in zip(
                ids, self._pending_messages, strict=True
            ):
                pending.value = message_id
                rows += [{**attachment, "message_id": message_id} for attachment in attachments]
            if rows:
                self.session.execute(insert(_table(Attachment)), rows)
            self._pending_messages = []
        if self._audit:
            rows = [
                {
                    **event,
                    "ticket_id": resolve(event["ticket_id"]),
                    "message_id": resolve(event["message_id"]),
                }
                for event in self._audit
            ]
            self.session.execute(insert(_table(AuditEvent)), rows)
            self._audit = []

    def _insert_all(self, model: type, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ROWS in one statement; their new ids, in order."""
        table = _table(model)
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(self.session.execute(statement, rows).scalars())

    def _insert(self, model: type, values: dict[str, Any]) -> int:
        table = _table(model)
        return self.session.execute(insert(table).returning(table.c.id), values).scalar_one()


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    unique = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]
