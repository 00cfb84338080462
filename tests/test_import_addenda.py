"""Order addenda import: codes a fiscal year deleted, for ICD-10-CM and ICD-10-PCS."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from consultant.codes import icd10cm_addenda as addenda
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.systems import ICD10CM, ICD10PCS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "icd10cm_addenda"
CM = FIXTURES / "icd10cm_order_addenda_2026.txt"
PCS = FIXTURES / "order_addenda_2026.txt"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _deleted(conn: sqlite3.Connection, system: str) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT code, title, deleted_on, code_set FROM deleted_codes WHERE system = ?", (system,)
    )
    return {row[0]: tuple(row)[1:] for row in rows}


def _add_code(conn: sqlite3.Connection, code: str, billable: int) -> None:
    conn.execute(
        "INSERT INTO codes (system, code, title, billable, kind, code_set)"
        " VALUES (?, ?, 'Made-up title', ?, 'category', 'icd10cm')",
        (ICD10CM, code, billable),
    )


def test_cm_deletions_with_dotted_codes_and_fy_start(conn: sqlite3.Connection) -> None:
    result = run_import(conn, addenda.CODE_SET, CM, addenda.load)

    assert (result.release.version, result.release.effective) == ("FY2026", "2025-10-01")
    deleted = _deleted(conn, ICD10CM)
    assert deleted["S30.1XXA"] == (
        "Contusion of abdominal wall, initial encounter",
        "2025-10-01",
        addenda.CODE_SET,
    )
    # B88.0, D71, Z91.011 and Z91.012 were deleted as codes and added back as headers.
    assert set(deleted) == {"G35", "S30.1XXA", "S30.1XXD", "S30.1XXS"}
    assert result.release.row_count == 4


def test_deleted_code_now_a_header_in_the_tabular_is_skipped(conn: sqlite3.Connection) -> None:
    _add_code(conn, "G35", billable=0)  # FY2026 tabular: G35 is a category with children
    _add_code(conn, "S30.1XXA", billable=1)  # an older tabular: the deletion still stands

    run_import(conn, addenda.CODE_SET, CM, addenda.load)

    assert set(_deleted(conn, ICD10CM)) == {"S30.1XXA", "S30.1XXD", "S30.1XXS"}


def test_pcs_addenda_is_its_own_code_set(conn: sqlite3.Connection) -> None:
    run_import(conn, addenda.CODE_SET, CM, addenda.load)
    result = run_import(conn, addenda.PCS_CODE_SET, PCS, addenda.load_pcs)

    deleted = _deleted(conn, ICD10PCS)
    assert result.release.row_count == len(deleted) == 4
    assert deleted["X2A5312"] == (
        "Cerebral Embolic Filtration, Dual Filter in Innominate Artery and Left Common "
        "Carotid Artery, Percutaneous Approach, New Technology Group 2",
        "2025-10-01",
        addenda.PCS_CODE_SET,
    )
    assert len(_deleted(conn, ICD10CM)) == 4  # the CM release is untouched


def test_wrong_system_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ImportFormatError, match="import it as `icd10pcs-addenda`"):
        run_import(conn, addenda.CODE_SET, PCS, addenda.load)
    with pytest.raises(ImportFormatError, match="import it as `icd10cm-addenda`"):
        run_import(conn, addenda.PCS_CODE_SET, CM, addenda.load_pcs)


def test_idempotent_and_bad_file_keeps_the_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    run_import(conn, addenda.CODE_SET, CM, addenda.load)
    assert run_import(conn, addenda.CODE_SET, CM, addenda.load).skipped is True
    wrong = tmp_path / "icd10cm_codes_2026.txt"
    wrong.write_text("A000    Cholera due to Vibrio cholerae 01, biovar cholerae\r\n")

    with pytest.raises(ImportFormatError, match="no `Add:`/`Delete:` lines"):
        run_import(conn, addenda.CODE_SET, wrong, addenda.load)

    assert get_release(conn, addenda.CODE_SET).version == "FY2026"
    assert len(_deleted(conn, ICD10CM)) == 4


@pytest.mark.fullsets
def test_full_addenda_files(conn: sqlite3.Connection) -> None:
    cm = DATA / "icd10cm_order" / "icd10cm_order_addenda_2026.txt"
    pcs = DATA / "icd10pcs" / "order_addenda_2026.txt"
    assert cm.is_file() and pcs.is_file(), "missing ../shared/data order addenda files"

    started = time.perf_counter()
    cm_rows = run_import(conn, addenda.CODE_SET, cm, addenda.load).release.row_count
    pcs_rows = run_import(conn, addenda.PCS_CODE_SET, pcs, addenda.load_pcs).release.row_count
    print(f"order addenda (CM + PCS): {time.perf_counter() - started:.3f} s")

    # The CM file deletes 28 codes; 16 of them return as headers.
    assert (cm_rows, pcs_rows) == (12, 27)
    assert "T78.07XA" in _deleted(conn, ICD10CM)
