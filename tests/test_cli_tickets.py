"""`consultant ingest`, `tickets list/show` and `db` as an operator or an MTA uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from consultant.cli import main
from consultant.database.migrate import head_revision
from tests.mailmaker import question
from tests.servers.ports import free_port


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n')
    return path


def run(config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consultant", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def test_an_mta_pipe_creates_a_ticket_and_reports_it(config: Path) -> None:
    piped = run(config, "ingest", "--json", stdin=question(subject="Is E11.65 billable?"))
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) == {
        "file": "-",
        "ticket": "CC-000001",
        "status": "created",
        "reason": "",
    }
    again = run(config, "ingest", stdin=question(subject="Is E11.65 billable?", message_id=None))
    assert again.stdout.decode().startswith("-: created CC-000002")


def test_files_are_ingested_one_result_each(config: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(question(message_id="<one@clinic.example>"))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = run(config, "ingest", "--json", str(good), str(empty), str(good))
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(r["file"], r["status"]) for r in lines] == [
        (str(good), "created"),
        (str(empty), "rejected"),
        (str(good), "duplicate"),
    ]
    assert "empty" in lines[1]["reason"]


def test_an_unavailable_database_exits_75_so_the_mta_retries(tmp_path: Path) -> None:
    config = tmp_path / "down.toml"
    config.write_text(
        f'[database]\nurl = "postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"\n'
    )
    result = run(config, "ingest", stdin=question())
    assert result.returncode == 75
    assert b"unavailable" in result.stderr and b"retry" in result.stderr


def test_tickets_list_and_show(config: Path) -> None:
    run(config, "ingest", stdin=question("Is J1100 still valid?", subject="HCPCS check"))
    run(config, "ingest", stdin=question("Hello", sender="x@y.example", subject="Other"))
    runner = CliRunner()
    listed = runner.invoke(main, ["--config", str(config), "tickets", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["ticket"], r["status"], r["subject"], r["messages"]) for r in rows] == [
        ("CC-000002", "new", "Other", 1),
        ("CC-000001", "new", "HCPCS check", 1),
    ]
    text = runner.invoke(main, ["--config", str(config), "tickets", "list", "--status", "new"])
    assert "CC-000001" in text.output and "HCPCS check" in text.output
    none = runner.invoke(main, ["--config", str(config), "tickets", "list", "--status", "closed"])
    assert none.output.strip() == "No tickets with status closed."

    shown = runner.invoke(main, ["--config", str(config), "tickets", "show", "cc-1", "--json"])
    ticket = json.loads(shown.output)
    assert ticket["customer"]["email"] == "coder@clinic.example"
    assert ticket["messages"][0]["question"].endswith("Is J1100 still valid?")
    assert [e["action"] for e in ticket["audit"]] == ["ticket.created"]
    human = runner.invoke(main, ["--config", str(config), "tickets", "show", "CC-000001"])
    assert "Is J1100 still valid?" in human.output and "ticket.created" in human.output
    missing = runner.invoke(main, ["--config", str(config), "tickets", "show", "CC-000099"])
    assert missing.exit_code == 1 and "tickets list" in missing.output
    bad = runner.invoke(main, ["--config", str(config), "tickets", "show", "ticket-one"])
    assert bad.exit_code == 2 and "CC-000123" in bad.output


def test_db_status_and_upgrade(config: Path) -> None:
    runner = CliRunner()
    before = runner.invoke(main, ["--config", str(config), "db", "status", "--json"])
    assert json.loads(before.output)["up_to_date"] is False
    upgraded = runner.invoke(main, ["--config", str(config), "db", "upgrade"])
    assert upgraded.exit_code == 0 and f"revision {head_revision()}" in upgraded.output
    after = runner.invoke(main, ["--config", str(config), "db", "status", "--json"])
    assert json.loads(after.output)["up_to_date"] is True
