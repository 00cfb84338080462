"""ICD-10-PCS from CMS's order file (`icd10pcs_order_<year>.txt`): every table and code.

The order file is the one PCS release file that lists every valid code with both
titles in a flat, fixed-width layout, so a lookup of `0SRC0J9` needs no table
expansion; its header rows are the 3-character tables, stored as non-billable parents.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from consultant.codes.icd10cm import release_of
from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import ICD10PCS, ICD10PCS_SHAPE

CODE_SET = "icd10pcs"

# cols 1-5 order number, 7-13 code, 15 valid flag, 17-76 short title, 78- long title.
_LINE = re.compile(r"(\d{5}) ([0-9A-Z]{3}[0-9A-Z ]{4}) ([01]) (.{60}) (.+)")
_TABLE = re.compile(r"[0-9B-DF-HX][0-9A-HJ-NP-Z]{2}")
_BATCH = 20000


def fiscal_year(path: Path) -> str:
    """`icd10pcs_order_2026.txt` -> '2026'; 'unknown' when the name carries no year."""
    match = re.search(r"(?<!\d)(20\d\d)(?!\d)", path.name)
    return match.group(1) if match else "unknown"


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    codes: list[tuple] = []
    terms: list[tuple] = []
    count = 0

    def flush() -> None:
        conn.executemany(
            "INSERT INTO codes (system, code, title, short_title, billable, parent, kind, code_set)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            codes,
        )
        conn.executemany(
            "INSERT INTO search_terms (system, code, text, source, code_set)"
            " VALUES (?, ?, ?, ?, ?)",
            terms,
        )
        codes.clear()
        terms.clear()
        progress(count)

    with path.open(encoding="ascii", errors="replace", newline="") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                raise ImportFormatError(
                    f"{path.name} line {number} does not fit the ICD-10-PCS order-file layout "
                    "(order number, 7-character code, valid flag, 60-character short title, "
                    "long title); give the CMS file icd10pcs_order_<year>.txt"
                )
            code, valid = match.group(2).rstrip(), match.group(3) == "1"
            if not (ICD10PCS_SHAPE if valid else _TABLE).fullmatch(code):
                raise ImportFormatError(
                    f"{path.name} line {number}: {code!r} is not an ICD-10-PCS "
                    f"{'code' if valid else 'table'}; is this the ICD-10-CM order file? "
                    "Import that one as `icd10cm` from CDC's tabular XML instead"
                )
            short, title = match.group(4).rstrip(), match.group(5).strip()
            if valid:
                codes.append((ICD10PCS, code, title, short, 1, code[:3], "code", CODE_SET))
            else:
                codes.append((ICD10PCS, code, title, short, 0, None, "table", CODE_SET))
            terms.append((ICD10PCS, code, title, "title", CODE_SET))
            count += 1
            if len(codes) >= _BATCH:
                flush()
    flush()
    version, effective = release_of(path, fiscal_year(path))
    return Loaded(version=version, effective=effective, row_count=count)
