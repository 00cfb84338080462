"""HCPCS Level II ANWEB import: codes, joined descriptions, terminations, modifiers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from consultant.codes import hcpcs
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.systems import HCPCS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURE = Path(__file__).parent / "fixtures" / "hcpcs" / "HCPC2019_CONTR_ANWEB.txt"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _code(conn: sqlite3.Connection, code: str) -> dict:
    row = conn.execute("SELECT * FROM codes WHERE system = ? AND code = ?", (HCPCS, code))
    return dict(row.fetchone())


def _modifiers(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str]]:
    rows = conn.execute("SELECT modifier, title, source, code_set FROM modifiers")
    return {row[0]: tuple(row)[1:] for row in rows}


def test_loads_codes_from_the_excerpt(conn: sqlite3.Connection) -> None:
    result = run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)

    assert (result.release.version, result.release.effective) == ("2019", "2019-01-01")
    assert result.release.row_count == 9 + 9  # codes + modifiers
    j1100 = _code(conn, "J1100")
    assert j1100["title"] == "Injection, dexamethasone sodium phosphate, 1 mg"
    assert j1100["short_title"] == "Dexamethasone sodium phos"
    assert (j1100["billable"], j1100["kind"], j1100["parent"]) == (1, "code", None)
    assert (j1100["effective"], j1100["terminated"], j1100["action"]) == ("1982-01-01", None, "N")
    assert _code(conn, "M1025")["action"] == "A"
    terms = conn.execute("SELECT text, source FROM search_terms WHERE code = 'J1100'").fetchall()
    assert [tuple(t) for t in terms] == [
        ("Injection, dexamethasone sodium phosphate, 1 mg", "title")
    ]


def test_continuation_lines_are_joined_with_a_space(conn: sqlite3.Connection) -> None:
    run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)

    assert _code(conn, "A0384")["title"] == (
        "Bls specialized service disposable supplies; defibrillation (used by als ambulances "
        "and bls ambulances in jurisdictions where defibrillation is permitted in bls "
        "ambulances)"
    )
    # G8891's second line is 316 characters, shorter than the 320 of the layout.
    assert _code(conn, "G8891")["title"] == (
        "Documentation of medical reason(s) for most recent ldl-c not under control (e.g., "
        "patients with palliative goals for whom treatment of hypertension with standard "
        "treatment goals is not clinically appropriate)"
    )


def test_terminated_codes_are_not_billable_and_listed_as_deleted(
    conn: sqlite3.Connection,
) -> None:
    run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)

    mri = _code(conn, "C8904")
    assert (mri["billable"], mri["terminated"], mri["action"]) == (0, "2018-12-31", "D")
    deleted = conn.execute("SELECT * FROM deleted_codes WHERE code = 'C8904'").fetchone()
    assert tuple(deleted) == (
        HCPCS,
        "C8904",
        "Magnetic resonance imaging without contrast, breast; unilateral",
        "2019-01-01",
        hcpcs.CODE_SET,
    )
    assert {row[0] for row in conn.execute("SELECT code FROM deleted_codes")} == {
        "A4466",
        "C8904",
        "G8891",
    }


def test_modifiers_keep_their_official_titles(conn: sqlite3.Connection) -> None:
    run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)

    modifiers = _modifiers(conn)
    assert set(modifiers) == {"A1", "AD", "CP", "GA", "JW", "KX", "LT", "RT", "XU"}
    assert modifiers["AD"] == (
        "Medical supervision by a physician: more than four concurrent anesthesia procedures",
        "HCPCS 2019",
        "hcpcs",
    )
    assert modifiers["CP"][0].endswith("reported on a different claim (terminated 2017-12-31)")
    assert not conn.execute("SELECT 1 FROM codes WHERE code IN ('AD', 'GA')").fetchall()


def test_numeric_cpt_modifiers_and_codes_are_never_stored(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    lines = FIXTURE.read_bytes().split(b"\r\n")
    a1 = next(line for line in lines if line[3:5] == b"A1")
    j1100 = next(line for line in lines if line[:5] == b"J1100")
    cpt_modifier = a1[:3] + b"59" + a1[5:11] + b"Level I modifier text (test fixture)".ljust(80)
    cpt_code = b"99213" + j1100[5:11] + b"Level I code text (test fixture)".ljust(80)
    path = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    path.write_bytes(b"\r\n".join([*lines[:9], cpt_modifier + a1[91:], cpt_code + j1100[91:]]))

    run_import(conn, hcpcs.CODE_SET, path, hcpcs.load)

    assert set(_modifiers(conn)) == {"A1"}
    assert conn.execute("SELECT code FROM codes").fetchall() == []


def test_second_import_of_the_same_file_is_skipped(conn: sqlite3.Connection) -> None:
    run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)

    assert run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load).skipped is True


def test_malformed_file_keeps_the_previous_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    run_import(conn, hcpcs.CODE_SET, FIXTURE, hcpcs.load)
    lines = FIXTURE.read_bytes().split(b"\r\n")
    # A continuation line whose code does not match the record before it.
    lines[-3] = b"Z9999" + lines[-3][5:]
    broken = tmp_path / "HCPC2020_CONTR_ANWEB.txt"
    broken.write_bytes(b"\r\n".join(lines))

    with pytest.raises(ImportFormatError, match="continuation for 'Z9999'"):
        run_import(conn, hcpcs.CODE_SET, broken, hcpcs.load)

    assert get_release(conn, hcpcs.CODE_SET).version == "2019"
    assert _code(conn, "J1100")["billable"] == 1
    assert len(_modifiers(conn)) == 9


def test_a_file_without_records_is_refused(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "HCPC2019_README.txt"
    path.write_text("The HCPCS file is fixed width.\r\nSee the record layout.\r\n")

    with pytest.raises(ImportFormatError, match="no HCPCS records"):
        run_import(conn, hcpcs.CODE_SET, path, hcpcs.load)


def test_release_name_from_a_quarterly_file_name() -> None:
    assert hcpcs.release_of(Path("HCPC2025_APR_ANWEB_v2.txt"), None) == (
        "2025 April",
        "2025-04-01",
    )
    assert hcpcs.release_of(Path("anweb.txt"), "2024-07-01") == ("2024", "2024-01-01")


@pytest.mark.fullsets
def test_full_anweb_file(conn: sqlite3.Connection) -> None:
    path = DATA / "hcpcs" / "HCPC2019_CONTR_ANWEB.txt"
    assert path.is_file(), f"missing {path}: the full data set sits in ../shared/data"

    started = time.perf_counter()
    result = run_import(conn, hcpcs.CODE_SET, path, hcpcs.load)
    print(f"HCPCS 2019 ANWEB file: {time.perf_counter() - started:.2f} s")

    assert conn.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 6440
    assert conn.execute("SELECT COUNT(*) FROM modifiers").fetchone()[0] == 360
    assert result.release.row_count == 6440 + 360
    # Every termination in the 2019 file lies before 2019, so each is a deletion.
    assert conn.execute("SELECT COUNT(*) FROM deleted_codes").fetchone()[0] == 506
    dental = conn.execute("SELECT COUNT(*) FROM codes WHERE code LIKE 'D%'").fetchone()[0]
    assert dental == 0  # no CDT (ADA) codes in this release
