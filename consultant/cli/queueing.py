"""The intake every ingress command uses: it asks the queue for drafts and
acknowledgements after each commit, and queues declines in its own transaction."""

from __future__ import annotations

from sqlalchemy import Engine

from consultant.config import Config
from consultant.delivery.compose import Composer
from consultant.tickets.declines import decliner
from consultant.tickets.intake import Intake
from workers.app import make_celery
from workers.enqueue import intake_waker


def queued_intake(config: Config, engine: Engine) -> Intake:
    decline = None
    if config.ingest.not_allowed == "decline":
        decline = decliner(Composer.from_config(config), config.delivery.from_address)
    return Intake(
        engine,
        config.ingest,
        decline=decline,
        after_commit=intake_waker(make_celery(config)),
    )
