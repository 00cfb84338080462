"""`consultant users`: accounts for the review app and the API."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy import Engine
from sqlmodel import Session, select

from consultant.accounts.models import ROLES, User
from consultant.accounts.users import (
    AccountError,
    add_user,
    create_token,
    require_user,
    reset_password,
    revoke_token,
    set_active,
    token_summary,
    tokens_of,
)
from consultant.cli.database import open_for_command
from consultant.cli.output import acting_as, emit_json
from consultant.config import Config

T = TypeVar("T")

password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from one line of standard input instead of a prompt.",
)
as_option = click.option("--as", "actor", help="Who makes the change (default: $USER).")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _account(config: Config, change: Callable[[Engine], T]) -> T:
    """CHANGE made on the ticket database, its AccountError a one-line error."""
    try:
        return change(open_for_command(config))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def users() -> None:
    """Add, list, deactivate and activate users; reset passwords; make, list and revoke
    API tokens."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="consultant", show_default=True)
@click.option("--name", default="", help="Shown beside the address.")
@password_stdin_option
@as_option
@click.pass_obj
def add_command(
    config: Config, email: str, role: str, name: str, password_stdin: bool, actor: str | None
) -> None:
    """Add the user EMAIL (the login name)."""
    password = _password(password_stdin)
    user = _account(
        config,
        lambda engine: add_user(
            engine, email, password, role=role, name=name, actor=acting_as(actor)
        ),
    )
    click.echo(f"Added {user.email} ({user.role}).")


@users.command("list")
@click.pass_obj
def list_command(config: Config) -> None:
    """Every account."""
    with Session(open_for_command(config)) as session:
        for user in session.exec(select(User).order_by(User.email)).all():
            state = "" if user.active else "  (inactive)"
            click.echo(f"{user.email:<40} {user.role:<10} {user.name}{state}")


@users.command("deactivate")
@click.argument("email")
@as_option
@click.pass_obj
def deactivate_command(config: Config, email: str, actor: str | None) -> None:
    """Shut EMAIL out at once: their sessions end, their tokens and logins are refused.

    Their tokens are kept (`revoke-token` removes them) and work again after
    `activate`. The last active administrator cannot be deactivated.
    """
    if _account(config, lambda engine: set_active(engine, email, False, actor=acting_as(actor))):
        click.echo(f"Deactivated {email.strip().lower()}: logged out, tokens refused.")
    else:
        click.echo(f"{email.strip().lower()} is already inactive.")


@users.command("activate")
@click.argument("email")
@as_option
@click.pass_obj
def activate_command(config: Config, email: str, actor: str | None) -> None:
    """Let EMAIL log in again (and their tokens work again)."""
    if _account(config, lambda engine: set_active(engine, email, True, actor=acting_as(actor))):
        click.echo(f"Activated {email.strip().lower()}.")
    else:
        click.echo(f"{email.strip().lower()} is already active.")


@users.command("reset-password")
@click.argument("email")
@password_stdin_option
@as_option
@click.pass_obj
def reset_password_command(
    config: Config, email: str, password_stdin: bool, actor: str | None
) -> None:
    """Give EMAIL a new password; their browser sessions end, and a lockout after
    failed logins is lifted."""
    password = _password(password_stdin)
    _account(config, lambda engine: reset_password(engine, email, password, actor=acting_as(actor)))
    click.echo(f"New password set for {email.strip().lower()}; their sessions are ended.")


@users.command("token")
@click.argument("email")
@click.option("--name", default="", help="What the token is for (shown in lists).")
@as_option
@click.pass_obj
def token_command(config: Config, email: str, name: str, actor: str | None) -> None:
    """Make an API token for EMAIL; it is printed once and never stored."""

    def make(engine: Engine) -> str:
        with Session(engine) as session:
            user_id = require_user(session, email).id
        assert user_id is not None
        return create_token(engine, user_id, name, actor=acting_as(actor))

    click.echo(_account(config, make))


@users.command("tokens")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def tokens_command(config: Config, email: str, as_json: bool) -> None:
    """EMAIL's API tokens: id, name, when made and last used (never the secret)."""

    def listed(engine: Engine) -> list[dict]:
        with Session(engine) as session:
            return [token_summary(t) for t in tokens_of(session, require_user(session, email))]

    tokens = _account(config, listed)
    if as_json:
        emit_json(tokens)
        return
    click.echo(f"{'ID':>6}  {'NAME':<30}  {'CREATED':<19}  LAST USED")
    for token in tokens:
        click.echo(
            f"{token['id']:>6}  {token['name'] or '-':<30}  {token['created'][:19]:<19}  "
            f"{(token['last_used'] or 'never')[:19]}"
        )


@users.command("revoke-token")
@click.argument("email")
@click.argument("token")
@as_option
@click.pass_obj
def revoke_token_command(config: Config, email: str, token: str, actor: str | None) -> None:
    """Revoke EMAIL's TOKEN (its name or id, from `consultant users tokens`) at once."""
    revoked = _account(
        config, lambda engine: revoke_token(engine, email, token, actor=acting_as(actor))
    )
    click.echo(
        f"Revoked token {revoked.id} ({revoked.name or 'no name'}) of {email.strip().lower()}."
    )
