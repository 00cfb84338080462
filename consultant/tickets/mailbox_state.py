"""How far each mailbox has been read, and the lease that keeps one poller per mailbox.

The lease lives in the database every poller shares, so it holds across machines;
it expires, so a poller killed without a goodbye blocks its successor only until
then. A poller that lost its lease cannot record progress (record_progress checks the
owner inside the batch's transaction), so two pollers never both move on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.tickets.models import MailboxState


class LeaseLost(Exception):
    """Another poller holds this mailbox now; stop without touching the server."""


@dataclass(frozen=True)
class Progress:
    uidvalidity: int | None
    last_uid: int


def acquire_lease(engine: Engine, name: str, owner: str, seconds: float) -> bool:
    """Take or renew the lease on mailbox NAME for OWNER; False while another holds it."""
    now = utcnow()
    try:
        with transaction(engine) as session:
            state = session.exec(
                select(MailboxState).where(MailboxState.name == name).with_for_update()
            ).first()
            if state is None:
                state = MailboxState(name=name)
            elif (
                state.lease_owner not in (None, owner)
                and state.lease_expires is not None
                and state.lease_expires > now
            ):
                return False
            state.lease_owner = owner
            state.lease_expires = now + timedelta(seconds=seconds)
            state.updated_at = now
            session.add(state)
    except IntegrityError:  # another poller created the row first
        return False
    return True


def release_lease(engine: Engine, name: str, owner: str) -> None:
    with transaction(engine) as session:
        session.exec(
            update(MailboxState)
            .where(MailboxState.name == name, MailboxState.lease_owner == owner)
            .values(lease_owner=None, lease_expires=None)
        )


def load_progress(engine: Engine, name: str) -> Progress:
    with Session(engine) as session:
        state = session.get(MailboxState, name)
        if state is None:
            return Progress(None, 0)
        return Progress(state.uidvalidity, state.last_uid)


def record_progress(session: Session, name: str, owner: str, progress: Progress) -> None:
    """Inside a batch's transaction: the mailbox is read up to PROGRESS.last_uid."""
    result = session.exec(
        update(MailboxState)
        .where(MailboxState.name == name, MailboxState.lease_owner == owner)
        .values(uidvalidity=progress.uidvalidity, last_uid=progress.last_uid, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise LeaseLost(f"mailbox {name!r} is now polled by another poller")
