"""Asking the queue for work right after it was committed: drafts and acknowledgements
for new mail, sending for an approved reply.

The work is already safe in the database; if the broker cannot be reached now the
request is dropped with a warning and the sweep task queues it later, so an outage of
the queue never blocks or loses anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from celery import Celery

from consultant.logs import log_event
from consultant.tickets.intake import Outcome
from consultant.tickets.references import parse_reference
from workers.app import ACKNOWLEDGE, DRAFT, SEND

log = logging.getLogger(__name__)

NEEDS_DRAFT = frozenset(("created", "appended"))


def request(app: Celery, task: str, argument: int) -> bool:
    """Queue TASK(ARGUMENT); False (and a warning) when the broker is unreachable."""
    try:
        app.send_task(task, args=[argument], retry=False)
    except Exception as exc:  # any broker failure: the sweep catches up
        log_event(
            log,
            "queue-unavailable",
            logging.WARNING,
            task=task,
            argument=argument,
            reason=repr(exc)[:200],
        )
        return False
    return True


def intake_requester(app: Celery, *, acknowledge: bool) -> Callable[[Sequence[Outcome]], None]:
    """Drafts for new and answered tickets, and (when ACKNOWLEDGE) an acknowledgement
    for each new one."""

    def after_commit(outcomes: Sequence[Outcome]) -> None:
        tickets = {o.ticket: o.status for o in outcomes if o.status in NEEDS_DRAFT and o.ticket}
        wanted = [
            (task, parse_reference(ticket))
            for ticket, status in tickets.items()
            for task in ((ACKNOWLEDGE, DRAFT) if acknowledge and status == "created" else (DRAFT,))
        ]
        for task, ticket_id in wanted:
            if not request(app, task, ticket_id):
                return

    return after_commit


def request_send(app: Celery, delivery_id: int) -> bool:
    return request(app, SEND, delivery_id)


def request_draft(app: Celery, ticket_id: int) -> bool:
    return request(app, DRAFT, ticket_id)
