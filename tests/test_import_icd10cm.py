"""ICD-10-CM tabular import: every note at every level, headers vs billable, 7th characters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from consultant.codes import db, icd10cm
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.store import CodeStore

FIXTURE = (
    Path(__file__).parent / "fixtures" / "icd10cm" / "icd10cm-tabular-excerpt-April-1-2026.xml"
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    conn = db.connect(tmp_path / "codes.sqlite")
    run_import(conn, icd10cm.CODE_SET, FIXTURE, icd10cm.load)
    return CodeStore(conn)


def test_release_is_recorded_with_version_and_checksum(store: CodeStore) -> None:
    release = store.releases["icd10cm"]
    assert release.version == "FY2026 (April 1, 2026 update)"
    assert release.effective == "2026-04-01"
    assert release.source_file == FIXTURE.name
    assert release.sha256 == db.sha256_file(FIXTURE)
    assert release.row_count == store.conn.execute("SELECT count(*) FROM codes").fetchone()[0]


def test_headers_and_billable_codes(store: CodeStore) -> None:
    assert store.lookup("E11").status == "not_billable"
    assert store.lookup("E11.2").status == "not_billable"
    assert store.lookup("e1122").status == "billable"
    assert store.lookup("E11.22").title == (
        "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    )
    assert store.lookup("I10").status == "billable"


def test_notes_are_kept_at_every_level_and_inherited(store: CodeStore) -> None:
    notes = store.lookup("E11.22").notes
    kinds = {(n.kind, n.code) for n in notes}
    # Own note at the code, and inherited ones from the category, block and chapter.
    assert ("use_additional_code", "E11.22") in kinds
    assert ("excludes1", "E11") in kinds
    assert ("includes", "E11") in kinds
    assert ("excludes1", "Chapter 4") in kinds
    texts = [n.text for n in notes if n.kind == "use_additional_code" and n.code == "E11.22"]
    assert any("N18" in t for t in texts)


def test_all_note_kinds_are_imported(store: CodeStore) -> None:
    kinds = {r[0] for r in store.conn.execute("SELECT DISTINCT kind FROM notes")}
    assert {
        "inclusion",
        "includes",
        "excludes1",
        "excludes2",
        "code_first",
        "use_additional_code",
        "code_also",
        "note",
    } <= kinds


def test_seventh_character_codes_are_materialized(store: CodeStore) -> None:
    header = store.lookup("S32.000")
    assert header.status == "needs_seventh_character"
    assert header.seventh_characters["A"] == "initial encounter for closed fracture"
    assert header.seventh_characters["K"] == "subsequent encounter for fracture with nonunion"
    full = store.lookup("s32000a")
    assert full.code == "S32.000A"
    assert full.status == "billable"
    assert full.title.endswith(", initial encounter for closed fracture")
    assert store.lookup("S32.000Z").status == "invalid"


def test_placeholder_x_fills_short_codes(store: CodeStore) -> None:
    # S06.1X1 is six characters already; S06 codes only take A, D, S.
    assert store.lookup("S06.1X1A").status == "billable"
    assert store.lookup("S06.1X1B").status == "invalid"


def test_seventh_character_exceptions_in_prose_are_honoured(store: CodeStore) -> None:
    # "7th characters D and S do not apply to codes in category S06 with 6th character 7"
    assert store.lookup("S06.1X7A").status == "billable"
    assert store.lookup("S06.1X7D").status == "invalid"
    assert store.lookup("S06.1X7S").status == "invalid"
    assert store.lookup("S06.1X1D").status == "billable"


def test_reimport_of_the_same_file_is_skipped(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "codes.sqlite")
    first = run_import(conn, icd10cm.CODE_SET, FIXTURE, icd10cm.load)
    again = run_import(conn, icd10cm.CODE_SET, FIXTURE, icd10cm.load)
    assert not first.skipped and again.skipped
    assert again.release == first.release
    forced = run_import(conn, icd10cm.CODE_SET, FIXTURE, icd10cm.load, force=True)
    assert not forced.skipped
    count = conn.execute("SELECT count(*) FROM codes").fetchone()[0]
    assert count == forced.release.row_count


@pytest.mark.parametrize(
    "content",
    [
        b"<ICD10CM.tabular><version>2027</version><chapter><name>1</name>",  # truncated
        b"<ICD10CM.index><version>2027</version></ICD10CM.index>",  # wrong file
        b"<ICD10CM.tabular><version>2027</version></ICD10CM.tabular>",  # no codes
    ],
)
def test_failed_import_leaves_the_old_release(tmp_path: Path, content: bytes) -> None:
    conn = db.connect(tmp_path / "codes.sqlite")
    good = run_import(conn, icd10cm.CODE_SET, FIXTURE, icd10cm.load)
    bad = tmp_path / "icd10cm-tabular-2027.xml"
    bad.write_bytes(content)
    with pytest.raises(ImportFormatError):
        run_import(conn, icd10cm.CODE_SET, bad, icd10cm.load)
    store = CodeStore(conn)
    assert store.releases["icd10cm"] == good.release
    assert store.lookup("E11.22").status == "billable"


def test_version_from_a_fiscal_year_file_name(tmp_path: Path) -> None:
    renamed = tmp_path / "icd10cm_tabular_2026.xml"
    shutil.copy(FIXTURE, renamed)
    conn = db.connect(tmp_path / "codes.sqlite")
    release = run_import(conn, icd10cm.CODE_SET, renamed, icd10cm.load).release
    assert (release.version, release.effective) == ("FY2026", "2025-10-01")


def test_bundled_tabular_matches_the_cms_billable_list(tmp_path: Path) -> None:
    """Every billable code CMS lists for FY2026, 7th characters included, and nothing more."""
    conn = db.connect(tmp_path / "codes.sqlite")
    result = run_import(conn, icd10cm.CODE_SET, icd10cm.bundled_tabular(), icd10cm.load)
    print(f"bundled ICD-10-CM tabular imported in {result.seconds:.2f} s")
    order = SHARED / "icd10cm_order" / "icd10cm_order_2026.txt"
    with order.open(encoding="ascii") as fh:
        cms = {line[6:13].strip() for line in fh if line[14] == "1"}
    ours = {
        row[0].replace(".", "") for row in conn.execute("SELECT code FROM codes WHERE billable = 1")
    }
    assert len(cms) == 74719
    assert ours == cms
    store = CodeStore(conn)
    # Block-level notes are inherited by the codes in the block.
    assert any(
        n.code == "A15-A19" and n.kind == "excludes1" for n in store.notes("ICD-10-CM", "A15.0")
    )
    headers = conn.execute(
        "SELECT count(*) FROM codes WHERE billable = 0 AND kind NOT IN ('chapter', 'block')"
    ).fetchone()[0]
    assert headers > 20000
