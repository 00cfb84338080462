"""The intake's reads and writes for one batch, in as few statements as it can.

Through the ORM, storing a message cost about 2.5 ms (unit of work, identity map,
one query per lookup). Here a batch prefetches what it will ask (stored messages under
its keys, earlier rejections, known blobs, customers, recent counts per sender) with
one query each, stores new raw messages and files in one statement, inserts each
ticket and message with a prepared statement, and writes the audit rows at the end.
Every cache also learns what the batch itself inserts, so two messages of one batch
see each other. After a failed statement the caches may lie: `forget()` empties them
and every lookup then asks the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from consultant.database.types import utcnow
from consultant.tickets.models import (
    Attachment,
    AuditEvent,
    Blob,
    Customer,
    Message,
    RejectedMessage,
    Ticket,
)
from consultant.tickets.rules import domain_of

_CHUNK = 500  # values per IN (...) list


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class Stored:
    """A message already stored under a dedupe key."""

    id: int
    direction: str
    ticket_id: int | None
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
        self._customers: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._audit: list[dict[str, Any]] = []
        dialect = session.get_bind().dialect.name
        self._insert_ignore = (postgresql if dialect == "postgresql" else sqlite).insert

    # --- prefetch --------------------------------------------------------------------

    def prefetch(self, keys: Iterable[str], shas: Iterable[str], addresses: Iterable[str]) -> None:
        """Answer the batch's lookups with one query per kind."""
        for chunk in _chunks(keys):
            self._stored.update(dict.fromkeys(chunk))
            for row in self.session.exec(
                select(
                    Message.dedupe_key,
                    Message.id,
                    Message.direction,
                    Message.ticket_id,
                    Message.from_address,
                    Message.subject,
                    Message.text,
                ).where(col(Message.dedupe_key).in_(chunk))
            ):
                self._stored[row[0]] = Stored(*row[1:])
        for chunk in _chunks(shas):
            self._rejected.update(dict.fromkeys(chunk))
            for sha, reason in self.session.exec(
                select(RejectedMessage.raw_sha256, RejectedMessage.reason).where(
                    col(RejectedMessage.raw_sha256).in_(chunk)
                )
            ):
                self._rejected[sha] = reason
        for chunk in _chunks(addresses):
            for email, customer_id in self.session.exec(
                select(Customer.email, Customer.id).where(col(Customer.email).in_(chunk))
            ):
                self._customers[email] = customer_id
            self._sent.update(dict.fromkeys(chunk, 0))
            for address, count in self.session.exec(
                select(Message.from_address, func.count())
                .where(
                    col(Message.from_address).in_(chunk),
                    Message.direction == "inbound",
                    Message.received_at >= self.rate_since,
                )
                .group_by(Message.from_address)
            ):
                self._sent[address] = count

    def forget(self) -> None:
        self._stored.clear()
        self._rejected.clear()
        self._blobs.clear()
        self._customers.clear()
        self._sent.clear()

    # --- lookups ---------------------------------------------------------------------

    def stored(self, key: str) -> Stored | None:
        if key not in self._stored:
            row = self.session.exec(
                select(
                    Message.id,
                    Message.direction,
                    Message.ticket_id,
                    Message.from_address,
                    Message.subject,
                    Message.text,
                ).where(Message.dedupe_key == key)
            ).first()
            self._stored[key] = Stored(*row) if row else None
        return self._stored[key]

    def rejected(self, sha256: str) -> str | None:
        if sha256 not in self._rejected:
            self._rejected[sha256] = self.session.exec(
                select(RejectedMessage.reason).where(RejectedMessage.raw_sha256 == sha256)
            ).first()
        return self._rejected[sha256]

    def sent_recently(self, address: str) -> int:
        """Inbound messages from ADDRESS since rate_since, this batch's included."""
        if address not in self._sent:
            self._sent[address] = self.session.exec(
                select(func.count())
                .select_from(Message)
                .where(
                    Message.from_address == address,
                    Message.direction == "inbound",
                    Message.received_at >= self.rate_since,
                )
            ).one()
        return self._sent[address]

    # --- writes ----------------------------------------------------------------------

    def blobs(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Keep each (sha256, data) once; repeats and known ones cost nothing."""
        rows = {sha: data for sha, data in items if sha not in self._blobs}
        if rows:
            statement = self._insert_ignore(_table(Blob)).on_conflict_do_nothing()
            self.session.execute(
                statement,
                [{"sha256": sha, "size": len(data), "data": data} for sha, data in rows.items()],
            )
            self._blobs.update(rows)

    def customer(self, address: str, name: str) -> int:
        """The id of the customer with ADDRESS, created on first contact."""
        if address not in self._customers:
            found = self.session.exec(select(Customer.id).where(Customer.email == address)).first()
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
        return self._customers[address]

    def ticket(self, values: dict[str, Any]) -> int:
        return self._insert(Ticket, {"assignee": None, "version": 1, **values})

    def message(self, key: str, values: dict[str, Any]) -> int:
        message_id = self._insert(Message, values)
        self._stored[key] = Stored(
            message_id,
            values["direction"],
            values["ticket_id"],
            values["from_address"],
            values["subject"],
            values["text"],
        )
        if values["direction"] == "inbound" and values["from_address"]:
            address = values["from_address"]
            self._sent[address] = self.sent_recently(address) + 1
        return message_id

    def attachments(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(_table(Attachment)), rows)

    def rejection(self, values: dict[str, Any]) -> int:
        rejection_id = self._insert(RejectedMessage, values)
        self._rejected[values["raw_sha256"]] = values["reason"]
        return rejection_id

    def audit(
        self,
        actor: str,
        action: str,
        *,
        ticket_id: int | None = None,
        message_id: int | None = None,
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

    def checkpoint(self) -> int:
        return len(self._audit)

    def rewind(self, checkpoint: int) -> None:
        """Drop audit rows queued since CHECKPOINT (their savepoint rolled back)."""
        del self._audit[checkpoint:]

    def flush(self) -> None:
        if self._audit:
            self.session.execute(insert(_table(AuditEvent)), self._audit)
            self._audit = []

    def _insert(self, model: type, values: dict[str, Any]) -> int:
        table = _table(model)
        return self.session.execute(insert(table).returning(table.c.id), values).scalar_one()


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    unique = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]
