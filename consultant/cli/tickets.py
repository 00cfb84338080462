"""`consultant tickets`: what arrived, and what became of it."""

from __future__ import annotations

from collections.abc import Callable

import click
from sqlalchemy import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from consultant.cli.codes import open_store
from consultant.cli.database import open_for_command
from consultant.cli.output import acting_as, emit_json
from consultant.config import Config, ConfigError
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import reply_queuer
from consultant.drafting.ticket_draft import draft_ticket, make_analyzer
from consultant.templating import template_environment
from consultant.tickets.actions import TicketActionError, approve, assign, close
from consultant.tickets.models import TICKET_STATUSES, ticket_reference
from consultant.tickets.queries import list_tickets, show_ticket
from consultant.tickets.references import parse_reference
from workers.app import make_celery
from workers.enqueue import wake


def _reference(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """The ticket argument as CC-000123, however it was typed (cc-123, 123)."""
    try:
        return ticket_reference(parse_reference(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


reference_argument = click.argument("reference", callback=_reference)


@click.group()
def tickets() -> None:
    """List, show, draft, approve, assign and close tickets."""


@tickets.command("list")
@click.option("--status", type=click.Choice(TICKET_STATUSES), help="Only tickets in this status.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(config: Config, status: str | None, limit: int, as_json: bool) -> None:
    """Tickets, newest first."""
    with Session(open_for_command(config)) as session:
        rows = list_tickets(session, status, limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No tickets" + (f" with status {status}." if status else "."))
        return
    for row in rows:
        click.echo(
            f"{row['ticket']}  {row['status']:<8}  {row['created'][:16]}  "
            f"{row['messages']:>3} msg  {row['customer']:<30}  {row['subject'][:60]}"
        )


@tickets.command("show")
@reference_argument
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_command(config: Config, reference: str, as_json: bool) -> None:
    """One ticket (REFERENCE like CC-000123, or 123) with its messages and history."""
    ticket_id = parse_reference(reference)
    with Session(open_for_command(config)) as session:
        ticket = show_ticket(session, ticket_id, config.ingest.our_addresses)
    if ticket is None:
        raise click.ClickException(
            f"no ticket {reference}; `consultant tickets list` shows the ones there are"
        )
    if as_json:
        emit_json(ticket)
        return
    customer = ticket["customer"] or {}
    click.echo(f"{ticket['ticket']}  {ticket['status']}  {ticket['subject']}")
    click.echo(f"Customer: {customer.get('name') or ''} <{customer.get('email')}>")
    click.echo(f"Created {ticket['created']}  due {ticket['due']}  version {ticket['version']}")
    if ticket["error"]:
        click.echo(f"Error: {ticket['error']}")
    for message in ticket["messages"]:
        click.echo("")
        flags = [f for f in ("automated", "bounce", "list_mail") if message[f]]
        click.echo(
            f"--- {message['direction']} message {message['id']} ({message['outcome']}"
            + (f": {message['reason']}" if message["reason"] else "")
            + ")"
            + (f" [{', '.join(flags)}]" if flags else "")
        )
        if delivery := message["delivery"]:
            click.echo(
                f"Delivery: {delivery['kind']} {delivery['state']}, "
                f"{delivery['attempts']} attempt(s)"
                + (f", sent {delivery['sent']}" if delivery["sent"] else "")
                + (f"; {delivery['error']}" if delivery["error"] else "")
            )
            click.echo(f"To: {', '.join(message['to'])}")
            if message["cc"]:
                click.echo(f"Cc: {', '.join(message['cc'])}")
        click.echo(f"From: {message['from_name']} <{message['from']}>")
        click.echo(f"Date: {message['date'] or message['received']}")
        click.echo(f"Subject: {message['subject']}")
        for warning in message["warnings"]:
            confirmed = message["warnings_confirmed_by"]
            click.echo(
                f"Warning: {warning}" + (f" (confirmed by {confirmed})" if confirmed else "")
            )
        for attachment in message["attachments"]:
            stored = "" if attachment["stored"] else " (not stored: over the size cap)"
            click.echo(
                f"Attachment: {attachment['filename'] or '(unnamed)'} "
                f"{attachment['content_type']} {attachment['size']:,} bytes{stored}"
            )
        click.echo("")
        click.echo(message["text"])
    if ticket["drafts"]:
        draft = ticket["drafts"][-1]
        click.echo("")
        click.echo(f"=== draft version {draft['version']} ({draft['author']}, {draft['created']})")
        click.echo(draft["body"])
        _echo_analysis(draft["analysis"])
    _echo_answer(ticket["answer"])
    click.echo("")
    click.echo("History:")
    for event in ticket["audit"]:
        click.echo(f"  {event['at'][:19]}  {event['actor']:<16} {event['action']}")


def _echo_answer(answer: dict) -> None:
    """Where the answer goes, and what approving it asks for (--cc, --confirm-warnings)."""
    click.echo("")
    click.echo(f"=== the answer goes to {answer['to'] or 'nobody (no address to write to)'}")
    if answer["can_copy"]:
        more = answer["can_copy_total"] - len(answer["can_copy"])
        click.echo(
            "May be copied to (approve --cc ADDRESS): "
            + ", ".join(answer["can_copy"])
            + (f" and {more} more" if more else "")
        )
    for warning in answer["warnings"]:
        click.echo(f"To confirm (approve --confirm-warnings): {warning}")


def _echo_analysis(analysis: dict) -> None:
    """The analysis the draft was made from, for checking it against the draft."""
    click.echo("")
    click.echo("=== analysis")
    for code in analysis.get("codes", []):
        click.echo(
            f"Code {code['code']} ({code['system']}, {code['status']}) {code['title'] or ''}"
        )
    for finding in analysis.get("findings", []):
        source = f" [{finding['source']}]" if finding.get("source") else ""
        click.echo(f"Finding ({finding['kind']}): {finding['message']}{source}")
    for hit in analysis.get("suggestions", []):
        click.echo(f"Suggestion {hit['code']} ({hit['system']}) {hit['title'] or ''}")


@tickets.command("draft")
@reference_argument
@click.pass_obj
def draft_command(config: Config, reference: str) -> None:
    """Draft (or draft again, after a follow-up) the answer to ticket REFERENCE.

    The queue's workers do this for every new ticket; this runs it by hand.
    """
    ticket_id = parse_reference(reference)
    try:
        templates = template_environment(config.drafting.templates_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    analyzer = make_analyzer(
        open_store(config),
        templates=templates,
        suggestions=config.drafting.suggestions,
        service_name=config.drafting.service_name,
    )
    try:
        outcome = draft_ticket(open_for_command(config), ticket_id, analyzer, config.ingest)
    except LookupError:
        raise click.ClickException(f"no ticket {reference}") from None
    if outcome.status == "skipped":
        click.echo(f"{reference}: not drafted ({outcome.reason})")
    elif outcome.status == "already":
        click.echo(f"{reference}: already drafted (version {outcome.draft_version})")
    else:
        click.echo(f"{reference}: draft version {outcome.draft_version} ready for review")


def _act(config: Config, reference: str, action: Callable[[Engine, int], str]) -> None:
    ticket_id = parse_reference(reference)
    try:
        click.echo(action(open_for_command(config), ticket_id))
    except TicketActionError as exc:
        raise click.ClickException(str(exc)) from None
    except StaleDataError:
        raise click.ClickException(
            f"{reference} changed while you worked on it; look at it again and retry"
        ) from None


@tickets.command("approve")
@reference_argument
@click.option(
    "--body-file",
    type=click.File("r", encoding="utf-8"),
    help="The answer as you edited it (kept as a new draft version); default: the draft.",
)
@click.option(
    "--cc",
    "cc",
    multiple=True,
    metavar="ADDRESS",
    help="Copy the answer to ADDRESS too (repeat for more); nobody is copied otherwise.",
)
@click.option(
    "--confirm-warnings",
    is_flag=True,
    help="The ticket's warnings (`tickets show`) were read: answer anyway.",
)
@click.option("--as", "actor", help="Who approves (default: $USER).")
@click.pass_obj
def approve_command(
    config: Config,
    reference: str,
    body_file: click.utils.LazyFile | None,
    cc: tuple[str, ...],
    confirm_warnings: bool,
    actor: str | None,
) -> None:
    """Approve ticket REFERENCE's answer and send it to the customer: to the ticket's
    address of record, and to each --cc address."""
    body = body_file.read() if body_file is not None else None

    try:
        queue_reply = reply_queuer(
            Composer.from_config(config),
            config.delivery.from_address,
            config.delivery.max_recipients,
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    def run(engine: Engine, ticket_id: int) -> str:
        approval = approve(
            engine,
            ticket_id,
            acting_as(actor),
            queue_reply,
            body,
            cc=cc,
            confirm_warnings=confirm_warnings,
        )
        done = f"{reference}: draft version {approval.version} approved"
        if wake(make_celery(config)):
            return f"{done}; the reply is queued for sending"
        return f"{done}; the queue is unreachable, so the reply goes out once it is back"

    _act(config, reference, run)


@tickets.command("close")
@reference_argument
@click.option("--as", "actor", help="Who closes it (default: $USER).")
@click.pass_obj
def close_command(config: Config, reference: str, actor: str | None) -> None:
    """Close ticket REFERENCE without (further) answer."""

    def run(engine: Engine, ticket_id: int) -> str:
        close(engine, ticket_id, acting_as(actor))
        return f"{reference}: closed"

    _act(config, reference, run)


@tickets.command("assign")
@reference_argument
@click.argument("user")
@click.option("--as", "actor", help="Who assigns it (default: $USER).")
@click.pass_obj
def assign_command(config: Config, reference: str, user: str, actor: str | None) -> None:
    """Assign ticket REFERENCE to USER, an active user's address (or nobody)."""

    def run(engine: Engine, ticket_id: int) -> str:
        assignee = assign(engine, ticket_id, acting_as(actor), user)
        return f"{reference}: assigned to {assignee or 'nobody'}"

    _act(config, reference, run)
