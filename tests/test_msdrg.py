"""MS-DRG CC/MCC levels and CC exclusions loaded from drgpy's runtime data."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from drgpy._versions import SUPPORTED_VERSIONS

from consultant.codes import db, msdrg
from consultant.codes.importers import IMPORTERS, bundled_files
from consultant.codes.importing import ImportFormatError, ImportResult, run_import
from consultant.codes.store import CodeInfo
from consultant.drafting.findings import _severity


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sqlite3.Connection, ImportResult]]:
    conn = db.connect(tmp_path_factory.mktemp("msdrg") / "codes.sqlite")
    result = run_import(conn, msdrg.CODE_SET, msdrg.bundled_data(), msdrg.load)
    yield conn, result
    conn.close()


@pytest.fixture(scope="module")
def conn(imported: tuple[sqlite3.Connection, ImportResult]) -> sqlite3.Connection:
    return imported[0]


def test_every_version_is_loaded_with_its_dates(
    imported: tuple[sqlite3.Connection, ImportResult],
) -> None:
    conn, result = imported
    versions = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT * FROM drg_versions")}

    assert list(versions) == sorted(msdrg.EFFECTIVE, key=msdrg.EFFECTIVE.__getitem__)
    assert versions["v42.1"] == ("2025-04-01", "2025-09-30")
    assert versions["v43"] == ("2025-10-01", "2026-03-31")
    assert versions["v43.1"] == ("2026-04-01", None)
    assert result.release.version == "MS-DRG v36–v43.1"
    assert result.release.effective == "2026-04-01"
    assert conn.execute("SELECT COUNT(*) FROM drg_cc WHERE version = 'v43.1'").fetchone()[0] > 18000


def test_effective_dates_agree_with_drgpy() -> None:
    assert {v.name: v.effective_date for v in SUPPORTED_VERSIONS} == msdrg.EFFECTIVE


@pytest.mark.parametrize(
    ("code", "level"),
    [("E87.1", "CC"), ("N17.9", "CC"), ("J96.01", "MCC"), ("R65.21", "MCC"), ("E11.22", None)],
)
def test_levels_in_v43_1(conn: sqlite3.Connection, code: str, level: str | None) -> None:
    found = msdrg.cc_mcc(conn, code, date(2026, 5, 1))

    assert (found.level if found else None) == level
    if found:
        assert found.version == "v43.1"
        assert found.code == code


def test_codes_are_matched_in_any_spelling(conn: sqlite3.Connection) -> None:
    found = msdrg.cc_mcc(conn, "j9601", date(2026, 5, 1))

    assert found is not None and found.code == "J96.01"


def test_a_level_that_changed_between_versions(conn: sqlite3.Connection) -> None:
    # Z16.10 (resistance to unspecified beta lactam antibiotics): a CC in v37-v40, not in v41.
    assert msdrg.cc_mcc(conn, "Z16.10", date(2023, 9, 30)).level == "CC"
    assert msdrg.cc_mcc(conn, "Z16.10", date(2023, 10, 1)) is None
    history = dict(msdrg.levels_by_version(conn, "Z16.10"))
    assert history["v36"] is None
    assert history["v40"] == "CC"
    assert history["v43.1"] is None
    assert list(history) == list(msdrg.EFFECTIVE)


def test_a_principal_in_the_collection_excludes_the_cc(conn: sqlite3.Connection) -> None:
    on = date(2026, 5, 1)

    assert msdrg.cc_mcc(conn, "E87.1", on, principal="E87.1").excluded_by_principal is True
    assert msdrg.cc_mcc(conn, "E87.1", on, principal="I10").excluded_by_principal is False
    assert msdrg.cc_mcc(conn, "N17.9", on, principal="n184").excluded_by_principal is True
    assert msdrg.cc_mcc(conn, "N17.9", on).excluded_by_principal is None


def test_the_excluding_principals_are_capped_and_counted(conn: sqlite3.Connection) -> None:
    found = msdrg.cc_mcc(conn, "N17.9", date(2026, 5, 1))

    assert found.excluded_count > msdrg.EXCLUDED_SHOWN
    assert len(found.excluded_with) == msdrg.EXCLUDED_SHOWN
    assert found.excluded_with == sorted(found.excluded_with)
    assert found.to_dict()["excluded_with"][0] == "E09.21"


@pytest.mark.parametrize(
    ("on", "version"),
    [
        (date(2018, 9, 30), None),
        (date(2018, 10, 1), "v36"),
        (date(2025, 9, 30), "v42.1"),
        (date(2025, 10, 1), "v43"),
        (date(2026, 3, 31), "v43"),
        (date(2026, 4, 1), "v43.1"),
        (date.today(), "v43.1"),
    ],
)
def test_version_on(conn: sqlite3.Connection, on: date, version: str | None) -> None:
    assert msdrg.version_on(conn, on) == version


def test_no_level_before_the_oldest_version(conn: sqlite3.Connection) -> None:
    assert msdrg.cc_mcc(conn, "J96.01", date(2018, 9, 30)) is None


def test_reimport_of_the_same_data_is_skipped(conn: sqlite3.Connection) -> None:
    assert run_import(conn, msdrg.CODE_SET, msdrg.bundled_data(), msdrg.load).skipped


def test_a_wrong_file_is_refused_and_the_release_stays(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not drgpy data\n")
    garbage = tmp_path / "v43.1.json.xz"
    garbage.write_bytes(b"not xz")

    for path in (notes, garbage):
        with pytest.raises(ImportFormatError):
            run_import(conn, msdrg.CODE_SET, path, msdrg.load)
    assert db.get_release(conn, msdrg.CODE_SET).version == "MS-DRG v36–v43.1"


def test_a_version_without_a_known_date_is_refused(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    newest = shutil.copy(msdrg.bundled_data(), tmp_path)
    (tmp_path / "v99.json.xz").write_bytes(b"")

    with pytest.raises(ImportFormatError, match="v99"):
        run_import(conn, msdrg.CODE_SET, Path(newest), msdrg.load, force=True)


def test_registered_as_a_bundled_import() -> None:
    importer = IMPORTERS["msdrg"]

    assert importer.bundled is msdrg.bundled_data
    assert importer.code_set(msdrg.bundled_data()) == "msdrg"
    assert any(i.kind == "msdrg" for i, _ in bundled_files())


@pytest.mark.parametrize(
    ("code", "level", "hac"),
    [
        ("L89.154", "MCC", "04"),  # pressure ulcer of sacral region, stage 4
        ("S72.001A", "MCC", "05"),  # fracture of the femoral neck: falls and trauma
        ("N39.0", "CC", "06"),  # urinary tract infection: catheter-associated UTI
        ("E87.1", "CC", None),
    ],
)
def test_hac_categories_in_v43_1(
    conn: sqlite3.Connection, code: str, level: str, hac: str | None
) -> None:
    found = msdrg.cc_mcc(conn, code, date(2026, 5, 1))

    assert (found.level, found.hac, found.mcc_if_alive) == (level, hac, False)
    assert found.to_dict()["hac"] == hac


def test_hac_categories_counted_in_v43_1(conn: sqlite3.Connection) -> None:
    by_category = dict(
        conn.execute(
            "SELECT hac, COUNT(*) FROM drg_cc WHERE version = 'v43.1' AND hac IS NOT NULL"
            " GROUP BY hac"
        ).fetchall()
    )

    assert sorted(by_category) == [f"{n:02d}" for n in range(1, 15)]
    assert by_category["04"] == 50  # stage 3, 4 and unstageable pressure ulcers
    assert sum(by_category.values()) == 3996


def test_drgpy_gives_no_hac_categories_before_v43_1(conn: sqlite3.Connection) -> None:
    # drgpy's Appendix C text has a HAC column only from v43.1; older versions say nothing.
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM drg_cc WHERE version <> 'v43.1' AND hac IS NOT NULL"
    ).fetchone()
    assert count == 0


def test_mccs_only_if_discharged_alive(conn: sqlite3.Connection) -> None:
    on = date(2026, 5, 1)
    alive_only = [
        row[0]
        for row in conn.execute(
            "SELECT code FROM drg_cc WHERE version = 'v43.1' AND mcc_if_alive ORDER BY code"
        )
    ]

    assert alive_only == [
        "I46.2",
        "I46.8",
        "I46.9",
        "I49.01",
        "R09.2",
        "R57.0",
        "R57.8",
        "T79.4XXA",
    ]
    found = msdrg.cc_mcc(conn, "I46.9", on)
    assert (found.level, found.mcc_if_alive, found.hac) == ("MCC", True, None)
    assert found.to_dict()["mcc_if_alive"] is True
    assert msdrg.cc_mcc(conn, "E87.1", on).mcc_if_alive is False
    # R57.1 (hypovolemic shock) was in Appendix C Part 2 v36-v42.1; v43 has T79.4XXA instead.
    assert msdrg.cc_mcc(conn, "R57.1", date(2019, 5, 1)).mcc_if_alive is True
    for version in msdrg.EFFECTIVE:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM drg_cc WHERE version = ? AND mcc_if_alive", (version,)
        ).fetchone()
        assert count == 8, version


# drg_cc as releases before the HAC and discharged-alive columns created it, with the
# release that loaded it.
_OLD_DRG_CC = """
CREATE TABLE releases (code_set TEXT PRIMARY KEY, version TEXT NOT NULL, effective TEXT,
    source_file TEXT NOT NULL, sha256 TEXT NOT NULL, row_count INTEGER NOT NULL,
    imported_at TEXT NOT NULL);
INSERT INTO releases VALUES ('msdrg', 'MS-DRG v36–v43', '2025-10-01', 'v43.json.xz', 'x', 1,
    '2026-01-01T00:00:00+00:00');
CREATE TABLE drg_cc (
    version    TEXT NOT NULL,
    code       TEXT NOT NULL,
    level      TEXT NOT NULL,
    collection TEXT,
    PRIMARY KEY (version, code)
) WITHOUT ROWID;
"""


def test_an_older_database_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "codes.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_OLD_DRG_CC)
    old.execute("INSERT INTO drg_cc VALUES ('v43', 'E87.1', 'CC', '0586')")
    old.commit()
    old.close()

    conn = db.connect(path)
    try:
        columns = {row[1]: row for row in conn.execute("PRAGMA table_info(drg_cc)")}
        assert {"hac", "mcc_if_alive"} <= columns.keys()
        assert columns["mcc_if_alive"][3] == 1  # NOT NULL
        row = conn.execute("SELECT hac, mcc_if_alive FROM drg_cc WHERE code = 'E87.1'").fetchone()
        assert tuple(row) == (None, 0)
        # its release is forgotten, so the next import (not skipped by checksum) fills them
        assert db.get_release(conn, "msdrg") is None
    finally:
        conn.close()


def test_the_finding_names_the_hac_category_and_the_alive_rule(conn: sqlite3.Connection) -> None:
    on = date(2026, 5, 1)

    def message(code: str) -> str:
        level = msdrg.cc_mcc(conn, code, on).to_dict()
        info = CodeInfo(code, "ICD-10-CM", "billable", None, on=on.isoformat(), cc_mcc=level)
        return _severity(info, "v43.1")

    ulcer, arrest, sodium = message("L89.154"), message("I46.9"), message("E87.1")
    assert (
        "It is on the hospital-acquired condition list (HAC category 04): if it was not present "
        "on admission (POA indicator N or U), it does not count as an MCC." in ulcer
    )
    assert "discharged alive" not in ulcer
    assert arrest.endswith(" It counts as an MCC only when the patient is discharged alive.")
    assert "hospital-acquired" not in arrest
    assert "hospital-acquired" not in sodium and "discharged alive" not in sodium
