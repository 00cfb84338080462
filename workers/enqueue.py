"""Asking the workers to look at the ticket database after a commit made work: new or
answered tickets, an approved reply.

The work is already safe in the database; a queue message only wakes a worker. If the
broker cannot be reached now the request is dropped with a warning and the sweep asks
again, so an outage of the queue never blocks or loses anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from celery import Celery

from consultant.logs import log_event
from consultant.tickets.intake import Outcome
from workers.app import WORK, WORK_QUEUE

log = logging.getLogger(__name__)

NEEDS_WORK = frozenset(("created", "appended"))
# More requests than this at once only wake workers that find nothing left to do.
MOST_AT_ONCE = 8


def wake(app: Celery, wanted: int = 1) -> bool:
    """Have up to WANTED workers (at most MOST_AT_ONCE) look for work, counting the
    requests already waiting in the queue; False (and a warning) when the broker is
    unreachable."""
    wanted = min(wanted, MOST_AT_ONCE)
    if wanted <= 0:
        return True
    try:
        with app.producer_or_acquire() as producer:
            waiting = producer.channel.queue_declare(queue=WORK_QUEUE).message_count
            for _ in range(wanted - waiting):
                app.send_task(WORK, producer=producer, retry=False)
    except Exception as exc:  # any broker failure: the sweep catches up
        log_event(log, "queue-unavailable", logging.WARNING, task=WORK, reason=repr(exc)[:200])
        return False
    return True


def intake_waker(app: Celery) -> Callable[[Sequence[Outcome]], None]:
    """After a batch is stored: a worker for each new or answered ticket, as wake()
    allows."""

    def after_commit(outcomes: Sequence[Outcome]) -> None:
        wake(app, sum(1 for outcome in outcomes if outcome.status in NEEDS_WORK))

    return after_commit
