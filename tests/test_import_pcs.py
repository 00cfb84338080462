"""ICD-10-PCS order-file import: tables and codes, titles, release name, bad files."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from consultant.codes import icd10pcs
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.systems import ICD10PCS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURE = Path(__file__).parent / "fixtures" / "icd10pcs" / "icd10pcs_order_2026.txt"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _code(conn: sqlite3.Connection, code: str) -> dict:
    row = conn.execute("SELECT * FROM codes WHERE system = ? AND code = ?", (ICD10PCS, code))
    return dict(row.fetchone())


def test_loads_codes_and_tables_from_the_excerpt(conn: sqlite3.Connection) -> None:
    result = run_import(conn, icd10pcs.CODE_SET, FIXTURE, icd10pcs.load)

    assert result.release.version == "FY2026"
    assert result.release.effective == "2025-10-01"
    assert result.release.row_count == 98
    knee = _code(conn, "0SRC0J9")
    assert knee["title"] == (
        "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open Approach"
    )
    assert knee["short_title"] == "Replace of R Knee Jt with Synth Sub, Cement, Open Approach"
    assert (knee["billable"], knee["kind"], knee["parent"]) == (1, "code", "0SR")
    table = _code(conn, "0SR")
    assert (table["billable"], table["kind"], table["parent"]) == (0, "table", None)
    assert table["title"] == "Lower Joints, Replacement"
    counts = dict(conn.execute("SELECT kind, COUNT(*) FROM codes GROUP BY kind").fetchall())
    assert counts == {"table": 3, "code": 95}
    terms = conn.execute(
        "SELECT text, source FROM search_terms WHERE system = ? AND code = '0016070'", (ICD10PCS,)
    ).fetchall()
    assert [tuple(t) for t in terms] == [
        (
            "Bypass Cerebral Ventricle to Nasopharynx with Autologous Tissue Substitute, "
            "Open Approach",
            "title",
        )
    ]


def test_second_import_of_the_same_file_is_skipped(conn: sqlite3.Connection) -> None:
    first = run_import(conn, icd10pcs.CODE_SET, FIXTURE, icd10pcs.load)
    second = run_import(conn, icd10pcs.CODE_SET, FIXTURE, icd10pcs.load)

    assert second.skipped is True
    assert second.release == first.release
    assert conn.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 98


def test_file_name_without_a_year_gives_an_unknown_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    nameless = tmp_path / "pcs_order.txt"
    shutil.copy(FIXTURE, nameless)

    release = run_import(conn, icd10pcs.CODE_SET, nameless, icd10pcs.load).release

    assert (release.version, release.effective) == ("unknown", None)


def test_malformed_file_keeps_the_previous_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    run_import(conn, icd10pcs.CODE_SET, FIXTURE, icd10pcs.load)
    lines = FIXTURE.read_bytes().split(b"\r\n")
    lines[40] = lines[40][:20]  # a line cut short: no longer fits the layout
    broken = tmp_path / "icd10pcs_order_2027.txt"
    broken.write_bytes(b"\r\n".join(lines))

    with pytest.raises(ImportFormatError, match="line 41 does not fit"):
        run_import(conn, icd10pcs.CODE_SET, broken, icd10pcs.load)

    assert get_release(conn, icd10pcs.CODE_SET).version == "FY2026"
    assert _code(conn, "0SRC0J9")["billable"] == 1
    assert conn.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 98


def test_icd10cm_order_file_is_refused(conn: sqlite3.Connection, tmp_path: Path) -> None:
    cm = tmp_path / "icd10cm_order_2026.txt"
    cm.write_text(
        "00001 A00     0 Cholera"
        + " " * 54
        + "Cholera\r\n00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae"
        + " " * 12
        + "Cholera due to Vibrio cholerae 01, biovar cholerae\r\n"
    )

    with pytest.raises(ImportFormatError, match="not an ICD-10-PCS table"):
        run_import(conn, icd10pcs.CODE_SET, cm, icd10pcs.load)


@pytest.mark.fullsets
def test_full_order_file(conn: sqlite3.Connection) -> None:
    path = DATA / "icd10pcs" / "icd10pcs_order_2026.txt"
    assert path.is_file(), f"missing {path}: the full data set sits in ../shared/data"

    started = time.perf_counter()
    result = run_import(conn, icd10pcs.CODE_SET, path, icd10pcs.load)
    print(f"ICD-10-PCS order file: {time.perf_counter() - started:.2f} s")

    counts = dict(conn.execute("SELECT kind, COUNT(*) FROM codes GROUP BY kind").fetchall())
    assert counts == {"code": 79115, "table": 914}
    assert result.release.row_count == 80029
    orphans = "SELECT COUNT(*) FROM codes WHERE kind = 'code' AND parent IS NULL"
    assert conn.execute(orphans).fetchone()[0] == 0
