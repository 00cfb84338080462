"""The Celery app, configured from the service's TOML config.

The ticket database, not the broker, records what work there is: tickets awaiting a
draft or an acknowledgement, deliveries due. A queue message only asks a worker to
look (a `work` task takes what is waiting, most urgent first, until nothing is left),
so a message lost, delayed or delivered twice costs nothing, and each piece of work is
done once however many messages ask for it.

Production: Redis (`[queue] broker_url = "redis://..."`), workers on any number of
machines. Embedded default: `sqlite:///<data_dir>/queue.sqlite` (workers.sqlite_broker),
a file beside the ticket database, so a queue needs nothing installed.

Tasks are acknowledged late (after they ran) and rejected back to the queue when a
worker dies mid-task, and a message whose worker vanished returns after the visibility
timeout.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

import workers.sqlite_broker  # noqa: F401 (registers the sqlite:// transport)
from consultant.config import Config

SWEEP = "workers.tasks.sweep"
WORK = "workers.tasks.work"
WORK_QUEUE = "celery"


def make_celery(config: Config) -> Celery:
    app = Celery("caseconsultant", broker=config.queue.broker_url, include=["workers.tasks"])
    limit = config.queue.task_time_limit
    interval = config.queue.sweep_seconds
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        task_soft_time_limit=limit * 0.9,
        broker_connection_retry_on_startup=True,
        # A sweep that waited longer than its interval is dropped: the next one is due.
        beat_schedule={
            SWEEP: {"task": SWEEP, "schedule": interval, "options": {"expires": interval}}
        },
        task_queues=(Queue(WORK_QUEUE),),
        task_default_queue=WORK_QUEUE,
        worker_hijack_root_logger=False,
        # A task a dead worker held returns to the queue after this long.
        broker_transport_options={"visibility_timeout": max(60.0, limit * 2)},
    )
    app.consultant_config = config  # type: ignore[attr-defined]
    return app
