"""Inserting rows through SQLAlchemy Core, for the intake's hot path.

The ORM's unit of work costs about 2 ms per ingested message (flushes, identity map,
history); the intake writes each row once and never edits it in the same transaction,
so it builds the model (for its defaults) and inserts the values directly. Caches are
per transaction: a rolled-back savepoint calls `forget()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import Table, insert
from sqlmodel import Session, SQLModel, select

from consultant.tickets.models import AuditEvent, Blob, Customer
from consultant.tickets.rules import domain_of


def _values(row: SQLModel) -> dict:
    table: Table = type(row).__table__  # type: ignore[attr-defined]
    return {
        column.name: getattr(row, column.name)
        for column in table.columns
        if not (column.primary_key and getattr(row, column.name) is None)
    }


class RowWriter:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._customers: dict[str, int] = {}
        self._blobs: set[str] = set()

    def forget(self) -> None:
        """Drop what the caches learned; after a savepoint rollback they may lie."""
        self._customers.clear()
        self._blobs.clear()

    def insert(self, row: SQLModel) -> int:
        """Insert ROW and return its new id."""
        table: Table = type(row).__table__  # type: ignore[attr-defined]
        result = self.session.execute(insert(table).values(_values(row)).returning(table.c.id))
        return result.scalar_one()

    def insert_many(self, rows: Sequence[SQLModel]) -> None:
        if rows:
            table: Table = type(rows[0]).__table__  # type: ignore[attr-defined]
            self.session.execute(insert(table), [_values(row) for row in rows])

    def audit(
        self,
        actor: str,
        action: str,
        *,
        ticket_id: int | None = None,
        message_id: int | None = None,
        **detail: object,
    ) -> None:
        """Record an event; DETAIL holds ids, counts and reasons, never message text."""
        self.insert_many(
            [
                AuditEvent(
                    actor=actor,
                    action=action,
                    ticket_id=ticket_id,
                    message_id=message_id,
                    detail=detail,
                )
            ]
        )

    def blob(self, data: bytes, sha256: str | None = None) -> str:
        """Keep DATA once, by its SHA-256; returns the hash."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        if digest in self._blobs:
            return digest
        known = self.session.exec(select(Blob.sha256).where(Blob.sha256 == digest)).first()
        if known is None:
            self.insert_many([Blob(sha256=digest, size=len(data), data=data)])
        self._blobs.add(digest)
        return digest

    def customer(self, address: str, name: str) -> int:
        """The id of the customer with ADDRESS, created on first contact."""
        if address in self._customers:
            return self._customers[address]
        found = self.session.exec(select(Customer.id).where(Customer.email == address)).first()
        if found is None:
            found = self.insert(Customer(email=address, name=name[:255], domain=domain_of(address)))
        self._customers[address] = found
        return found
