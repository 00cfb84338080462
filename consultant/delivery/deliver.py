"""Sending one queued delivery, at most once.

Each step that cannot be undone is preceded by a commit that records it: the claim
(`sending`), then the hand-over (`unconfirmed`) right before the server may take the
message. A worker that dies while `sending` left nothing at the server, so the
delivery is tried again; one that dies while `unconfirmed` may have delivered it, so
the delivery is failed for a person to check instead of being sent twice.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from consultant.database.engine import DatabaseUnavailable, read_transaction, transaction
from consultant.database.types import utcnow
from consultant.delivery.mime import build_mime
from consultant.delivery.transports import (
    DeliveryInDoubt,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from consultant.tickets.actions import record_change
from consultant.tickets.blobs import load_blob
from consultant.tickets.models import AuditEvent, Blob, Delivery, Message, Ticket

DELIVERER = "delivery"
RETRY_CEILING_S = 3600.0


@dataclass(frozen=True)
class DeliverySettings:
    from_name: str
    max_attempts: int
    retry_seconds: float
    stale_after: timedelta  # a claim older than this belongs to a dead worker


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # sent | retry | failed | skipped
    detail: str = ""
    retry_in: float | None = None
    raw: bytes | None = None  # what was sent, for the copy in the Sent folder
    delivery_id: int | None = None


class _ClaimLost(Exception):
    """Another worker took this delivery over (ours was taken for dead)."""


@dataclass(frozen=True)
class _Claim:
    claimed_at: datetime
    attempts: int
    sender: str
    recipients: list[str]
    raw: bytes


def retry_delay(attempts: int, first: float) -> float:
    """Exponential backoff with jitter: FIRST, doubling per attempt, up to an hour, each
    delay drawn from its upper half so retries from many workers spread out."""
    ceiling = min(RETRY_CEILING_S, first * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def _due(now: datetime, stale_after: timedelta) -> ColumnElement[bool]:
    """Deliveries a worker should take now: queued ones whose attempt is due, and ones a
    dead worker left `sending` (nothing reached the server). A reply waits while its
    ticket's acknowledgement is still on its way, so the customer never gets the
    answer before the note that their question arrived."""
    acknowledgement = aliased(Delivery)
    acknowledging = exists().where(
        acknowledgement.ticket_id == Delivery.ticket_id,
        acknowledgement.kind == "acknowledgement",
        col(acknowledgement.state).in_(("queued", "sending")),
    )
    return and_(
        or_(
            and_(Delivery.state == "queued", Delivery.next_attempt_at <= now),
            and_(Delivery.state == "sending", col(Delivery.claimed_at) < now - stale_after),
        ),
        or_(Delivery.kind != "reply", ~acknowledging),
    )


def _claim(
    session: Session, delivery: Delivery, settings: DeliverySettings, now: datetime
) -> _Claim | str:
    """Take DELIVERY for this worker, or say why not."""
    if delivery.state in ("sent", "failed", "unconfirmed"):
        return f"the delivery is {delivery.state}"
    if delivery.state == "sending":
        assert delivery.claimed_at is not None
        if delivery.claimed_at > now - settings.stale_after:
            return "another worker is sending it"
    elif delivery.next_attempt_at > now:
        return "its next attempt is not due yet"
    message = session.get(Message, delivery.message_id)
    assert message is not None and message.from_address is not None
    if message.raw_sha256 is None:
        # Built once, on the first claim: every attempt sends the same bytes (the same
        # Date and Message-ID), and the record shows exactly what went out.
        try:
            raw = build_mime(message, kind=delivery.kind, from_name=settings.from_name)
        except Exception as exc:  # an address or header the email package refuses
            raise PermanentDeliveryError(
                f"the message cannot be built ({type(exc).__name__}: {exc}); correct the "
                "address or subject and approve the answer again"
            ) from None
        digest = hashlib.sha256(raw).hexdigest()
        if session.get(Blob, digest) is None:
            session.add(Blob(sha256=digest, size=len(raw), data=raw))
        message.raw_sha256 = digest
        session.add(message)
    else:
        raw = load_blob(session, message.raw_sha256)
    delivery.state = "sending"
    delivery.claimed_at = now
    delivery.attempts += 1
    session.add(delivery)
    return _Claim(now, delivery.attempts, message.from_address, [*message.to, *message.cc], raw)


def _move(engine: Engine, delivery_id: int, claimed_at: datetime, old: str, new: str) -> bool:
    """Move the delivery from OLD to NEW if this worker's claim still holds it."""
    with transaction(engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(Delivery)
            .where(
                col(Delivery.id) == delivery_id,
                col(Delivery.state) == old,
                col(Delivery.claimed_at) == claimed_at,
            )
            .values(state=new)
        )
        return bool(result.rowcount)


def _finish(
    engine: Engine,
    delivery_id: int,
    state: str,
    *,
    error: str = "",
    server_reply: str = "",
    transport: str = "",
    retry_at: datetime | None = None,
) -> None:
    """Record how the attempt ended, and what it means for the ticket."""
    with transaction(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.state = state
        delivery.error = error
        if retry_at is not None:
            delivery.next_attempt_at = retry_at
        if state == "sent":
            delivery.sent_at = utcnow()
            delivery.server_reply = server_reply
            delivery.transport = transport
        session.add(delivery)
        _record_on_ticket(session, delivery)


def _record_on_ticket(session: Session, delivery: Delivery) -> None:
    if delivery.ticket_id is None:
        return
    ticket = session.get(Ticket, delivery.ticket_id)
    assert ticket is not None
    detail: dict[str, object] = {"delivery": delivery.id, "attempts": delivery.attempts}
    if delivery.state == "queued":
        session.add(
            AuditEvent(
                actor=DELIVERER,
                action=f"{delivery.kind}.deferred",
                ticket_id=ticket.id,
                message_id=delivery.message_id,
                detail={**detail, "error": delivery.error[:300]},
            )
        )
        return
    # A customer's follow-up may have reopened the ticket meanwhile: its status then
    # belongs to the new question, and only the audit log records this delivery.
    if delivery.kind == "reply" and ticket.status == "approved":
        ticket.status = delivery.state
        ticket.error = delivery.error if delivery.state == "failed" else None
    if delivery.state == "failed":
        detail["error"] = delivery.error[:300]
    record_change(session, ticket, DELIVERER, f"{delivery.kind}.{delivery.state}", **detail)


def deliver(
    engine: Engine, delivery_id: int, transport: Transport, settings: DeliverySettings
) -> DeliveryOutcome:
    """Try DELIVERY_ID once; safe to call again at any time (a queue may run it twice)."""

    def chosen(session: Session) -> Delivery:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None:
            raise LookupError(f"no delivery with id {delivery_id}")
        return delivery

    outcome = _attempt(engine, chosen, transport, settings)
    assert outcome is not None
    return outcome


def deliver_next(
    engine: Engine, transport: Transport, settings: DeliverySettings
) -> DeliveryOutcome | None:
    """Take the oldest delivery that is due (see _due) and try it once; None when none
    is due. Workers on PostgreSQL skip each other's rows instead of waiting. Whether
    any is due is read first, so a worker looking takes no write lock for nothing."""
    if not due_deliveries(engine, stale_after=settings.stale_after, limit=1):
        return None

    def oldest_due(session: Session) -> Delivery | None:
        return session.exec(
            select(Delivery)
            .where(_due(utcnow(), settings.stale_after))
            .order_by(col(Delivery.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()

    return _attempt(engine, oldest_due, transport, settings)


def _attempt(
    engine: Engine,
    choose: Callable[[Session], Delivery | None],
    transport: Transport,
    settings: DeliverySettings,
) -> DeliveryOutcome | None:
    delivery_id = None
    try:
        with transaction(engine) as session:
            delivery = choose(session)
            if delivery is None:
                return None
            delivery_id = delivery.id
            assert delivery_id is not None
            claim = _claim(session, delivery, settings, utcnow())
    except PermanentDeliveryError as exc:
        assert delivery_id is not None
        _finish(engine, delivery_id, "failed", error=str(exc))
        return DeliveryOutcome("failed", str(exc), delivery_id=delivery_id)
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if delivery_id is None:
            raise
        # A bug while claiming: recorded, so the delivery is not taken again and again.
        _finish(engine, delivery_id, "failed", error=f"unexpected error claiming it: {exc!r}")
        raise
    if isinstance(claim, str):
        return DeliveryOutcome("skipped", claim, delivery_id=delivery_id)
    return _send(engine, delivery_id, claim, transport, settings)


def _send(
    engine: Engine,
    delivery_id: int,
    claim: _Claim,
    transport: Transport,
    settings: DeliverySettings,
) -> DeliveryOutcome:
    """Hand the claimed message to the transport and record how it ended."""
    handed_over = False

    def handing_over() -> None:
        nonlocal handed_over
        if not _move(engine, delivery_id, claim.claimed_at, "sending", "unconfirmed"):
            raise _ClaimLost
        handed_over = True

    try:
        answer = transport.send(claim.sender, claim.recipients, claim.raw, handing_over)
    except TransientDeliveryError as exc:
        if claim.attempts >= settings.max_attempts:
            error = f"gave up after {claim.attempts} attempts; the last: {exc}"
            _finish(engine, delivery_id, "failed", error=error)
            return DeliveryOutcome("failed", error, delivery_id=delivery_id)
        delay = retry_delay(claim.attempts, settings.retry_seconds)
        retry_at = utcnow() + timedelta(seconds=delay)
        _finish(engine, delivery_id, "queued", error=str(exc), retry_at=retry_at)
        return DeliveryOutcome("retry", str(exc), retry_in=delay, delivery_id=delivery_id)
    except PermanentDeliveryError as exc:
        _finish(engine, delivery_id, "failed", error=str(exc))
        return DeliveryOutcome("failed", str(exc), delivery_id=delivery_id)
    except _ClaimLost:
        return DeliveryOutcome(
            "skipped", "another worker took the delivery over", delivery_id=delivery_id
        )
    except DeliveryInDoubt as exc:
        error = f"{exc}. Not sent again on its own: check before approving it again."
        _finish(engine, delivery_id, "failed", error=error)
        return DeliveryOutcome("failed", error, delivery_id=delivery_id)
    except DatabaseUnavailable:
        raise  # the task is retried; a claim left `sending` is taken over by the sweep
    except Exception as exc:
        # An error no transport expected (a bug): recorded, never retried blindly.
        where = "after" if handed_over else "before"
        error = f"unexpected error {where} the hand-over to the server: {exc!r}"
        _finish(engine, delivery_id, "failed", error=error[:2000])
        raise
    _finish(engine, delivery_id, "sent", server_reply=answer, transport=transport.name)
    return DeliveryOutcome("sent", answer, raw=claim.raw, delivery_id=delivery_id)


def due_deliveries(
    engine: Engine, *, stale_after: timedelta, limit: int | None = None
) -> list[int]:
    """The deliveries a worker would take now (see _due), oldest first."""
    with read_transaction(engine) as session:
        return list(
            session.exec(
                select(Delivery.id)
                .where(_due(utcnow(), stale_after))
                .order_by(col(Delivery.id))
                .limit(limit)
            ).all()
        )


def fail_unconfirmed(engine: Engine, *, stale_after: timedelta) -> list[int]:
    """Fail deliveries a worker died in the middle of handing over: the server may have
    accepted them, so a person decides whether to send again."""
    cutoff = utcnow() - stale_after
    with transaction(engine) as session:
        stuck = session.exec(
            select(Delivery).where(
                Delivery.state == "unconfirmed", col(Delivery.claimed_at) < cutoff
            )
        ).all()
        for delivery in stuck:
            delivery.state = "failed"
            delivery.error = (
                "the worker stopped while handing this message to the mail server, so it "
                "may or may not have arrived; check the server's log for its Message-ID "
                "before approving it again"
            )
            session.add(delivery)
            _record_on_ticket(session, delivery)
        return [d.id for d in stuck if d.id is not None]
