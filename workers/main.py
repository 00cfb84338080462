"""The app `celery -A workers worker` runs, configured from $CONSULTANT_CONFIG (or the
embedded default)."""

from __future__ import annotations

import os

from consultant.config import load_config
from workers.app import make_celery

# The queue, the beat schedule and the outbox this worker writes hold patient data: for
# its user only (files 0600, folders 0700), as `consultant worker` makes them.
os.umask(0o077)
app = make_celery(load_config(os.environ.get("CONSULTANT_CONFIG")))
