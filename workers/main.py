"""The app `celery -A workers worker` runs, configured from $CONSULTANT_CONFIG (or the
embedded default)."""

from __future__ import annotations

import os

from consultant.config import load_config
from workers.app import make_celery

app = make_celery(load_config(os.environ.get("CONSULTANT_CONFIG")))
