"""Whether a code could be reported on a date of service: the one place that decides.

The descriptive releases (the ICD-10-CM tabular, the HCPCS file) say what a code is in
their own release; a claim is judged by the code set in force on its date of service.
The I/OCE dates every ICD-10-CM, HCPCS and CPT code by quarter (`code_validity`, one
row per unbroken run of quarters), so a code's status on any date it covers comes from
there: Z91.011 was billable on 2025-06-15 and is a heading since 2025-10-01; E11.A did
not exist before 2025-10-01; G2211 has been a HCPCS code since 2021-01-01. Every lookup,
finding and page asks `on_date` rather than comparing dates itself.

For ICD-10-CM a run means "billable then"; a code outside its runs may still exist as a
heading, which the tabular says.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from consultant.codes.systems import (
    BILLABLE,
    CPT,
    DELETED,
    HCPCS,
    ICD10CM,
    INVALID,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    UNVERIFIED,
    compact,
)

DATED_SET = "ioce"
DATED_SYSTEMS = (ICD10CM, HCPCS, CPT)
_REPLACEMENTS = 12  # codes named as what replaced an ended one


@dataclass(frozen=True)
class Run:
    valid_from: date
    valid_to: date | None  # last valid day; None: still valid in the newest quarter loaded
    title: str | None

    def holds(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


@dataclass(frozen=True)
class Dating:
    """What the dated release says of one code on one date."""

    status: str  # the code's status on the date, given its status in its own release
    valid_from: str | None  # ISO: the run that holds the date, else the nearest one
    valid_to: str | None
    title: str | None  # the dated release's descriptor (never for CPT)
    note: str | None  # set when the date changes the answer: the date_of_service finding
    source: str


def runs(conn: sqlite3.Connection, system: str, code: str) -> list[Run]:
    rows = conn.execute(
        "SELECT valid_from, valid_to, title FROM code_validity"
        " WHERE system = ? AND code = ? ORDER BY valid_from",
        (system, code),
    )
    return [
        Run(
            date.fromisoformat(row[0]),
            date.fromisoformat(row[1]) if row[1] else None,
            row[2],
        )
        for row in rows
    ]


def coverage_start(conn: sqlite3.Connection) -> date | None:
    """The first day the dated release covers; None when none is loaded."""
    row = conn.execute(
        "SELECT min(valid_from) FROM code_validity WHERE code_set = ?", (DATED_SET,)
    ).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def on_date(
    conn: sqlite3.Connection,
    system: str,
    code: str,
    status: str,
    on: date,
    source: str,
    covered_from: date | None,
) -> Dating | None:
    """CODE's status on ON, given STATUS in its own release; None when no dated release
    covers SYSTEM on ON (before the oldest quarter loaded, or nothing loaded)."""
    if system not in DATED_SYSTEMS or covered_from is None or on < covered_from:
        return None
    found = runs(conn, system, code)
    title = next((run.title for run in reversed(found) if run.title), None)
    holding = next((run for run in found if run.holds(on)), None)
    if holding is not None:
        now = status if status in (BILLABLE, UNVERIFIED) else BILLABLE
        note = None
        if status in (NOT_BILLABLE, NEEDS_SEVENTH, DELETED):  # its release reads otherwise
            note = (
                f"{code} was a valid, billable code on {on.isoformat()} "
                f"({_span(holding)}); {_today(status, holding)}"
            )
        return Dating(now, *_dates(holding), title, note, source)
    if not found:
        if system == CPT and status == UNVERIFIED:
            return Dating(INVALID, None, None, None, None, source)
        return None
    before = [run for run in found if run.valid_to is not None and run.valid_to < on]
    if not before:
        first = found[0]
        note = (
            f"{code} was added on {first.valid_from.isoformat()}: it was not a valid code on "
            f"{on.isoformat()}.{_then(conn, system, code, on)}"
        )
        return Dating(INVALID, *_dates(first), title, note, source)
    last = before[-1]
    assert last.valid_to is not None
    if status == DELETED:  # its release says so already
        return Dating(DELETED, *_dates(last), title, None, source)
    gone = last.valid_to + timedelta(days=1)
    kept = status in (NOT_BILLABLE, NEEDS_SEVENTH)
    what = (
        "billable" if system == ICD10CM else "valid"
    ) + f" until {last.valid_to.isoformat()} ({_span(last)})"
    note = (
        f"{code} was {what}, so not on {on.isoformat()}"
        + (f"; since {gone.isoformat()} it is a heading." if kept else f"; it ended on {gone}.")
        + _replaced_by(conn, system, code, on)
    )
    return Dating(status if kept else DELETED, *_dates(last), title, note, source)


def _dates(run: Run) -> tuple[str, str | None]:
    return run.valid_from.isoformat(), run.valid_to.isoformat() if run.valid_to else None


def _span(run: Run) -> str:
    end = run.valid_to.isoformat() if run.valid_to else "the newest quarter loaded"
    return f"valid {run.valid_from.isoformat()} to {end}"


def _today(status: str, run: Run) -> str:
    ended = f"from {run.valid_to + timedelta(days=1)}" if run.valid_to else "in today's release"
    return {
        NOT_BILLABLE: f"{ended} it is a heading that needs a more specific code.",
        NEEDS_SEVENTH: f"{ended} it needs a 7th character.",
    }.get(status, f"{ended} it is deleted.")


def _then(conn: sqlite3.Connection, system: str, code: str, on: date) -> str:
    """What was reported instead on ON: the nearest shorter code valid then (N18.3
    before N18.31 existed)."""
    raw = compact(code)
    for length in range(len(raw) - 1, 2, -1):
        shorter = f"{raw[:3]}.{raw[3:length]}" if system == ICD10CM and length > 3 else raw[:length]
        if any(run.holds(on) for run in runs(conn, system, shorter)):
            return f" On that date {shorter} was the billable code."
    return ""


def _replaced_by(conn: sqlite3.Connection, system: str, code: str, on: date) -> str:
    """The longer codes valid on ON that took CODE's place (Z91.011 -> Z91.0110 ...)."""
    day = on.isoformat()
    rows = conn.execute(
        "SELECT DISTINCT code FROM code_validity WHERE system = ? AND code > ? AND code < ?"
        " AND valid_from <= ? AND (valid_to IS NULL OR ? <= valid_to) ORDER BY code LIMIT ?",
        (system, code, code + "\uffff", day, day, _REPLACEMENTS + 1),
    ).fetchall()
    codes = [row[0] for row in rows]
    if not codes:
        return ""
    more = ", and more" if len(codes) > _REPLACEMENTS else ""
    return f" On {day} the valid codes below it are {', '.join(codes[:_REPLACEMENTS])}{more}."
