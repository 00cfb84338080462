"""A body mass index value as coders write it ("BMI 32.5", "BMI of 41") to its Z68 code.

The Z68 titles are numeric ranges ("Body mass index [BMI] 32.0-32.9, adult") that word
matching cannot compare with a value, so the value is placed in the ranges the loaded
tabular itself gives. Pediatric BMI is coded by percentile, which a bare value does not
give: those questions are left to the search.
"""

from __future__ import annotations

import re
import sqlite3

from consultant.codes.systems import ICD10CM

_VALUE = re.compile(r"\bbmi\s*(?:of|=|:|is|was|at)?\s*(\d{1,2}(?:\.\d+)?)\b(?!\s*%)", re.I)
_PEDIATRIC = re.compile(r"percentile|pediatric|peds|child|kid|toddler|infant|\b1?\d\s*y/?o\b", re.I)
_RANGE = re.compile(r"(\d+(?:\.\d)?)-(\d+(?:\.\d)?), adult")
_AT_MOST = re.compile(r"(\d+(?:\.\d)?) or less, adult")
_AT_LEAST = re.compile(r"(\d+(?:\.\d)?) or greater, adult")


def bmi_code(conn: sqlite3.Connection, text: str) -> tuple[str, str] | None:
    """(code, title) of the adult Z68 code for the BMI value TEXT states, if it states one."""
    match = _VALUE.search(text)
    if match is None or _PEDIATRIC.search(text):
        return None
    value = float(match.group(1))
    rows = conn.execute(
        "SELECT code, title FROM codes WHERE system = ? AND code LIKE 'Z68.%' AND billable = 1",
        (ICD10CM,),
    ).fetchall()
    for code, title in rows:
        if (found := _RANGE.search(title)) and float(found[1]) <= value < float(found[2]) + 0.1:
            return code, title
        if (found := _AT_MOST.search(title)) and value < float(found[1]) + 0.1:
            return code, title
        if (found := _AT_LEAST.search(title)) and value >= float(found[1]):
            return code, title
    return None
