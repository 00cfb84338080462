"""The `consultant` command: subcommands, --help everywhere, and the JSON shapes users parse."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from consultant.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLE = ROOT / "examples" / "question.eml"


@pytest.fixture
def run(code_db: Path, tmp_path: Path):
    """Invoke the CLI against the session's loaded code database."""
    config = tmp_path / "config.toml"
    config.write_text(f'[codes]\ndatabase = "{code_db}"\n')

    def invoke(*args: str, input: str | bytes | None = None, ok: bool = True):
        result = CliRunner().invoke(main, ["--config", str(config), *args], input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_commands(main)])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_lookup_json_shape(run) -> None:
    data = json.loads(run("codes", "lookup", "e1122", "S32.000", "29881", "--json").output)
    assert [d["code"] for d in data] == ["E11.22", "S32.000", "29881"]
    e1122, s32, cpt = data
    assert e1122["system"] == "ICD-10-CM" and e1122["status"] == "billable"
    assert e1122["parent"]["code"] == "E11.2"
    assert {"kind", "text", "code"} <= set(e1122["notes"][0])
    assert any(n["kind"] == "use_additional_code" for n in e1122["notes"])
    assert s32["status"] == "needs_seventh_character"
    assert set(s32["seventh_characters"]) == {"A", "B", "D", "G", "K", "S"}
    assert all(c["billable"] for c in s32["children"])
    assert cpt == {
        **cpt,
        "system": "CPT",
        "status": "unverified",
        "title": None,
        "section": "Surgery: musculoskeletal system",
    }


def test_lookup_shows_each_code_set_an_undotted_code_is_in(run) -> None:
    """G0439 is Medicare's subsequent wellness visit and, written without its dot, the
    ICD-10-CM code G04.39: a lookup shows both rather than guess."""
    data = json.loads(run("codes", "lookup", "G0439", "G04.39", "--json").output)
    assert [(d["code"], d["system"]) for d in data] == [
        ("G04.39", "ICD-10-CM"),
        ("G0439", "HCPCS"),
        ("G04.39", "ICD-10-CM"),
    ]


def test_search_json_shape(run) -> None:
    data = json.loads(
        run("codes", "search", "stage 3 pressure ulcer of sacral region", "--json").output
    )
    assert data[0]["code"] == "L89.153"
    assert set(data[0]) == {"code", "system", "title", "score", "open_axes", "alongside"}
    limited = json.loads(run("codes", "search", "fracture", "--limit", "3", "--json").output)
    assert len(limited) == 3


def test_search_system_filter(run) -> None:
    data = json.loads(
        run("codes", "search", "dexamethasone injection", "--system", "HCPCS", "--json").output
    )
    assert data and all(d["system"] == "HCPCS" for d in data)


def test_status_lists_releases_and_warns(run) -> None:
    data = json.loads(run("codes", "status", "--json").output)
    by_set = {r["code_set"]: r for r in data}
    assert {"icd10cm", "icd10cm-index", "icd10pcs", "hcpcs"} <= set(by_set)
    hcpcs = by_set["hcpcs"]
    assert {"version", "effective", "source_file", "sha256", "row_count", "imported_at"} <= set(
        hcpcs
    )
    assert hcpcs["current"] is False and "consultant codes import hcpcs" in hcpcs["warning"]
    text = run("codes", "status")
    assert "warning: older than" in text.output


def test_analyze_json_shape(run) -> None:
    data = json.loads(run("analyze", str(EXAMPLE), "--json").output)
    assert set(data) == {
        *("date_of_service", "answers", "codes", "modifiers", "findings", "suggestions"),
        "automated",
        "draft",
    }
    for code in data["codes"]:
        assert set(code) >= {"code", "system", "status", "title", "valid_from", "valid_to"}
    for finding in data["findings"]:
        assert set(finding) == {"kind", "codes", "message", "source"}
    for hit in data["suggestions"]:
        assert set(hit) == {"code", "system", "title", "score", "open_axes"}
    assert data["automated"] is False
    assert isinstance(data["draft"], str) and data["draft"]


def test_analyze_reads_stdin(run) -> None:
    data = json.loads(run("analyze", "-", "--json", input="Is e1122 billable?\n").output)
    [code] = data["codes"]
    assert {key: code[key] for key in ("code", "system", "status", "title")} == {
        "code": "E11.22",
        "system": "ICD-10-CM",
        "status": "billable",
        "title": "Type 2 diabetes mellitus with diabetic chronic kidney disease",
    }


def test_analyze_refuses_empty_input(run) -> None:
    result = run("analyze", "-", input="  \n", ok=False)
    assert result.exit_code == 2
    assert "empty" in result.output


def test_import_is_idempotent_and_reports_json(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[codes]\ndatabase = "{tmp_path / "codes.sqlite"}"\n')
    hcpcs = SHARED / "hcpcs" / "HCPC2019_CONTR_ANWEB.txt"
    args = ["--config", str(config), "codes", "import", "hcpcs", str(hcpcs), "--json"]
    first = json.loads(CliRunner().invoke(main, args).output)
    again = json.loads(CliRunner().invoke(main, args).output)
    assert first[0]["skipped"] is False and again[0]["skipped"] is True
    assert first[0]["row_count"] == again[0]["row_count"]
    assert first[0]["version"] == "2019"


def test_import_of_the_wrong_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[codes]\ndatabase = "{tmp_path / "codes.sqlite"}"\n')
    wrong = SHARED / "icd10pcs" / "icd10pcs_order_2026.txt"
    result = CliRunner().invoke(
        main, ["--config", str(config), "codes", "import", "hcpcs", str(wrong)]
    )
    assert result.exit_code == 1
    assert "icd10pcs_order_2026.txt" in result.output


def test_first_use_loads_the_bundled_tabular(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path))
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["codes", "lookup", "I10", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["status"] == "billable"
    assert (tmp_path / "codes.sqlite").exists()


def test_bad_config_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[codes\n")
    result = CliRunner().invoke(main, ["--config", str(config), "codes", "status"])
    assert result.exit_code == 1
    assert "not valid TOML" in result.output
