"""Codes a stated number decides: a body mass index ("BMI 32.5") to its Z68 code, and the
weeks of a pregnancy ("G2P1 at 32 weeks") to their Z3A code.

The Z68 and Z3A titles are numeric ranges and counts ("Body mass index [BMI] 32.0-32.9,
adult", "32 weeks gestation of pregnancy") that word matching cannot compare with a
value, so the value is placed in what the loaded tabular itself gives. Pediatric BMI is
coded by percentile, which a bare value does not give: those questions are left to the
search. Both kinds are coded beside a condition, never instead of it (Z68's and Z3A's
"use additional code" notes): what the phrase says besides the value is left in `rest`
for search to find the condition that leads.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from consultant.codes.systems import ICD10CM

_VALUE = re.compile(r"\bbmi\s*(?:of|=|:|is|was|at)?\s*(\d{1,2}(?:\.\d+)?)\b(?!\s*%)", re.I)
_PEDIATRIC = re.compile(r"percentile|pediatric|peds|child|kid|toddler|infant|\b1?\d\s*y/?o\b", re.I)
_RANGE = re.compile(r"(\d+(?:\.\d)?)-(\d+(?:\.\d)?), adult")
_AT_MOST = re.compile(r"(\d+(?:\.\d)?) or less, adult")
_AT_LEAST = re.compile(r"(\d+(?:\.\d)?) or greater, adult")

# "32 weeks", "32 wks", "32w", "28w3d", "32+4/7 weeks"
_WEEKS = re.compile(
    r"\b(?:at\s+)?(\d{1,2})(?:\s*\+\s*\d\s*/\s*7)?\s*(?:w|wks?|weeks?)(?:\s*\d\s*d)?\b"
    r"(?:\s+gestation\b)?",
    re.I,
)
# Words that make the weeks a pregnancy's.
_PREGNANCY = re.compile(
    r"\b(?:pregnan\w*|gestation\w*|iup|g\d+\s*p\d+\w*|ega|ga|prenatal|antepartum|pre-?eclampsia"
    r"|eclampsia|hyperemesis|gestational|gdm|placenta\w*|fetal|fetus|ob)\b",
    re.I,
)
# A week something happened in, not the pregnancy's week now.
_EVENT = re.compile(
    r"\b(?:start\w*|switch\w*|stop\w*|began|chang\w*|diagnos\w*|dx'?d|since|until|from|after"
    r"|before|ago|when|born)\b[^,;.]*$",
    re.I,
)
# "6 weeks postpartum", "2 wks ago": time since, not the pregnancy's week
_SINCE = re.compile(r"\s*(?:postpartum|post[- ]partum|pp|post|ago|out|later|old|of age)\b", re.I)
# Words that say whose the value is, and nothing else.
_CONTEXT_ONLY = re.compile(
    r"\b(?:pregnan\w*|gestation|iup|g\d+\s*p\d+\w*|ega|ga|ob|adults?|pt|patient|she|he|is|at"
    r"|of|in|an?|the|with|currently|today|now|measured|calculated)\b",
    re.I,
)
_WORD = re.compile(r"[a-z]+", re.I)
_COUNT = re.compile(r"^(\d+) weeks gestation")
_FEWER = re.compile(r"^less than (\d+) weeks", re.I)
_MORE = re.compile(r"^greater than (\d+) weeks", re.I)


@dataclass(frozen=True)
class ValueCode:
    code: str
    title: str
    rest: str  # the phrase without the value, if it says more than whose the value is


def bmi_code(conn: sqlite3.Connection, text: str) -> ValueCode | None:
    """The adult Z68 code for the BMI value TEXT states, if it states one."""
    match = _VALUE.search(text)
    if match is None or _PEDIATRIC.search(text):
        return None
    value = float(match.group(1))
    rest = _rest(text, match)
    for code, title in _titles(conn, "Z68.%"):
        if (found := _RANGE.search(title)) and float(found[1]) <= value < float(found[2]) + 0.1:
            return ValueCode(code, title, rest)
        if (found := _AT_MOST.search(title)) and value < float(found[1]) + 0.1:
            return ValueCode(code, title, rest)
        if (found := _AT_LEAST.search(title)) and value >= float(found[1]):
            return ValueCode(code, title, rest)
    return None


def gestation_weeks(text: str) -> int | None:
    """The completed weeks of a pregnancy TEXT states ("IUP at 12 wks"), if it states them."""
    match = _gestation(text)
    return int(match[1]) if match else None


def _gestation(text: str) -> re.Match[str] | None:
    """Where TEXT gives the weeks of the pregnancy now: not when something happened in it
    ("switched to insulin at 8 wks")."""
    if not _PREGNANCY.search(text):
        return None
    for match in _WEEKS.finditer(text):
        before, after = text[max(0, match.start() - 25) : match.start()], text[match.end() :]
        if not _EVENT.search(before) and not _SINCE.match(after):
            return match
    return None


def gestation_code(conn: sqlite3.Connection, text: str) -> ValueCode | None:
    """The Z3A code for the weeks of a pregnancy TEXT states, if it states them."""
    match = _gestation(text)
    if match is None:
        return None
    weeks = int(match[1])
    rest = _rest(text, match)
    for code, title in _titles(conn, "Z3A.%"):
        count, fewer, more = _COUNT.match(title), _FEWER.match(title), _MORE.match(title)
        if (
            (count and int(count[1]) == weeks)
            or (fewer and weeks < int(fewer[1]))
            or (more and weeks > int(more[1]))
        ):
            return ValueCode(code, title, rest)
    return None


def _rest(text: str, match: re.Match[str]) -> str:
    """TEXT without the value, when it says more than the value and whose it is ("IUP,
    hyperemesis"); "" when it says no more ("pregnant, 32 weeks")."""
    rest = f"{text[: match.start()]} {text[match.end() :]}"
    more = [w for w in _WORD.findall(_CONTEXT_ONLY.sub(" ", rest)) if len(w) > 1]
    return " ".join(rest.split()) if more else ""


def _titles(conn: sqlite3.Connection, pattern: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT code, title FROM codes WHERE system = ? AND code LIKE ? AND billable = 1",
        (ICD10CM, pattern),
    ).fetchall()
