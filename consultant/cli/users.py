"""`consultant users`: accounts for the review app and the API."""

from __future__ import annotations

import sys

import click
from sqlmodel import Session, select

from consultant.accounts.models import ROLES, User
from consultant.accounts.users import AccountError, add_user, create_token, find_user
from consultant.cli.database import open_for_command
from consultant.config import Config


@click.group()
def users() -> None:
    """Add consultants and administrators, list them, make API tokens."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="consultant", show_default=True)
@click.option("--name", default="", help="Shown beside the address.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from one line of standard input instead of a prompt.",
)
@click.pass_obj
def add_command(config: Config, email: str, role: str, name: str, password_stdin: bool) -> None:
    """Add the user EMAIL (the login name)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = add_user(open_for_command(config), email, password, role=role, name=name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added {user.email} ({user.role}).")


@users.command("list")
@click.pass_obj
def list_command(config: Config) -> None:
    """Every account."""
    with Session(open_for_command(config)) as session:
        for user in session.exec(select(User).order_by(User.email)).all():
            state = "" if user.active else "  (inactive)"
            click.echo(f"{user.email:<40} {user.role:<10} {user.name}{state}")


@users.command("token")
@click.argument("email")
@click.option("--name", default="", help="What the token is for (shown in lists).")
@click.pass_obj
def token_command(config: Config, email: str, name: str) -> None:
    """Make an API token for EMAIL; it is printed once and never stored."""
    engine = open_for_command(config)
    with Session(engine) as session:
        user = find_user(session, email)
    if user is None or user.id is None:
        raise click.ClickException(f"no user {email}; add one with `consultant users add`")
    click.echo(create_token(engine, user.id, name))
