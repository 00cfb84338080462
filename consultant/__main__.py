"""`python -m consultant` is the `consultant` command."""

from consultant.cli import main

main()
