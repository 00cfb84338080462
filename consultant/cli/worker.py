"""`consultant worker`: a Celery worker for this config's queue."""

from __future__ import annotations

import click

from consultant.config import Config
from workers.app import make_celery


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Also run the sweep schedule (finds tickets the queue missed); safe on every worker.",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.pass_obj
def worker(config: Config, concurrency: int, beat: bool, loglevel: str) -> None:
    """Draft tickets from the queue ([queue] broker_url) until SIGTERM.

    Run one on as many machines as needed; `celery -A workers worker` does the same
    with the config from $CONSULTANT_CONFIG.
    """
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    if beat:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", f"--schedule={config.data_dir / 'celerybeat-schedule'}"]
    make_celery(config).worker_main(argv)
