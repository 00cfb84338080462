"""The Celery side of CaseConsultant: the app factory (`workers.app`), the tasks
(`workers.tasks`) and the hook that queues drafts (`workers.enqueue`).

`celery -A workers worker` finds `workers.app` lazily (see workers.main), so importing
this package does not read a config.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from workers.main import app

        return app
    raise AttributeError(name)
