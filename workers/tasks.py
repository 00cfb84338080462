"""The tasks: draft a ticket, and sweep for tickets the queue missed.

Each worker process opens the ticket database and the code database once, on its
first task. Database outages are retried with exponential backoff and jitter; a task
that still fails leaves its ticket `failed` with the error, never silently lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache
from typing import Any

from celery import Task, current_app, shared_task
from sqlalchemy import Engine

from consultant.codes.opening import open_store
from consultant.config import Config
from consultant.database.engine import DatabaseUnavailable
from consultant.database.migrate import open_database
from consultant.drafting.ticket_draft import (
    Analyzer,
    awaiting_draft,
    draft_ticket,
    make_analyzer,
    mark_failed,
)
from consultant.logs import log_event
from consultant.templating import template_environment
from workers.app import DRAFT, SWEEP

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


@shared_task(
    name=DRAFT,
    base=TicketTask,
    autoretry_for=(DatabaseUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def draft(ticket_id: int) -> str:
    outcome = draft_ticket(_engine(), ticket_id, _analyzer())
    log_event(
        log, "draft", ticket=ticket_id, status=outcome.status, version=outcome.draft_version or "-"
    )
    return outcome.status


@shared_task(name=SWEEP)
def sweep() -> int:
    queue = _config().queue
    # New tickets get their draft task from the ingress at once; one left without a
    # draft for a whole sweep interval is one the ingress could not queue.
    due = awaiting_draft(
        _engine(),
        quiet_for=timedelta(seconds=queue.sweep_seconds),
        stuck_after=timedelta(seconds=queue.task_time_limit * 2),
    )
    for ticket_id in due:
        draft.delay(ticket_id)
    if due:
        log_event(log, "sweep", queued=len(due))
    return len(due)
