"""Is a loaded release current? Code sets change on their own calendars."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date

from consultant.codes.db import Release

# Code set -> how often it is replaced.
FISCAL_YEAR = "fiscal year"  # ICD-10: every October 1 (with an April update)
CALENDAR_YEAR = "calendar year"  # HCPCS annual file, CPT
QUARTER = "quarter"  # NCCI edits
CADENCE = {
    "icd10cm": FISCAL_YEAR,
    "icd10cm-index": FISCAL_YEAR,
    "icd10cm-index-additions": FISCAL_YEAR,
    "icd10cm-drug": FISCAL_YEAR,
    "icd10cm-neoplasm": FISCAL_YEAR,
    "icd10cm-eindex": FISCAL_YEAR,
    "icd10cm-addenda": FISCAL_YEAR,
    "icd10pcs": FISCAL_YEAR,
    "icd10pcs-addenda": FISCAL_YEAR,
    "icd10pcs-tables": FISCAL_YEAR,
    "icd10pcs-definitions": FISCAL_YEAR,
    "hcpcs": CALENDAR_YEAR,
    "cpt": CALENDAR_YEAR,
    "ncci-ptp": QUARTER,
    "ncci-mue": QUARTER,
    "ncci-addon": QUARTER,
    "ioce": QUARTER,
    "msdrg": FISCAL_YEAR,
    "hcc": CALENDAR_YEAR,  # a payment year's model and mappings
}


def import_kind(code_set: str) -> str:
    """The `codes import` kind that loads CODE_SET (the index tables share one kind)."""
    return (
        "icd10cm-index"
        if code_set.startswith("icd10cm-")
        and code_set not in ("icd10cm-addenda", "icd10cm-index-additions")
        else code_set
    )


def period_start(cadence: str, today: date) -> date:
    """First day of the period that TODAY falls in."""
    if cadence == FISCAL_YEAR:
        return date(today.year if today.month >= 10 else today.year - 1, 10, 1)
    if cadence == QUARTER:
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return date(today.year, 1, 1)


@dataclass(frozen=True)
class ReleaseStatus:
    release: Release
    current: bool
    warning: str | None
    covers: str | None = None  # the dates a release holding several periods answers for

    def to_dict(self) -> dict:
        return {
            **self.release.__dict__,
            "current": self.current,
            "warning": self.warning,
            "covers": self.covers,
        }


# What each multi-period release covers, as one line for `codes status`.
_COVERAGE = {
    "ioce": "SELECT 'quarters ' || min(valid_from) || ' to '"
    " || CASE WHEN count(valid_to) < count(*) THEN 'now' ELSE max(valid_to) END"
    " || ' (codes, NCCI outpatient and add-on edits by date of service)'"
    " FROM code_validity WHERE code_set = 'ioce'",
    "msdrg": "SELECT group_concat(version || ' from ' || valid_from, ', ')"
    " FROM (SELECT * FROM drg_versions ORDER BY valid_from)",
    "hcc": "SELECT 'payment years ' || group_concat(payment_year, ', ')"
    " FROM (SELECT DISTINCT payment_year FROM hcc_map ORDER BY payment_year)",
}


def coverage(conn: sqlite3.Connection, code_set: str) -> str | None:
    """The periods CODE_SET's release answers for, kept side by side; None for one period."""
    query = _COVERAGE.get(code_set)
    return conn.execute(query).fetchone()[0] if query else None


def statuses(conn: sqlite3.Connection, releases: list[Release], today: date) -> list[ReleaseStatus]:
    """Every loaded release judged for TODAY, with what each multi-period one covers."""
    return [
        ReleaseStatus(s.release, s.current, s.warning, coverage(conn, s.release.code_set))
        for s in (release_status(release, today) for release in releases)
    ]


def release_status(release: Release, today: date) -> ReleaseStatus:
    cadence = CADENCE.get(release.code_set)
    if cadence is None:
        return ReleaseStatus(release, True, None)
    start = period_start(cadence, today)
    if release.effective is None:
        return ReleaseStatus(
            release, False, f"effective date unknown; check that it is the current {cadence}'s file"
        )
    if date.fromisoformat(release.effective) < start:
        label = {
            FISCAL_YEAR: f"FY{start.year + 1}",
            CALENDAR_YEAR: f"calendar year {start.year}",
            QUARTER: f"the NCCI quarter {start.year}Q{(start.month + 2) // 3}",
        }[cadence]
        command = f"consultant codes import {import_kind(release.code_set)} FILE"
        return ReleaseStatus(
            release,
            False,
            f"older than {label} (began {start.isoformat()}); "
            f"import the current file with `{command}`",
        )
    return ReleaseStatus(release, True, None)
