"""Customer CPT file import. Every descriptor here is made up: never real CPT text."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from consultant.codes import cpt
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.systems import CPT

FIXTURE = Path(__file__).parent / "fixtures" / "cpt" / "cpt_2026_licensed.txt"
VALID = {"99213", "29881", "29877", "36415", "0001U", "0213T", "1111F"}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _codes(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT code, title FROM codes WHERE system = ?", (CPT,))
    return dict(rows.fetchall())


def test_loads_valid_codes_and_reports_the_rest(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="consultant.codes.cpt"):
        result = run_import(conn, cpt.CODE_SET, FIXTURE, cpt.load)

    assert (result.release.version, result.release.effective) == ("2026", "2026-01-01")
    assert result.release.row_count == 7
    codes = _codes(conn)
    assert set(codes) == VALID
    # The first of a repeated code wins.
    assert codes["99213"] == "Licensed descriptor text for 99213 (test fixture)"
    row = conn.execute("SELECT billable, kind, parent FROM codes WHERE code = '0213T'").fetchone()
    assert tuple(row) == (1, "code", None)
    terms = conn.execute("SELECT COUNT(*) FROM search_terms WHERE source = 'title'").fetchone()
    assert terms[0] == 7
    # ABCDE, the repeated 99213 and 12345 without a descriptor; reported by line only.
    assert "skipped 3 rows" in caplog.text
    assert "lines 9, 10, 11" in caplog.text
    assert "not a CPT code" not in caplog.text


def test_header_columns_are_found_by_name(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "cpt_export_2025.txt"
    path.write_text(
        "Status\tDescriptor\tCPT Code\n"
        "A\tMade-up descriptor one (test fixture)\t99213\n"
        "A\tMade-up descriptor two (test fixture)\t29881\n"
    )

    run_import(conn, cpt.CODE_SET, path, cpt.load)

    assert _codes(conn) == {
        "99213": "Made-up descriptor one (test fixture)",
        "29881": "Made-up descriptor two (test fixture)",
    }


def test_file_without_header_and_year_uses_the_modification_year(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "licensed_cpt.txt"
    path.write_bytes("99213\tMade-up descriptor, caf\xe9 (test fixture)\r\n".encode("cp1252"))
    os.utime(path, (1735732800, 1735732800))  # 2025-01-01 12:00 UTC

    release = run_import(conn, cpt.CODE_SET, path, cpt.load).release

    assert (release.version, release.effective) == ("2025", None)
    assert _codes(conn) == {"99213": "Made-up descriptor, caf\xe9 (test fixture)"}


def test_second_import_of_the_same_file_is_skipped(conn: sqlite3.Connection) -> None:
    run_import(conn, cpt.CODE_SET, FIXTURE, cpt.load)

    assert run_import(conn, cpt.CODE_SET, FIXTURE, cpt.load).skipped is True


def test_file_without_cpt_codes_keeps_the_previous_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    run_import(conn, cpt.CODE_SET, FIXTURE, cpt.load)
    wrong = tmp_path / "hcpcs_2026.txt"
    wrong.write_text("J1100\tMade-up (test fixture)\nE0100\tMade-up (test fixture)\n")

    with pytest.raises(ImportFormatError, match="no `code<TAB>descriptor` rows"):
        run_import(conn, cpt.CODE_SET, wrong, cpt.load)

    assert get_release(conn, cpt.CODE_SET).version == "2026"
    assert set(_codes(conn)) == VALID
