"""Whose turn it is to run a periodic job, across every worker sharing the database.

Each worker runs the beat schedule (so losing one machine loses no sweep), and each
sweep message may wait behind other work; the table `worker_turns` lets the first
sweep of an interval run and turns the others away.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from consultant.database.engine import transaction
from consultant.database.types import utcnow
from consultant.tickets.models import WorkerTurn


def take_turn(engine: Engine, name: str, every: timedelta) -> bool:
    """True for the first caller since the job NAME last ran, at least EVERY ago."""
    now = utcnow()
    try:
        with transaction(engine) as session:
            if session.get(WorkerTurn, name) is None:
                session.add(WorkerTurn(name=name, next_at=now + every))
                return True
            moved = session.exec(  # type: ignore[call-overload]
                update(WorkerTurn)
                .where(col(WorkerTurn.name) == name, col(WorkerTurn.next_at) <= now)
                .values(next_at=now + every)
            )
            return bool(moved.rowcount)
    except IntegrityError:  # another worker made the row first: its turn
        return False
