"""The Celery app, configured from the service's TOML config.

Production: Redis (`[queue] broker_url = "redis://..."`), workers on any number of
machines. Embedded default: kombu's SQLAlchemy transport on a SQLite file beside the
ticket database, so a queue needs nothing installed and survives restarts.

Tasks are acknowledged late (after they ran) and rejected back to the queue when a
worker dies mid-task, so a killed worker's task runs again elsewhere; every task is
idempotent, so running again is safe.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from kombu import Queue
from sqlalchemy.engine import make_url

from consultant.config import Config

SWEEP = "workers.tasks.sweep"
DRAFT = "workers.tasks.draft"
ACKNOWLEDGE = "workers.tasks.acknowledge"
SEND = "workers.tasks.send"
# Sending has its own queue, which workers read in turn with drafting's, so an
# acknowledgement never waits behind a backlog of drafts.
DRAFTING_QUEUE = "celery"
DELIVERY_QUEUE = "delivery"


def make_celery(config: Config) -> Celery:
    url = make_url(config.queue.broker_url.removeprefix("sqla+"))
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    app = Celery("caseconsultant", broker=config.queue.broker_url, include=["workers.tasks"])
    limit = config.queue.task_time_limit
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        task_soft_time_limit=limit * 0.9,
        broker_connection_retry_on_startup=True,
        beat_schedule={SWEEP: {"task": SWEEP, "schedule": config.queue.sweep_seconds}},
        task_queues=(Queue(DRAFTING_QUEUE), Queue(DELIVERY_QUEUE)),
        task_default_queue=DRAFTING_QUEUE,
        task_routes={ACKNOWLEDGE: {"queue": DELIVERY_QUEUE}, SEND: {"queue": DELIVERY_QUEUE}},
        worker_hijack_root_logger=False,
    )
    if config.queue.broker_url.startswith(("redis://", "rediss://")):
        # A task a dead worker held returns to the queue after this long.
        app.conf.broker_transport_options = {"visibility_timeout": max(60.0, limit * 2)}
    app.consultant_config = config  # type: ignore[attr-defined]
    return app
