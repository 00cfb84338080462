"""ICD-10-CM index import: index paths as search rows, cross references, the four tables."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from consultant.codes import db, icd10cm, icd10cm_index
from consultant.codes.importers import find_official_files
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.systems import CODE_SETS, ICD10CM, ICD10CM_SHAPE, compact

FIXTURES = Path(__file__).parent / "fixtures" / "icd10cm_index"
MAIN = FIXTURES / "icd10cm_index_2017_excerpt.xml"
DRUG = FIXTURES / "icd10cm_drug_2025_excerpt.xml"
NEOPLASM = FIXTURES / "icd10cm_neoplasm_2025_excerpt.xml"
EINDEX = FIXTURES / "icd10cm_eindex_2025_excerpt.xml"
FLAT = FIXTURES / "ICD10CM_2025_Index_excerpt.csv"  # a third party's flattening of FY2025
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "icd10cm_index"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "codes.sqlite")


def _import(conn: sqlite3.Connection, path: Path, **kwargs: object):
    return run_import(conn, icd10cm_index.detect(path), path, icd10cm_index.load, **kwargs)


def _rows(conn: sqlite3.Connection, code_set: str) -> set[tuple[str, str]]:
    return {
        (row["text"], row["code"])
        for row in conn.execute(
            "SELECT text, code FROM search_terms WHERE code_set = ?", (code_set,)
        )
    }


def _count(conn: sqlite3.Connection, code_set: str) -> int:
    query = "SELECT count(*) FROM search_terms WHERE code_set = ?"
    return conn.execute(query, (code_set,)).fetchone()[0]


def test_every_code_set_is_an_icd10cm_release() -> None:
    for code_set in icd10cm_index.CODE_SETS.values():
        assert CODE_SETS[code_set] == ICD10CM


@pytest.mark.parametrize(
    ("path", "code_set"),
    [
        (MAIN, "icd10cm-index"),
        (DRUG, "icd10cm-drug"),
        (NEOPLASM, "icd10cm-neoplasm"),
        (EINDEX, "icd10cm-eindex"),
    ],
)
def test_detect_reads_the_kind_from_the_content(tmp_path: Path, path: Path, code_set: str) -> None:
    renamed = tmp_path / "download.xml"  # a name that says nothing
    renamed.write_bytes(path.read_bytes())
    assert icd10cm_index.detect(renamed) == code_set


def test_detect_knows_every_real_file() -> None:
    expected = {
        "icd10cm_index_2017.xml": "icd10cm-index",
        "icd10cm_drug_2017.xml": "icd10cm-drug",
        "icd10cm_drug_2025.xml": "icd10cm-drug",
        "icd10cm_neoplasm_2017.xml": "icd10cm-neoplasm",
        "icd10cm_neoplasm_2025.xml": "icd10cm-neoplasm",
        "icd10cm_eindex_2017.xml": "icd10cm-eindex",
        "icd10cm_eindex_2025.xml": "icd10cm-eindex",
    }
    assert {p.name for p in DATA.glob("*.xml")} == set(expected), f"missing data in {DATA}"
    for name, code_set in expected.items():
        assert icd10cm_index.detect(DATA / name) == code_set, name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Substance,Poisoning Accidental (unintentional)\n", "not well-formed XML"),
        ("<catalog><book>Moby Dick</book></catalog>", "its root is <catalog>"),
        (
            '<ICD10CM.index isAddenda="true"><version>2025</version><letter/></ICD10CM.index>',
            "addenda",
        ),
        (
            "<ICD10CM.index><version>2025</version><indexHeading><head col='1'>Procedure</head>"
            "</indexHeading><letter/></ICD10CM.index>",
            "first column is 'Procedure'",
        ),
        ("<ICD10CM.index><version>2025</version><letter/></ICD10CM.index>", "index title"),
    ],
)
def test_detect_rejects_other_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "icd10cm_index_2025.xml"
    path.write_text(content)
    with pytest.raises(ImportFormatError, match=message):
        icd10cm_index.detect(path)


def test_detect_points_the_tabular_at_its_own_importer() -> None:
    with pytest.raises(ImportFormatError, match="import icd10cm"):
        icd10cm_index.detect(icd10cm.bundled_tabular())


def test_main_index_paths_become_search_rows(conn: sqlite3.Connection) -> None:
    result = _import(conn, MAIN)
    assert result.release.version == "FY2017"
    assert result.release.effective == "2016-10-01"
    assert result.release.row_count == _count(conn, "icd10cm-index")
    rows = _rows(conn, "icd10cm-index")
    assert {
        # A main term keeps its nonessential modifiers.
        ("Abasia (-astasia) (hysterical)", "F44.4"),
        ("Diabetes, diabetic (mellitus) (sugar)", "E11.9"),
        # Subterms are headed by the bare main term; "with" joins its subterm.
        ("Diabetes, type 2, with chronic kidney disease", "E11.22"),
        ("Hypertension, cardiorenal (disease), with heart failure", "I13.0"),
        # An incomplete code ("L89.15-") is kept without its dash, for search to complete.
        (
            "Ulcer, pressure (pressure area), stage 3 (healing) (full thickness skin loss"
            " involving damage or necrosis of subcutaneous tissue), sacral region (tailbone)",
            "L89.15",
        ),
        # "see subcategory" and "see category" lead to those codes.
        ("Bonnier's syndrome", "H81.8"),
        ("Pyelitis, with calculus", "N20"),
        ("Whipple's disease", "K90.81"),
        ("Whipple's disease", "M14.8"),
    } <= rows


def test_manifestation_pairs_give_a_row_for_each_code(conn: sqlite3.Connection) -> None:
    _import(conn, MAIN)
    codes = {code for text, code in _rows(conn, "icd10cm-index") if text == "Amyloidosis, heart"}
    assert codes == {"E85.4", "I43"}


def test_see_references_lead_to_the_target_codes(conn: sqlite3.Connection) -> None:
    _import(conn, MAIN)
    rows = _rows(conn, "icd10cm-index")
    assert {
        ("Abdominalgia (see Pain, abdominal)", "R10.9"),
        ("Hypertensive urgency (see Hypertension)", "I10"),
        ("Hyperthyroid (recurrent) (see Hyperthyroidism)", "E05.90"),
        ("Pain, groin (see Pain, abdominal, lower)", "R10.30"),
        ("Contraction, hip (see Contraction, joint, hip)", "M24.55"),
        # A target without a code of its own offers its coded subterms.
        ("Nonrotation (see Malrotation, cecum)", "Q43.3"),
        ("Nonrotation (see Malrotation, kidney)", "Q63.2"),
    } <= rows
    texts = {text for text, _ in rows}
    # "see Maltreatment" opens a whole entry of choices: no row stands for it.
    assert not any(text.startswith("Abandonment") for text in texts)
    # "see categories O03-O06" names a range, not the codes O03 and O06.
    assert "Abortion, habitual or recurrent, with current abortion" not in texts


def test_a_histology_sent_to_the_neoplasm_table_by_site_keeps_its_behavior(
    conn: sqlite3.Connection,
) -> None:
    # "Adenocarcinoma - see also Neoplasm, malignant, by site" lists no site a row could
    # stand for: the main term leads to the unspecified site's code of its behavior, which
    # is how search learns the histology's behavior (neoplasm_morphology.py).
    _import(conn, MAIN)
    rows = _rows(conn, "icd10cm-index")
    assert {
        ("Adenocarcinoma (see also Neoplasm, malignant, by site)", "C80.1"),
        ("Adenoma (see also Neoplasm, benign, by site)", "D36.9"),
        ("Adenocarcinoma, renal cell", "C64"),
        ("Adenocarcinoma, acidophil, unspecified site", "C75.1"),
    } <= rows
    # a subterm's "specified site" is no histology of its own
    assert not any(text.startswith("Adenocarcinoma, acidophil, specified") for text, _ in rows)


def _import_additions(conn: sqlite3.Connection, path: Path):
    return run_import(conn, icd10cm_index.ADDITIONS, path, icd10cm_index.load_additions)


def test_a_flattened_newer_index_adds_only_the_terms_the_official_one_lacks(
    conn: sqlite3.Connection,
) -> None:
    _import(conn, MAIN)
    result = _import_additions(conn, FLAT)
    assert (result.release.version, result.release.effective) == (
        "FY2025 (flattened)",
        "2024-10-01",
    )
    # FY2018 added "osteomyelitis" under "Diabetes, type 2, with"; the FY2017 XML has the
    # rest of these rows already, so they are not written twice.
    assert _rows(conn, icd10cm_index.ADDITIONS) == {
        ("Diabetes, type 2, with osteomyelitis", "E11.69")
    }
    assert ("Diabetes, type 2, with chronic kidney disease", "E11.22") in _rows(
        conn, "icd10cm-index"
    )


def test_a_flattened_index_alone_gives_every_row(conn: sqlite3.Connection) -> None:
    _import_additions(conn, FLAT)
    assert _rows(conn, icd10cm_index.ADDITIONS) == {
        ("Diabetes, diabetic (mellitus) (sugar)", "E11.9"),
        ("Diabetes, type 2", "E11.9"),
        ("Diabetes, type 2, with chronic kidney disease", "E11.22"),
        ("Diabetes, type 2, with osteomyelitis", "E11.69"),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code,description\nE11.9,diabetes\n", "not a flattened ICD-10-CM index CSV"),
        (
            "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,D,2,with,,,,\n",
            "row 1 is at level 2 under no term of level 1",
        ),
    ],
)
def test_a_file_that_is_no_flattened_index_is_refused(
    conn: sqlite3.Connection, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "ICD10CM_2025_Index.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFormatError, match=message):
        _import_additions(conn, path)
    assert db.get_release(conn, icd10cm_index.ADDITIONS) is None


def test_import_dir_adds_the_flattened_index_after_the_official_one(tmp_path: Path) -> None:
    for fixture in (FLAT, MAIN):
        (tmp_path / fixture.name.replace("_excerpt", "")).write_bytes(fixture.read_bytes())
    kinds = [importer.kind for importer, _ in find_official_files(tmp_path)]
    assert kinds == ["icd10cm-index", "icd10cm-index-additions"]


def test_codes_are_normalized_and_tagged(conn: sqlite3.Connection) -> None:
    for path in (MAIN, DRUG, NEOPLASM, EINDEX):
        _import(conn, path)
    rows = conn.execute("SELECT system, code, source, code_set FROM search_terms").fetchall()
    assert rows
    for row in rows:
        assert row["system"] == ICD10CM
        assert ICD10CM_SHAPE.match(compact(row["code"])), row["code"]
        assert "-" not in row["code"]
        assert row["code_set"] == icd10cm_index.CODE_SETS[row["source"]]


def test_drug_table_gives_a_row_per_substance_and_column(conn: sqlite3.Connection) -> None:
    result = _import(conn, DRUG)
    assert result.release.version == "FY2025"
    assert result.release.effective == "2024-10-01"
    rows = _rows(conn, "icd10cm-drug")
    assert {
        ("Acetaminophen poisoning accidental (unintentional)", "T39.1X1"),
        ("Acetaminophen poisoning intentional self-harm", "T39.1X2"),
        ("Acetaminophen adverse effect", "T39.1X5"),
        ("Acetaminophen underdosing", "T39.1X6"),
        ("Ethyl, chloride (anesthetic), local adverse effect", "T49.4X5"),
        ("Chloroethane (see Ethyl, chloride) adverse effect", "T41.0X5"),
    } <= rows
    # "--" cells (no code for that column) give no row.
    columns = {text for text, _ in rows if text.startswith("2,4-D (dichlorophen-oxyacetic acid)")}
    assert len(columns) == 4
    assert not any("adverse effect" in text for text in columns)


def test_neoplasm_table_gives_a_row_per_site_and_behavior(conn: sqlite3.Connection) -> None:
    _import(conn, NEOPLASM)
    rows = _rows(conn, "icd10cm-neoplasm")
    breast = "Neoplasm, breast (connective tissue) (glandular tissue) (soft parts)"
    assert {
        ("Neoplasm, neoplastic, malignant primary", "C80.1"),
        (f"{breast}, malignant primary", "C50.9"),
        (f"{breast}, carcinoma in situ", "D05"),
        (f"{breast}, benign", "D24"),
        (f"{breast}, areola, malignant primary", "C50.0"),
        ("Neoplasm, mammary gland (see Neoplasm, breast), malignant primary", "C50.9"),
    } <= rows
    # Cells holding "-" give no row: this site has only a malignant primary code.
    skin_bcc = "Neoplasm, abdomen, abdominal, wall, skin, basal cell carcinoma"
    assert {(text, code) for text, code in rows if text.startswith(skin_bcc)} == {
        (f"{skin_bcc}, malignant primary", "C44.519")
    }


def test_external_cause_index_is_read_like_the_main_index(conn: sqlite3.Connection) -> None:
    _import(conn, EINDEX)
    rows = _rows(conn, "icd10cm-eindex")
    assert {
        ("Forces of nature, cataclysmic storm, hurricane", "X37.0"),
        ("Strangulation (accidental)", "T71"),
        ("Complication, with misadventure (see Misadventure)", "Y69"),
        # "see categories T17 and" + <code>T18</code>: both categories.
        ("Bean in nose", "T17"),
        ("Bean in nose", "T18"),
    } <= rows


def test_tables_are_separate_releases(conn: sqlite3.Connection) -> None:
    _import(conn, MAIN)
    _import(conn, DRUG)
    main_rows, drug_rows = _count(conn, "icd10cm-index"), _count(conn, "icd10cm-drug")
    assert main_rows > 0 and drug_rows > 0
    releases = {r.code_set: r for r in db.list_releases(conn)}
    assert releases["icd10cm-index"].row_count == main_rows
    assert releases["icd10cm-drug"].row_count == drug_rows
    # Replacing the main index leaves the drug table alone.
    _import(conn, MAIN, force=True)
    assert (_count(conn, "icd10cm-index"), _count(conn, "icd10cm-drug")) == (main_rows, drug_rows)


def test_reimport_is_skipped_and_forcing_does_not_duplicate(conn: sqlite3.Connection) -> None:
    first = _import(conn, MAIN)
    before = _rows(conn, "icd10cm-index")
    again = _import(conn, MAIN)
    assert again.skipped
    assert again.release == first.release
    forced = _import(conn, MAIN, force=True)
    assert not forced.skipped
    assert forced.release.row_count == first.release.row_count
    assert _rows(conn, "icd10cm-index") == before


def test_progress_reports_the_rows_written(conn: sqlite3.Connection) -> None:
    seen: list[int] = []
    result = _import(conn, MAIN, progress=seen.append)
    assert seen and seen[-1] == result.release.row_count


@pytest.mark.parametrize("wrong", ["tabular", "catalog"])
def test_a_wrong_file_keeps_the_previous_release(
    conn: sqlite3.Connection, tmp_path: Path, wrong: str
) -> None:
    _import(conn, MAIN)
    before = _rows(conn, "icd10cm-index")
    release = db.get_release(conn, "icd10cm-index")
    if wrong == "tabular":
        path = icd10cm.bundled_tabular()
    else:
        path = tmp_path / "icd10cm_index_2026.xml"
        path.write_text("<catalog><book>Moby Dick</book></catalog>")
    with pytest.raises(ImportFormatError):
        run_import(conn, "icd10cm-index", path, icd10cm_index.load)
    assert _rows(conn, "icd10cm-index") == before
    assert db.get_release(conn, "icd10cm-index") == release


@pytest.mark.fullsets
def test_full_files_import(conn: sqlite3.Connection) -> None:
    run_import(conn, icd10cm.CODE_SET, icd10cm.bundled_tabular(), icd10cm.load)
    breast = "Neoplasm, breast (connective tissue) (glandular tissue) (soft parts)"
    expected = {
        "icd10cm_index_2017.xml": ("Diabetes, type 2, with chronic kidney disease", "E11.22"),
        "icd10cm_drug_2017.xml": ("Acetaminophen poisoning accidental (unintentional)", "T39.1X1"),
        "icd10cm_neoplasm_2017.xml": (f"{breast}, malignant primary", "C50.9"),
        "icd10cm_eindex_2017.xml": ("Forces of nature, cataclysmic storm, hurricane", "X37.0"),
        # The FY2025 tables replace the FY2017 ones: each table is its own release.
        "icd10cm_drug_2025.xml": ("Acetaminophen underdosing", "T39.1X6"),
        "icd10cm_neoplasm_2025.xml": (f"{breast}, carcinoma in situ", "D05"),
        "icd10cm_eindex_2025.xml": ("Bean in nose", "T17"),
    }
    for name, row in expected.items():
        started = time.perf_counter()
        result = _import(conn, DATA / name)
        seconds = time.perf_counter() - started
        print(f"{name}: {result.release.row_count} rows in {seconds:.2f} s")
        assert result.release.version == f"FY{name[-8:-4]}"
        assert row in _rows(conn, result.release.code_set)
        if name == "icd10cm_index_2017.xml":
            assert result.release.row_count > 60000
            assert seconds < 15
            # "Failure, heart (acute)": a subterm that says the acuity settles it, so
            # chronic failure is no match for "acute on chronic" (I50.33's words).
            chronic = "Failure, heart (senile) (sudden), diastolic (congestive), chronic"
            assert (f"{chronic} (congestive)", "I50.32") in _rows(conn, "icd10cm-index")
            # The FY2025 flattening adds what nine years of addenda added to the index.
            started = time.perf_counter()
            added = _import_additions(conn, DATA / "derived" / "ICD10CM_2025_Index.csv")
            seconds = time.perf_counter() - started
            print(f"additions: {added.release.row_count} rows in {seconds:.2f} s")
            assert 5000 < added.release.row_count < 15000
            assert ("Diabetes, type 2, with osteomyelitis", "E11.69") in _rows(
                conn, icd10cm_index.ADDITIONS
            )

    # Nearly every index code names a code or header of the current tabular; the rest are
    # codes the tabular has since deleted or index errata, which search leaves out.
    for source, billable, header, unknown in conn.execute(
        "SELECT t.source, sum(c.billable = 1), sum(c.billable = 0), sum(c.code IS NULL)"
        " FROM (SELECT DISTINCT source, code FROM search_terms"
        "       WHERE source IN ('index', 'drug', 'neoplasm', 'eindex')) t"
        " LEFT JOIN codes c ON c.system = 'ICD-10-CM' AND c.code = t.code GROUP BY t.source"
    ):
        print(f"{source}: {billable} billable, {header} headers, {unknown} not in the tabular")
        assert unknown <= 0.01 * (billable + header)
