"""Structured log lines (logfmt: `event key=value ...`) that never carry message text.

Only identifiers the service made (ticket references, database ids), sizes, counts,
outcomes and reasons go in; a caller must not pass bodies, subjects or names.
"""

from __future__ import annotations

import logging


def _value(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    return text


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, **fields: object
) -> None:
    if logger.isEnabledFor(level):
        pairs = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        logger.log(level, f"{event} {pairs}".rstrip())


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr for the long-running commands (poll, smtpd)."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
