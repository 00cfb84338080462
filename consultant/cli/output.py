"""How commands print: JSON for machines, aligned text for people, progress on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def progress_printer(label: str) -> Callable[[int], None]:
    """A progress callback that rewrites one stderr line on a terminal and stays quiet in logs."""
    if not sys.stderr.isatty():
        return lambda _count: None

    def show(count: int) -> None:
        click.echo(f"\r{label}: {count:,} rows", nl=False, err=True)

    return show


def end_progress() -> None:
    if sys.stderr.isatty():
        click.echo("", err=True)
