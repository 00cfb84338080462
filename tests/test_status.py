"""Release staleness: each code set is judged by its own calendar."""

from __future__ import annotations

from datetime import date

import pytest

from consultant.codes.db import Release
from consultant.codes.status import period_start, release_status


def _release(code_set: str, effective: str | None) -> Release:
    return Release(code_set, "v", effective, "file", "0" * 64, 1, "2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("code_set", "effective", "today", "current"),
    [
        ("icd10cm", "2026-04-01", date(2026, 9, 30), True),  # April update, same FY
        ("icd10cm", "2026-04-01", date(2026, 10, 1), False),  # FY2027 has begun
        ("icd10pcs", "2025-10-01", date(2026, 3, 1), True),
        ("icd10pcs", "2025-10-01", date(2026, 11, 25), False),
        ("hcpcs", "2019-01-01", date(2026, 11, 25), False),
        ("hcpcs", "2026-01-01", date(2026, 11, 25), True),
        ("ncci-ptp", "2026-10-01", date(2026, 11, 25), True),
        ("ncci-ptp", "2026-07-01", date(2026, 11, 25), False),
        ("icd10cm-drug", "2024-10-01", date(2026, 11, 25), False),
    ],
)
def test_staleness(code_set: str, effective: str, today: date, current: bool) -> None:
    status = release_status(_release(code_set, effective), today)
    assert status.current is current
    assert (status.warning is None) is current


def test_warning_names_the_import_command() -> None:
    status = release_status(_release("icd10cm-neoplasm", "2024-10-01"), date(2026, 11, 25))
    assert "FY2027" in status.warning
    assert "consultant codes import icd10cm-index FILE" in status.warning


def test_unknown_effective_date_is_flagged() -> None:
    assert not release_status(_release("cpt", None), date(2026, 1, 2)).current


def test_period_starts() -> None:
    assert period_start("fiscal year", date(2026, 9, 30)) == date(2025, 10, 1)
    assert period_start("quarter", date(2026, 11, 25)) == date(2026, 10, 1)
    assert period_start("calendar year", date(2026, 11, 25)) == date(2026, 1, 1)
