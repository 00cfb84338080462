"""The ticket database's tables.

(No `from __future__ import annotations` here: SQLModel reads these annotations at
run time to build relationships.)

Raw messages and attachment files are kept as content-addressed blobs in the database
itself, so a ticket can be re-parsed on any machine and a backup of the database is a
backup of everything.
"""

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Column, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from consultant.database.types import UTCDateTime, utcnow

# new -> drafting -> ready (for review) -> approved -> sent; a customer's reply makes a
# ticket open again (to be drafted again). held: a sender outside the allowlist.
TICKET_STATUSES = (
    "new",
    "open",
    "drafting",
    "ready",
    "approved",
    "sent",
    "failed",
    "closed",
    "ignored",
    "held",
)
REOPENED_BY_REPLY = frozenset(("ready", "approved", "sent", "failed", "closed"))
DRAFTABLE = frozenset(("new", "open", "drafting"))


def _when(*, index: bool = False, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


class Blob(SQLModel, table=True):
    """A raw message or attachment file, stored once however often it arrives."""

    __tablename__ = "blobs"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=BigInteger)
    data: bytes = Field(sa_type=LargeBinary)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # lowercased addr-spec
    name: str = Field(default="", max_length=255)
    domain: str = Field(max_length=255, index=True)
    created_at: datetime = _when()


REFERENCE_PREFIX = "CC-"


def ticket_reference(ticket_id: int) -> str:
    """The public name customers and consultants use, e.g. CC-000123."""
    return f"{REFERENCE_PREFIX}{ticket_id:06d}"


_ticket_version = Column("version", Integer, nullable=False)


class Ticket(SQLModel, table=True):
    """One customer question and everything said about it.

    `version` is SQLAlchemy's optimistic lock: two consultants saving the same ticket
    cannot silently overwrite each other.
    """

    __tablename__ = "tickets"
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _ticket_version}

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="new", max_length=16, index=True)
    subject: str = Field(default="", max_length=998)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    assignee: str | None = Field(default=None, max_length=255)
    due_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when(index=True)
    updated_at: datetime = _when()
    error: str | None = Field(default=None, sa_type=Text)  # why it is failed, for people
    version: int = Field(default=1, sa_column=_ticket_version)

    @property
    def reference(self) -> str:
        assert self.id is not None, "a ticket has its reference once it is flushed"
        return ticket_reference(self.id)


class Message(SQLModel, table=True):
    """One email, in or out. Inbound mail that made no ticket (auto-replies, mail from
    senders over the rate limit) is kept here too, with no ticket and its reason."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    direction: str = Field(max_length=8)  # inbound | outbound
    # Message-ID, or "sha256:<raw hash>" when there is none: what makes a message the same.
    dedupe_key: str = Field(max_length=1000, unique=True)
    message_id: str | None = Field(default=None, max_length=998, index=True)
    in_reply_to: list[str] = Field(default_factory=list, sa_type=JSON)
    references: list[str] = Field(default_factory=list, sa_type=JSON)
    from_address: str | None = Field(default=None, max_length=320, index=True)
    from_name: str = Field(default="", max_length=998)
    reply_to: str | None = Field(default=None, max_length=320)  # where answers go, if not From
    to: list[str] = Field(default_factory=list, sa_type=JSON)
    cc: list[str] = Field(default_factory=list, sa_type=JSON)
    date: datetime | None = _when(nullable=True)
    subject: str = Field(default="", max_length=998)
    text: str = Field(default="", sa_type=Text)
    question: str = Field(default="", sa_type=Text)
    html: str | None = Field(default=None, sa_type=Text)
    automated: bool = False
    bounce: bool = False
    list_mail: bool = False
    # inbound: created | appended | ignored | held; outbound: "outbound" (see its Delivery)
    outcome: str = Field(max_length=16)
    reason: str = Field(default="", max_length=1000)
    source: str = Field(default="", max_length=255)  # imap:<mailbox> | pipe | smtp | <kind>
    raw_sha256: str | None = Field(default=None, foreign_key="blobs.sha256", max_length=64)
    defects: list[str] = Field(default_factory=list, sa_type=JSON)
    # What a consultant must see before answering (intake.WARNING_RULES): a new
    # Reply-To, a From that failed its domain's authentication, Cc beyond the customer.
    warnings: list[str] = Field(default_factory=list, sa_type=JSON)
    warnings_confirmed_by: str | None = Field(default=None, max_length=255)
    received_at: datetime = _when(index=True)

    attachments: list["Attachment"] = Relationship()


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    filename: str = Field(default="", max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = Field(sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    # None when the message's attachment cap was reached; the raw message still has it.
    blob_sha256: str | None = Field(default=None, foreign_key="blobs.sha256", max_length=64)
    text: str = Field(default="", sa_type=Text)
    inline: bool = False
    # A PDF's text is read after the message is stored: "pending" until the drafting
    # step reads it, then "read" or why not (mail.attachments.UNREAD); "" for the rest.
    extraction: str = Field(default="", max_length=16)


class Draft(SQLModel, table=True):
    """One version of a ticket's answer: drafted from the code database, or edited by a
    consultant. Every version is kept; the newest is the one under review."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("ticket_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    version: int
    # The newest customer message the draft answers: a follow-up is drafted again.
    basis_message_id: int | None = Field(default=None, foreign_key="messages.id")
    author: str = Field(max_length=255)  # DRAFTER, or the consultant who edited it
    body: str = Field(sa_type=Text)
    analysis: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _when()


DRAFTER = "drafting"

# queued -> sending (a worker holds it; nothing handed over yet) -> unconfirmed (the
# message went to the server; its answer not yet recorded) -> sent | failed.
DELIVERY_STATES = ("queued", "sending", "unconfirmed", "sent", "failed")
DELIVERY_KINDS = ("reply", "acknowledgement", "decline")


class Delivery(SQLModel, table=True):
    """Getting one outbound message to its recipients, at most once.

    The state is committed before each step that cannot be undone, so a worker that
    dies leaves a record of how far it got: `sending` may be tried again, but
    `unconfirmed` (the server may have accepted it) is never sent again on its own.
    """

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", unique=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    kind: str = Field(max_length=16)
    state: str = Field(default="queued", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = _when(index=True)
    claimed_at: datetime | None = _when(nullable=True)
    sent_at: datetime | None = _when(nullable=True)
    transport: str = Field(default="", max_length=16)  # smtp | maildir, once sent
    server_reply: str = Field(default="", max_length=1000)  # e.g. "250 2.0.0 queued as X"
    error: str = Field(default="", sa_type=Text)  # the last failure, for people
    created_at: datetime = _when()


class Note(SQLModel, table=True):
    """A consultant's internal note on a ticket: never sent, shown to consultants only."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    author: str = Field(max_length=255)
    body: str = Field(sa_type=Text)
    created_at: datetime = _when()


class TicketViewer(SQLModel, table=True):
    """Who has a ticket open in the review app, and when their page last said so."""

    __tablename__ = "ticket_viewers"

    ticket_id: int = Field(foreign_key="tickets.id", primary_key=True)
    viewer: str = Field(max_length=320, primary_key=True)
    seen_at: datetime = _when(index=True)


class MailboxState(SQLModel, table=True):
    """How far a mailbox has been read, and which poller holds it now.

    The lease keeps one poller per mailbox across machines; it expires, so a poller
    that died does not block its successor for long.
    """

    __tablename__ = "mailbox_state"

    name: str = Field(primary_key=True, max_length=255)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    lease_owner: str | None = Field(default=None, max_length=255)
    lease_expires: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class WorkerTurn(SQLModel, table=True):
    """When a periodic job of the workers (the sweep) may run next. Every worker keeps
    the schedule; the one that moves `next_at` on runs the job, so it runs once per
    interval and never twice at the same time."""

    __tablename__ = "worker_turns"

    name: str = Field(primary_key=True, max_length=64)
    next_at: datetime = _when()


class RejectedMessage(SQLModel, table=True):
    """Input that could not become a ticket, kept with its reason for a person to see."""

    __tablename__ = "rejected_messages"

    id: int | None = Field(default=None, primary_key=True)
    raw_sha256: str = Field(foreign_key="blobs.sha256", max_length=64, unique=True)
    size: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=1000)
    source: str = Field(default="", max_length=255)
    received_at: datetime = _when(index=True)


class AuditEvent(SQLModel, table=True):
    """Who did what to which ticket, and when. Details never hold message text."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    actor: str = Field(max_length=255)
    action: str = Field(max_length=64, index=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
