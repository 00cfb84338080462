"""`consultant ingest`, `tickets list/show` and `db` as an operator or an MTA uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from consultant.cli import main
from consultant.database.migrate import head_revision, open_database
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
    assert again.stdout.decode() == "-: created\n"  # the pipe's output names no ticket


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


def url_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    """A config file for the ticket database at URL (and EXTRA settings)."""
    path = tmp_path / "url.toml"
    path.write_text(f'[database]\nurl = "{url}"\n{extra}')
    return path


def only_error_line(stderr: bytes) -> str:
    """The one line a failing command printed on stderr (never a traceback)."""
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr.decode()
    return lines[0]


def test_unreadable_files_are_named_and_the_others_still_ingested(
    database_url: str, tmp_path: Path
) -> None:
    first = tmp_path / "first.eml"
    first.write_bytes(question("Is E11.65 billable?"))
    second = tmp_path / "second.eml"
    second.write_bytes(question("Is J1100 still valid?"))
    missing = tmp_path / "nonexistent.eml"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    config = url_config(tmp_path, database_url)
    result = run(config, "ingest", str(first), str(missing), str(folder), str(second))
    assert result.returncode == 66, result.stderr  # EX_NOINPUT: the caller's mistake
    assert result.stdout.decode().splitlines() == [
        f"{first}: created CC-000001",
        f"{second}: created CC-000002",
    ]
    errors = result.stderr.decode().splitlines()
    assert errors == [
        f"Error: cannot read {missing}: No such file or directory; it was skipped",
        f"Error: cannot read {folder}: Is a directory; it was skipped",
    ]


@pytest.mark.parametrize(
    "settings",
    [
        "[database\n",  # not TOML
        '[drafting]\nsuggestions = "five"\n',  # a wrong type
    ],
)
def test_a_config_error_makes_ingest_exit_75_and_other_commands_1(
    tmp_path: Path, settings: str
) -> None:
    config = tmp_path / "broken.toml"
    config.write_text(settings)
    piped = run(config, "ingest", stdin=question())
    assert piped.returncode == 75
    line = only_error_line(piped.stderr)
    assert str(config) in line or "suggestions" in line
    assert "retry" in line
    listed = run(config, "tickets", "list")
    assert listed.returncode == 1 and b"Traceback" not in listed.stderr


def test_a_missing_config_file_makes_ingest_exit_75(tmp_path: Path) -> None:
    result = run(tmp_path / "nonexistent.toml", "ingest", stdin=question())
    assert result.returncode == 75
    assert "nonexistent.toml does not exist" in only_error_line(result.stderr)


def _future_revision(url: str) -> None:
    """A database migrated by a newer release than this one."""
    engine = open_database(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()


def _refusing_writes(url: str) -> None:
    """A database whose every new blob is refused (as a broken grant or a full disk
    would refuse it): not an outage, yet nothing can be stored."""
    engine = open_database(url)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON blobs "
                "BEGIN SELECT RAISE(ABORT, 'refused by a made-up trigger'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by a made-up trigger'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON blobs "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    engine.dispose()


@pytest.mark.parametrize("broken", [_future_revision, _refusing_writes])
def test_a_database_that_cannot_be_used_makes_ingest_exit_75(
    database_url: str, tmp_path: Path, broken: Callable[[str], None]
) -> None:
    broken(database_url)
    result = run(url_config(tmp_path, database_url), "ingest", stdin=question())
    assert result.returncode == 75, result.stderr
    assert "retry" in only_error_line(result.stderr)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////proc/no-such-folder/tickets.sqlite",  # its folder cannot be made
        "sqlite:///{tmp}/not-a-database.sqlite",
        "mysql://nobody@127.0.0.1/none",  # no driver installed for it
        "not a database url",
    ],
)
def test_a_database_that_cannot_be_opened_makes_ingest_exit_75(tmp_path: Path, url: str) -> None:
    (tmp_path / "not-a-database.sqlite").write_text("Made-up notes, not SQLite. " * 40)
    config = url_config(tmp_path, url.format(tmp=tmp_path))
    result = run(config, "ingest", stdin=question())
    assert result.returncode == 75, result.stderr
    assert "retry" in only_error_line(result.stderr)
    other = run(config, "tickets", "list")  # any other command: one line too, exit 1
    assert other.returncode == 1
    only_error_line(other.stderr)


@pytest.mark.parametrize("reference", ["1", "cc-1", "CC-000001", "[CC-000001]"])
def test_every_tickets_command_takes_a_bare_number(
    tmp_path: Path, code_db: Path, reference: str
) -> None:
    config = url_config(
        tmp_path, f"sqlite:///{tmp_path / 't.sqlite'}", f'[codes]\ndatabase = "{code_db}"\n'
    )
    run(config, "ingest", stdin=question("Is J1100 still valid?"))
    runner = CliRunner()

    def tickets(*args: str) -> str:
        result = runner.invoke(main, ["--config", str(config), "tickets", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert json.loads(tickets("show", reference, "--json"))["ticket"] == "CC-000001"
    assert tickets("draft", reference) == "CC-000001: draft version 1 ready for review\n"
    assert tickets("assign", reference, "nobody") == "CC-000001: assigned to nobody\n"
    assert tickets("close", reference) == "CC-000001: closed\n"
    refused = runner.invoke(main, ["--config", str(config), "tickets", "approve", reference])
    assert refused.exit_code == 1 and "CC-000001 is closed" in refused.output


def test_who_acts_is_one_printable_line(config: Path) -> None:
    run(config, "ingest", stdin=question())
    runner = CliRunner()
    for actor in ("x" * 300, "Dana\nCoder"):
        refused = runner.invoke(
            main, ["--config", str(config), "tickets", "close", "1", "--as", actor]
        )
        assert refused.exit_code == 2 and "one line of printable characters" in refused.output
    shown = runner.invoke(main, ["--config", str(config), "tickets", "show", "1", "--json"])
    assert json.loads(shown.stdout)["status"] == "new"


def test_approve_takes_the_copies_and_the_confirmation_it_needs(
    tmp_path: Path, code_db: Path
) -> None:
    """Hardening issue, points 6 and 9, from the CLI: `tickets show` says where the
    answer goes, whom it may copy and what to confirm; `approve` needs
    --confirm-warnings for a follow-up with a new Reply-To and copies only --cc."""
    config = url_config(
        tmp_path,
        f"sqlite:///{tmp_path / 't.sqlite'}",
        f'[codes]\ndatabase = "{code_db}"\n'
        '[ingest]\nour_addresses = ["consult@caseconsultant.example"]\n',
    )
    run(config, "ingest", stdin=question("Is J1100 valid?", headers={"Cc": "lee@clinic.example"}))
    follow_up = question(
        "Answer me here", subject="Re: [CC-000001]", headers={"Reply-To": "x@evil.test"}
    )
    run(config, "ingest", stdin=follow_up)
    runner = CliRunner()

    def tickets(*args: str) -> object:
        return runner.invoke(main, ["--config", str(config), "tickets", *args])

    assert tickets("draft", "1").exit_code == 0
    shown = tickets("show", "1").stdout
    assert "=== the answer goes to coder@clinic.example" in shown
    assert "May be copied to (approve --cc ADDRESS): lee@clinic.example, x@evil.test" in shown
    assert "To confirm (approve --confirm-warnings): reply-to-changed" in shown
    refused = tickets("approve", "1", "--cc", "lee@clinic.example")
    assert refused.exit_code == 1 and "1 warning(s) to confirm" in refused.output
    done = tickets("approve", "1", "--cc", "lee@clinic.example", "--confirm-warnings")
    assert done.exit_code == 0, done.output
    sent = json.loads(tickets("show", "1", "--json").stdout)["messages"][-1]
    assert (sent["to"], sent["cc"]) == (["coder@clinic.example"], ["lee@clinic.example"])
