"""The `consultant` command."""

from consultant.cli.main import main

__all__ = ["main"]
