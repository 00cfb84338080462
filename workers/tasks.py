"""The tasks: draft a ticket, acknowledge a new one, send a queued message, and sweep
for work the queue missed.

Each worker process opens the ticket database and the code database once, on its
first task. Database outages are retried with exponential backoff and jitter; a task
that still fails leaves its ticket `failed` with the error, never silently lost.
Sending keeps its own record of attempts in the database (see delivery.deliver), so a
task run twice, or lost with a Redis restart, neither sends twice nor loses mail.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache
from typing import Any

from celery import Task, current_app, shared_task
from celery.signals import worker_process_init
from sqlalchemy import Engine

from consultant.codes.opening import open_store
from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database
from consultant.delivery.compose import Composer
from consultant.delivery.deliver import (
    DeliverySettings,
    deliver,
    due_deliveries,
    fail_unconfirmed,
)
from consultant.delivery.outbox import queue_acknowledgement, unacknowledged
from consultant.delivery.sent_copy import copy_to_sent
from consultant.delivery.transports import Transport, make_transport
from consultant.drafting.ticket_draft import (
    Analyzer,
    awaiting_draft,
    draft_ticket,
    make_analyzer,
    mark_failed,
)
from consultant.logs import log_event
from consultant.templating import template_environment
from workers.app import ACKNOWLEDGE, DRAFT, SEND, SWEEP

log = logging.getLogger(__name__)


def _config() -> Config:
    return current_app.consultant_config  # type: ignore[attr-defined,no-any-return]


@cache
def _engine() -> Engine:
    return open_database(_config().database_url)


@cache
def _analyzer() -> Analyzer:
    config = _config()
    return make_analyzer(
        open_store(config.codes.database),
        templates=template_environment(config.drafting.templates_dir),
        suggestions=config.drafting.suggestions,
        service_name=config.drafting.service_name,
    )


@cache
def _composer() -> Composer:
    return Composer.from_config(_config())


@cache
def _transport() -> Transport:
    return make_transport(_config())


def _settings() -> DeliverySettings:
    config = _config()
    return DeliverySettings(
        from_name=config.delivery.from_name,
        max_attempts=config.delivery.max_attempts,
        retry_seconds=config.delivery.retry_seconds,
        stale_after=_stale_after(),
    )


def _stale_after() -> timedelta:
    """How long a task can hold work before it is taken for dead: past the hard time
    limit, the worker has killed it."""
    return timedelta(seconds=_config().queue.task_time_limit * 2)


_RETRIED = {
    "autoretry_for": (DatabaseUnavailable,),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


WARM_UP = "Is E11.65 billable for type 2 diabetes with hyperglycemia?"


@worker_process_init.connect
def _open_code_database(**_: object) -> None:
    """Open the code database and load its search data (one analysis) as the worker
    process starts, not on its first task, so the first question after a restart is
    drafted as fast as the rest."""
    try:
        _analyzer()(WARM_UP)
    except Exception as exc:  # the draft task reports it properly when it runs
        log_event(log, "code-database-unavailable", logging.WARNING, reason=repr(exc)[:300])


class TicketTask(Task):
    """Marks the ticket failed, with the error, once retries are used up."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        ticket_id = args[0] if args else kwargs.get("ticket_id")
        log_event(
            log,
            "task-failed",
            logging.ERROR,
            task=self.name,
            ticket=ticket_id,
            error=repr(exc)[:300],
        )
        if ticket_id is not None:
            mark_failed(_engine(), int(ticket_id), f"{self.name}: {exc!r}")


@shared_task(name=DRAFT, base=TicketTask, **_RETRIED)
def draft(ticket_id: int) -> str:
    outcome = draft_ticket(_engine(), ticket_id, _analyzer())
    log_event(
        log, "draft", ticket=ticket_id, status=outcome.status, version=outcome.draft_version or "-"
    )
    return outcome.status


@shared_task(bind=True, name=SEND, **_RETRIED)
def send(self: Task, delivery_id: int) -> str:
    """Send queued delivery DELIVERY_ID; a transient failure comes back later."""
    outcome = deliver(_engine(), delivery_id, _transport(), _settings())
    log_event(
        log,
        "delivery",
        logging.WARNING if outcome.status == "failed" else logging.INFO,
        delivery=delivery_id,
        status=outcome.status,
        detail=outcome.detail[:300],
    )
    if outcome.status == "retry":
        assert outcome.retry_in is not None
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    settings = _config().delivery
    if outcome.status == "sent" and outcome.raw and settings.sent_mailbox is not None:
        mailbox = _config().mailbox(settings.sent_mailbox)
        copy_to_sent(mailbox, settings.sent_folder, outcome.raw)
    return outcome.status


@shared_task(name=ACKNOWLEDGE, **_RETRIED)
def acknowledge(ticket_id: int) -> str:
    """Tell a new ticket's customer its reference, once."""
    config = _config()
    delivery_id = queue_acknowledgement(
        _engine(), ticket_id, _composer(), config.delivery.from_address
    )
    if delivery_id is None:
        return "skipped"
    send.delay(delivery_id)
    return "queued"


@shared_task(name=SWEEP)
def sweep() -> int:
    """Queue what the queue missed: drafts, acknowledgements and deliveries whose task
    was lost (broker down when it was asked for, or restarted without its data), and
    fail deliveries a worker died in the middle of handing over."""
    config = _config()
    engine = _engine()
    grace = timedelta(seconds=config.queue.sweep_seconds)
    stale_after = _stale_after()
    # New tickets get their tasks from the ingress at once; one left waiting for a
    # whole sweep interval is one the ingress could not queue.
    drafts = awaiting_draft(engine, quiet_for=grace, stuck_after=stale_after)
    for ticket_id in drafts:
        draft.delay(ticket_id)
    acks = unacknowledged(engine, grace=grace) if config.delivery.acknowledge else []
    for ticket_id in acks:
        acknowledge.delay(ticket_id)
    deliveries = due_deliveries(engine, grace=grace, stale_after=stale_after)
    for delivery_id in deliveries:
        send.delay(delivery_id)
    doubtful = fail_unconfirmed(engine, stale_after=stale_after)
    if drafts or acks or deliveries or doubtful:
        log_event(
            log,
            "sweep",
            drafts=len(drafts),
            acknowledgements=len(acks),
            deliveries=len(deliveries),
            in_doubt=len(doubtful),
        )
    return len(drafts) + len(acks) + len(deliveries)
