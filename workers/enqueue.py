"""Asking the queue for drafts right after an ingress has committed new mail.

The message is already safe in the database; if the broker cannot be reached now the
request is dropped with a warning and the sweep task queues the draft later, so an
outage of the queue never blocks or loses incoming mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from celery import Celery

from consultant.logs import log_event
from consultant.tickets.intake import Outcome
from consultant.tickets.references import parse_reference
from workers.app import DRAFT

log = logging.getLogger(__name__)

NEEDS_DRAFT = frozenset(("created", "appended"))


def draft_requester(app: Celery) -> Callable[[Sequence[Outcome]], None]:
    def request(outcomes: Sequence[Outcome]) -> None:
        tickets = {
            parse_reference(o.ticket) for o in outcomes if o.status in NEEDS_DRAFT and o.ticket
        }
        for ticket_id in sorted(tickets):
            try:
                app.send_task(DRAFT, args=[ticket_id], retry=False)
            except Exception as exc:  # any broker failure: the sweep catches up
                log_event(
                    log,
                    "queue-unavailable",
                    logging.WARNING,
                    ticket=ticket_id,
                    reason=repr(exc)[:200],
                )
                return

    return request
