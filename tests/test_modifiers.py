"""Our modifier notes, and how they combine with the official HCPCS modifier titles."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest

from consultant.codes import hcpcs, modifiers
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, ImportResult, run_import
from consultant.codes.systems import CPT, HCPCS

HCPCS_FIXTURE = Path(__file__).parent / "fixtures" / "hcpcs" / "HCPC2019_CONTR_ANWEB.txt"
REQUIRED = (
    *("22", "24", "25", "26", "27", "32", "33", "47", "50", "51", "52", "53", "54", "55"),
    *("56", "57", "58", "59", "62", "63", "66", "76", "77", "78", "79", "80", "81", "82"),
    *("90", "91", "92", "95", "96", "97", "99", "TC", "XE", "XP", "XS", "XU", "LT", "RT"),
    *("GA", "GY", "GZ", "GX", "GP", "GO", "GN", "JW", "JZ", "KX", "PT", "QW", "Q5", "Q6"),
    *("FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "TA", "T1", "T2", "T3"),
    *("T4", "T5", "T6", "T7", "T8", "T9", "E1", "E2", "E3", "E4", "AS", "QK", "QX", "QY"),
    *("QZ", "CR", "CS", "FX", "FY", "JG", "JB", "SA", "SB"),
)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _notes() -> dict[str, dict[str, str]]:
    return tomllib.loads(modifiers.builtin_path().read_text(encoding="utf-8"))["modifiers"]


def test_every_modifier_coders_ask_about_has_a_note() -> None:
    notes = _notes()

    assert [m for m in REQUIRED if m not in notes] == []
    for modifier, entry in notes.items():
        assert set(entry) == {"title", "explanation"}, modifier
        assert "Pitfall:" in entry["explanation"], modifier


def _load_notes(conn: sqlite3.Connection) -> ImportResult:
    return run_import(conn, modifiers.CODE_SET, modifiers.builtin_path(), modifiers.load)


def test_builtin_import_records_a_release(conn: sqlite3.Connection) -> None:
    result = _load_notes(conn)

    notes = _notes()
    assert result.release.version == "2026.1"
    assert result.release.row_count == len(notes)
    assert _load_notes(conn).skipped is True
    rows = conn.execute("SELECT modifier, source, code_set FROM modifiers").fetchall()
    assert {row[0] for row in rows} == set(notes)
    assert {(row[1], row[2]) for row in rows} == {("CaseConsultant", "modifiers")}


def test_cpt_modifier_gets_our_words(conn: sqlite3.Connection) -> None:
    _load_notes(conn)

    info = modifiers.modifier_info(conn, " 25 ")

    entry = _notes()["25"]
    assert info == modifiers.ModifierInfo(
        modifier="25",
        system=CPT,
        title=entry["title"],
        source="CaseConsultant",
        explanation=entry["explanation"],
    )


def test_hcpcs_modifier_gets_the_official_title_and_our_note(conn: sqlite3.Connection) -> None:
    _load_notes(conn)
    run_import(conn, hcpcs.CODE_SET, HCPCS_FIXTURE, hcpcs.load)

    info = modifiers.modifier_info(conn, "ga")

    assert info == modifiers.ModifierInfo(
        modifier="GA",
        system=HCPCS,
        title="Waiver of liability statement issued as required by payer policy, individual case",
        source="HCPCS 2019",
        explanation=_notes()["GA"]["explanation"],
    )
    # Official only (no note of ours), and ours only (not in the 2019 file).
    assert modifiers.modifier_info(conn, "A1").explanation is None
    jz = modifiers.modifier_info(conn, "JZ")
    assert (jz.title, jz.source) == (_notes()["JZ"]["title"], "CaseConsultant")
    assert modifiers.modifier_info(conn, "Z9") is None


def test_hcpcs_modifiers_without_our_notes_loaded(conn: sqlite3.Connection) -> None:
    run_import(conn, hcpcs.CODE_SET, HCPCS_FIXTURE, hcpcs.load)

    assert modifiers.modifier_info(conn, "LT").title.startswith("Left side")
    assert modifiers.modifier_info(conn, "LT").explanation is None
    assert modifiers.modifier_info(conn, "25") is None


def test_bad_note_file_keeps_the_previous_release(conn: sqlite3.Connection, tmp_path: Path) -> None:
    _load_notes(conn)
    bad = tmp_path / "modifiers.toml"
    bad.write_text('version = "2026.2"\n[modifiers.25]\ntitle = "Only a title"\n')

    with pytest.raises(ImportFormatError, match=r"\[modifiers.25\] needs"):
        run_import(conn, modifiers.CODE_SET, bad, modifiers.load)

    assert get_release(conn, modifiers.CODE_SET).version == "2026.1"
    assert modifiers.modifier_info(conn, "25").explanation == _notes()["25"]["explanation"]
