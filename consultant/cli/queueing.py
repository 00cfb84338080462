"""The intake every ingress command uses: it asks the queue for drafts after each commit."""

from __future__ import annotations

from sqlalchemy import Engine

from consultant.config import Config
from consultant.tickets.intake import Intake
from workers.app import make_celery
from workers.enqueue import draft_requester


def queued_intake(config: Config, engine: Engine) -> Intake:
    return Intake(
        engine,
        config.ingest,
        service_name=config.drafting.service_name,
        after_commit=draft_requester(make_celery(config)),
    )
