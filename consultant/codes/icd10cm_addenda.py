"""Deleted codes from CMS's order addenda (`icd10cm_order_addenda_<year>.txt`, and the
ICD-10-PCS `order_addenda_<year>.txt`), so a customer quoting a code retired this
fiscal year hears "deleted on 2025-10-01" rather than "invalid".

The tabular and order files only list the codes that exist; the addenda is the CMS
file that names what a release removed. Its lines read `Delete:  <flag> <code> <short
title> <long title>` (the PCS file has no flag column); Add and Revise lines are read
only to recognise a code that was deleted as a billable code and added back as a
header, which is not a deletion a coder needs to hear about.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from consultant.codes.icd10cm import release_of
from consultant.codes.icd10pcs import fiscal_year
from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import ICD10CM, ICD10PCS, normalize

CODE_SET = "icd10cm-addenda"
PCS_CODE_SET = "icd10pcs-addenda"

# Action, an optional valid flag (ICD-10-CM only), then the code in a 7-character field,
# a 60-character short title and the long title.
_LINE = re.compile(r"(Add|Delete|Revise from|Revise to):\s+(?:([01]) )?([0-9A-Z]{3,7})\s")


def _is_header(conn: sqlite3.Connection, system: str, code: str) -> bool:
    """The loaded code set has CODE as a non-billable header. A code that is still
    billable there is taken from an older release, so the deletion stands."""
    row = conn.execute(
        "SELECT billable FROM codes WHERE system = ? AND code = ?", (system, code)
    ).fetchone()
    return row is not None and not row[0]


def _load(conn: sqlite3.Connection, path: Path, progress: Progress, code_set: str) -> Loaded:
    expected = ICD10CM if code_set == CODE_SET else ICD10PCS
    added: set[str] = set()
    deletions: list[tuple[str, str]] = []
    systems: set[str] = set()
    with path.open(encoding="latin-1", newline="") as fh:
        for raw in fh:
            line = raw.rstrip("\r\n")
            match = _LINE.match(line)
            if match is None:
                continue  # the summary counts at the end of the file
            action, flag, code = match.groups()
            systems.add(ICD10CM if flag is not None else ICD10PCS)  # PCS lines have no flag
            if action == "Add":
                added.add(code)
            elif action == "Delete":
                # short title: 60 characters after the 7-character code field; long after it
                rest = line[match.start(3) + 8 :]
                title = rest[61:].strip() or rest[:60].strip()
                deletions.append((code, title))
    if not systems:
        raise ImportFormatError(
            f"{path.name} has no `Add:`/`Delete:` lines; give CMS's order addenda file "
            "(icd10cm_order_addenda_<year>.txt or the ICD-10-PCS order_addenda_<year>.txt)"
        )
    if systems != {expected}:
        other = PCS_CODE_SET if expected == ICD10CM else CODE_SET
        raise ImportFormatError(
            f"{path.name} is not an {expected} addenda file; import it as `{other}`"
        )
    version, effective = release_of(path, fiscal_year(path))
    rows = []
    for code, title in deletions:
        normalized = normalize(expected, code)
        if code in added or _is_header(conn, expected, normalized):
            continue  # deleted as a code but kept as a header: not retired
        rows.append((expected, normalized, title, effective or version, code_set))
    # OR IGNORE: a deletion another code set already recorded stays that code set's row.
    conn.executemany("INSERT OR IGNORE INTO deleted_codes VALUES (?, ?, ?, ?, ?)", rows)
    progress(len(rows))
    return Loaded(version=version, effective=effective, row_count=len(rows))


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    return _load(conn, path, progress, CODE_SET)


def load_pcs(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    return _load(conn, path, progress, PCS_CODE_SET)
