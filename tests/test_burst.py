"""A burst of mail into `consultant run` on the embedded default (hardening issue,
point 1): 500 questions by SMTP from 50 senders, in two waves, each approved as soon
as its draft is ready. Every acknowledgement goes out before its answer, each delivery
is attempted once, the backlog drains, and the queue file keeps nothing it delivered.
The same scenario, timed, is bench/burst.py."""

from __future__ import annotations

from pathlib import Path

from bench.burst import burst, write_config
from consultant.config import load_config
from consultant.database.migrate import open_database


def test_a_burst_of_mail_is_acknowledged_answered_and_drained(
    code_db: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, code_db)
    engine = open_database(load_config(config).database_url)
    figures = burst(config, engine, first=200, then=300, senders=50, timeout=600)
    assert figures.problems == []
    assert figures.approved == 500
