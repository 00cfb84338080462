"""How commands print: JSON for machines, aligned text for people, progress on a
terminal; and whom a command's changes are audited under."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from consultant.accounts.users import AccountError, display_name


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


def acting_as(name: str | None) -> str:
    """Who a command's change is audited under: its --as, else the login running it."""
    try:
        return display_name(name or os.environ.get("USER") or "consultant")
    except AccountError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from None
