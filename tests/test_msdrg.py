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
