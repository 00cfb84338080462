"""The tasks: `work` does what the ticket database says is waiting, and `sweep` asks
for work when the queue may have lost the request.

Each worker process opens the ticket database and the code database once, on its
first task. One piece of work that fails is recorded against its ticket or delivery
and the worker goes on to the next, so bad input never stops the messages behind it.
Database outages are retried with exponential backoff and jitter. Sending keeps its
own record of attempts in the database (see delivery.deliver), so nothing is sent
twice or lost whatever happens to a task.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cache

from celery import current_app, shared_task
from celery.signals import worker_process_init
from sqlalchemy import Engine

from consultant.codes.opening import open_store
from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database
from consultant.delivery.compose import Composer
from consultant.delivery.deliver import (
    DeliverySettings,
    deliver_next,
    due_deliveries,
    fail_unconfirmed,
)
from consultant.delivery.outbox import queue_next_acknowledgement, unacknowledged
from consultant.delivery.sent_copy import copy_to_sent
from consultant.delivery.transports import Transport, make_transport
from consultant.drafting.ticket_draft import Analyzer, awaiting_draft, draft_next, make_analyzer
from consultant.logs import log_event
from consultant.templating import template_environment
from workers.app import SWEEP, WORK
from workers.enqueue import wake
from workers.turns import take_turn

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
    """How long work can be held before it is taken for dead: past the hard time
    limit, the worker has killed the task holding it."""
    return timedelta(seconds=_config().queue.task_time_limit * 2)


def _slice_seconds() -> float:
    """How long one `work` task goes on before it hands over to a fresh one, well
    inside the task's time limit."""
    return min(60.0, _config().queue.task_time_limit / 4)


WARM_UP = "Is E11.65 billable for type 2 diabetes with hyperglycemia?"


@worker_process_init.connect
def _open_code_database(**_: object) -> None:
    """Open the code database and load its search data (one analysis) as the worker
    process starts, not on its first task, so the first question after a restart is
    drafted as fast as the rest."""
    try:
        _analyzer()(WARM_UP)
    except Exception as exc:  # drafting reports it properly when it runs
        log_event(log, "code-database-unavailable", logging.WARNING, reason=repr(exc)[:300])


def _acknowledge_one() -> bool:
    """Queue one new ticket's acknowledgement (sent by _send_one next)."""
    if not _config().delivery.acknowledge:
        return False
    config = _config()
    return queue_next_acknowledgement(_engine(), _composer(), config.delivery.from_address)


def _send_one() -> bool:
    try:
        outcome = deliver_next(_engine(), _transport(), _settings())
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # a bug: the delivery is failed with it; on to the next
        log_event(log, "delivery-error", logging.ERROR, error=repr(exc)[:300])
        return True
    if outcome is None:
        return False
    log_event(
        log,
        "delivery",
        logging.WARNING if outcome.status == "failed" else logging.INFO,
        delivery=outcome.delivery_id,
        status=outcome.status,
        detail=outcome.detail[:300],
    )
    settings = _config().delivery
    if outcome.status == "sent" and outcome.raw and settings.sent_mailbox is not None:
        copy_to_sent(_config().mailbox(settings.sent_mailbox), settings.sent_folder, outcome.raw)
    return True


def _draft_one() -> bool:
    drafted = draft_next(_engine(), _analyzer(), _config().ingest, stale_after=_stale_after())
    if drafted is None:
        return False
    ticket_id, outcome = drafted
    log_event(
        log,
        "draft",
        logging.ERROR if outcome.status == "failed" else logging.INFO,
        ticket=ticket_id,
        status=outcome.status,
        version=outcome.draft_version or "-",
    )
    return True


# Most urgent first: a customer hears at once that their question arrived, and an
# answer goes out before the next draft is made.
STEPS = (_acknowledge_one, _send_one, _draft_one)


@shared_task(
    name=WORK,
    autoretry_for=(DatabaseUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def work() -> int:
    """Do waiting work, one piece at a time and most urgent first, until none is left;
    after a time slice, hand over to a fresh task (so no task nears its time limit).
    Returns how many pieces were done."""
    deadline = time.monotonic() + _slice_seconds()
    done = 0
    while any(step() for step in STEPS):
        done += 1
        if time.monotonic() > deadline:
            wake(current_app)
            break
    return done


def pending_work(engine: Engine, config: Config, stale_after: timedelta) -> int:
    """How many pieces of work are waiting for a worker."""
    acknowledgements = len(unacknowledged(engine)) if config.delivery.acknowledge else 0
    return (
        acknowledgements
        + len(due_deliveries(engine, stale_after=stale_after))
        + len(awaiting_draft(engine, stale_after=stale_after))
    )


@shared_task(name=SWEEP)
def sweep() -> int:
    """Once per interval across all workers: fail deliveries a worker died in the middle
    of handing over, and wake workers if work is waiting (its request may have been
    lost: the broker was down, or restarted without its data). Returns the pieces of
    work waiting."""
    config = _config()
    engine = _engine()
    if not take_turn(engine, SWEEP, timedelta(seconds=config.queue.sweep_seconds * 0.8)):
        return 0
    stale_after = _stale_after()
    doubtful = fail_unconfirmed(engine, stale_after=stale_after)
    waiting = pending_work(engine, config, stale_after)
    if waiting:
        wake(current_app, waiting)
    if waiting or doubtful:
        log_event(log, "sweep", waiting=waiting, in_doubt=len(doubtful))
    return waiting
