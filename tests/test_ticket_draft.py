"""Drafting a ticket: the analysis over the thread, versioned drafts, safe to repeat."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session, select

from consultant.accounts.users import add_user
from consultant.cli import main
from consultant.codes.store import CodeStore
from consultant.config import IngestConfig
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import reply_queuer
from consultant.drafting.ticket_draft import Analyzer, draft_ticket, make_analyzer
from consultant.templating import template_environment
from consultant.tickets.actions import (
    TicketActionError,
    add_note,
    approve,
    assign,
    close,
    save_draft,
)
from consultant.tickets.intake import Intake
from consultant.tickets.models import AuditEvent, Delivery, Draft, Message, Note, Ticket
from consultant.tickets.references import parse_reference
from tests.mailmaker import question


@pytest.fixture(scope="module")
def analyzer(code_db: Path) -> Analyzer:
    return make_analyzer(
        CodeStore.open(code_db),
        templates=template_environment(None),
        suggestions=5,
        service_name="CaseConsultant",
    )


def status(engine: Engine, ticket_id: int) -> str:
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status


def drafts(engine: Engine, ticket_id: int) -> list[Draft]:
    with Session(engine) as session:
        return list(
            session.exec(select(Draft).where(Draft.ticket_id == ticket_id).order_by(Draft.version))
        )


def codes_of(draft: Draft) -> set[str]:
    return {code["code"] for code in draft.analysis["codes"]}


def test_a_new_ticket_is_drafted_once(engine: Engine, analyzer: Analyzer) -> None:
    outcome = Intake(engine, IngestConfig()).accept(
        question("Is E11.65 billable for a made-up patient?", message_id="<d1@c.example>"),
        "pipe",
    )
    assert outcome.ticket is not None
    ticket_id = parse_reference(outcome.ticket)
    first = draft_ticket(engine, ticket_id, analyzer)
    assert (first.status, first.draft_version) == ("drafted", 1)
    assert status(engine, ticket_id) == "ready"
    (draft,) = drafts(engine, ticket_id)
    assert "E11.65" in codes_of(draft) and "E11.65" in draft.body
    assert draft.author == "drafting" and draft.analysis["draft"] == draft.body
    again = draft_ticket(engine, ticket_id, analyzer)  # the queue delivered the task twice
    assert (again.status, again.draft_version) == ("already", 1)
    assert len(drafts(engine, ticket_id)) == 1
    with Session(engine) as session:
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["ticket.created", "draft.created"]


def test_a_follow_up_is_drafted_again_with_the_thread_in_view(
    engine: Engine, analyzer: Analyzer
) -> None:
    intake = Intake(engine, IngestConfig())
    created = intake.accept(
        question("Is E11.65 billable?", message_id="<d2@c.example>", subject="Diabetes"),
        "pipe",
    )
    assert created.ticket is not None
    ticket_id = parse_reference(created.ticket)
    draft_ticket(engine, ticket_id, analyzer)
    follow = intake.accept(
        question(
            "And can CPT 29881 be billed with it?", subject=f"Re: Diabetes [{created.ticket}]"
        ),
        "pipe",
    )
    assert (follow.status, follow.reason) == ("appended", "reopened")
    assert status(engine, ticket_id) == "open"
    assert draft_ticket(engine, ticket_id, analyzer).draft_version == 2
    first, second = drafts(engine, ticket_id)
    assert second.basis_message_id != first.basis_message_id
    assert {"E11.65", "29881"} <= codes_of(second)  # the earlier question is read too
    assert status(engine, ticket_id) == "ready"


def test_attachment_text_is_read(engine: Engine, analyzer: Analyzer) -> None:
    message = EmailMessage()
    message["From"] = "coder@clinic.example"
    message["Subject"] = "Op note attached"
    message["Message-ID"] = "<d3@c.example>"
    message.set_content("Which code fits the attached note?")
    message.add_attachment("Post-op diagnosis: E11.9 (made-up patient).", filename="note.txt")
    outcome = Intake(engine, IngestConfig()).accept(message.as_bytes(), "pipe")
    assert outcome.ticket is not None
    ticket_id = parse_reference(outcome.ticket)
    draft_ticket(engine, ticket_id, analyzer)
    (draft,) = drafts(engine, ticket_id)
    assert "E11.9" in codes_of(draft)


def test_held_tickets_wait_for_a_consultant(engine: Engine, analyzer: Analyzer) -> None:
    intake = Intake(engine, IngestConfig(allow=("clinic.example",)))
    held = intake.accept(question("E11.65?", sender="who@else.example"), "pipe")
    assert held.ticket is not None
    outcome = draft_ticket(engine, parse_reference(held.ticket), analyzer)
    assert (outcome.status, outcome.reason) == ("skipped", "the ticket is held")
    assert drafts(engine, parse_reference(held.ticket)) == []


def test_consultant_tickets_draft_and_show(tmp_path: Path, code_db: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n[codes]\ndatabase = "{code_db}"\n'
    )
    eml = tmp_path / "q.eml"
    eml.write_bytes(question("Is E11.65 billable?"))
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "ingest", str(eml)]).exit_code == 0
    drafted = runner.invoke(main, ["--config", str(config), "tickets", "draft", "CC-000001"])
    assert drafted.output.strip() == "CC-000001: draft version 1 ready for review"
    again = runner.invoke(main, ["--config", str(config), "tickets", "draft", "CC-000001"])
    assert again.output.strip() == "CC-000001: already drafted (version 1)"
    shown = runner.invoke(main, ["--config", str(config), "tickets", "show", "CC-1", "--json"])
    ticket = json.loads(shown.output)
    assert ticket["status"] == "ready"
    assert [d["version"] for d in ticket["drafts"]] == [1]
    assert "E11.65" in ticket["drafts"][0]["body"]
    human = runner.invoke(main, ["--config", str(config), "tickets", "show", "CC-1"])
    assert "=== draft version 1" in human.output
    assert "Code E11.65 (ICD-10-CM, billable) Type 2 diabetes mellitus with hyperglycemia" in (
        human.output
    )


def test_a_consultant_approves_edits_assigns_and_closes(engine: Engine, analyzer: Analyzer) -> None:
    outcome = Intake(engine, IngestConfig()).accept(question("Is E11.65 billable?"), "pipe")
    assert outcome.ticket is not None
    ticket_id = parse_reference(outcome.ticket)
    queue_reply = reply_queuer(
        Composer(template_environment(), service_name="S", our_addresses=(), due_hours=24),
        "consult@caseconsultant.example",
        10,
    )
    with pytest.raises(TicketActionError, match="only a ticket whose draft is ready"):
        approve(engine, ticket_id, "dana", queue_reply)  # nothing drafted yet
    draft_ticket(engine, ticket_id, analyzer)
    add_user(engine, "dana@caseconsultant.example", "a made-up passphrase")
    assign(engine, ticket_id, "lead", "Dana@CaseConsultant.example")
    approval = approve(
        engine, ticket_id, "dana", queue_reply, body="Yes: E11.65 is billable. (edited)"
    )
    assert approval.version == 2 and status(engine, ticket_id) == "approved"
    with Session(engine) as session:
        delivery = session.get(Delivery, approval.delivery_id)
        assert delivery is not None and (delivery.kind, delivery.state) == ("reply", "queued")
        reply = session.get(Message, delivery.message_id)
        assert reply is not None and reply.text.startswith("Yes: E11.65 is billable. (edited)")
    first, second = drafts(engine, ticket_id)
    assert (second.author, second.body) == ("dana", "Yes: E11.65 is billable. (edited)")
    assert second.analysis == first.analysis  # the facts the edit was made against
    close(engine, ticket_id, "dana")
    with pytest.raises(TicketActionError, match="already closed"):
        close(engine, ticket_id, "dana")
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.assignee == "dana@caseconsultant.example"
        actions = session.exec(
            select(AuditEvent.action, AuditEvent.actor).order_by(AuditEvent.id)
        ).all()
    assert actions[-3:] == [
        ("ticket.assigned", "lead"),
        ("ticket.approved", "dana"),
        ("ticket.closed", "dana"),
    ]


def test_approve_assign_close_from_the_command_line(tmp_path: Path, code_db: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n[codes]\ndatabase = "{code_db}"\n'
    )
    eml = tmp_path / "q.eml"
    eml.write_bytes(question("Is E11.65 billable?"))
    edited = tmp_path / "answer.txt"
    edited.write_text("E11.65 is billable (made-up answer for the test).\n")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output.strip()

    cli("ingest", str(eml))
    cli("tickets", "draft", "CC-000001")
    dana = "dana@caseconsultant.example"
    added = runner.invoke(
        main,
        ["--config", str(config), "users", "add", dana, "--password-stdin"],
        input="a made-up passphrase\n",
    )
    assert added.exit_code == 0, added.output
    assert cli("tickets", "assign", "CC-1", dana) == f"CC-000001: assigned to {dana}"
    assert cli("tickets", "approve", "CC-1", "--body-file", str(edited), "--as", "dana") == (
        "CC-000001: draft version 2 approved; the reply is queued for sending"
    )
    refused = runner.invoke(main, ["--config", str(config), "tickets", "approve", "CC-1"])
    assert refused.exit_code == 1 and "CC-000001 is approved" in refused.output
    assert cli("tickets", "close", "CC-1") == "CC-000001: closed"
    shown = json.loads(cli("tickets", "show", "CC-1", "--json"))
    assert (shown["status"], shown["assignee"]) == ("closed", dana)
    assert shown["drafts"][-1]["author"] == "dana"


def test_text_with_a_nul_is_saved_not_refused(engine: Engine, analyzer: Analyzer) -> None:
    """A NUL typed or pasted into a note or the answer (PostgreSQL refuses it in text)
    is dropped, never a 500."""
    outcome = Intake(engine, IngestConfig()).accept(question("Is E11.65 billable?"), "pipe")
    assert outcome.ticket is not None
    ticket_id = parse_reference(outcome.ticket)
    draft_ticket(engine, ticket_id, analyzer)
    add_note(engine, ticket_id, "dana@caseconsultant.example", "Checked\x00 the chart")
    version = save_draft(engine, ticket_id, "dana@caseconsultant.example", "Yes\x00, E11.65.")
    with Session(engine) as session:
        note = session.exec(select(Note)).one()
        draft = session.exec(select(Draft).where(Draft.version == version)).one()
    assert (note.body, draft.body) == ("Checked the chart", "Yes, E11.65.")
