"""CPT from the customer's own licensed file: `code<TAB>descriptor` per line.

CPT descriptors are the AMA's copyright, so the service never ships them: a customer
who licenses CPT imports their file into their own code database, and answers then
quote its descriptors. The file may start with a header row (found by its column
names) and carry more columns; only the code and the descriptor are read.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from consultant.codes.importing import ImportFormatError, Loaded, Progress, decode_text
from consultant.codes.systems import CPT, CPT_SHAPE, compact

CODE_SET = "cpt"

log = logging.getLogger(__name__)


def _columns(header: list[str]) -> tuple[int, int]:
    """(code, descriptor) column indexes named by a header row; the first two by default."""
    keys = [re.sub(r"[^a-z]", "", cell.lower()) for cell in header]
    code = next((i for i, k in enumerate(keys) if "code" in k and "desc" not in k), 0)
    descriptor = next(
        (i for i, k in enumerate(keys) if i != code and ("desc" in k or "title" in k)),
        1 if code == 0 else 0,
    )
    return code, descriptor


def release_of(path: Path) -> tuple[str, str | None]:
    """The CPT year in the file name (`cpt_2026.txt`: '2026', from January 1); else the
    year the file was last written, a guess, so no effective date is claimed."""
    if match := re.search(r"(?<!\d)(20\d\d)(?!\d)", path.name):
        return match.group(1), f"{match.group(1)}-01-01"
    return str(datetime.fromtimestamp(path.stat().st_mtime, UTC).year), None


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    reader = csv.reader(io.StringIO(decode_text(path.read_bytes()), newline=""), delimiter="\t")
    codes: list[tuple] = []
    terms: list[tuple] = []
    seen: set[str] = set()
    rejected: list[int] = []
    columns: tuple[int, int] = (0, 1)
    first = True
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if first:
            first = False
            if not any(CPT_SHAPE.fullmatch(compact(cell)) for cell in cells):
                columns = _columns(cells)  # a header row: no cell holds a code
                continue
        code_at, descriptor_at = columns
        code = compact(cells[code_at]) if code_at < len(cells) else ""
        descriptor = cells[descriptor_at].strip() if descriptor_at < len(cells) else ""
        if not CPT_SHAPE.fullmatch(code) or not descriptor or code in seen:
            rejected.append(reader.line_num)
            continue
        seen.add(code)
        codes.append((CPT, code, descriptor, 1, None, "code", CODE_SET))
        terms.append((CPT, code, descriptor, "title", CODE_SET))
    if not codes:
        raise ImportFormatError(
            f"{path.name} has no `code<TAB>descriptor` rows with a CPT code (5 digits, or "
            "4 digits and F, T or U); give the licensed CPT file as tab-delimited text"
        )
    if rejected:
        # Line numbers only: the rows may hold licensed descriptor text.
        log.warning(
            "%s: skipped %d rows without a CPT code, a descriptor, or repeating a code "
            "(lines %s%s)",
            path.name,
            len(rejected),
            ", ".join(map(str, rejected[:10])),
            ", ..." if len(rejected) > 10 else "",
        )
    conn.executemany(
        "INSERT INTO codes (system, code, title, billable, parent, kind, code_set)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        codes,
    )
    conn.executemany(
        "INSERT INTO search_terms (system, code, text, source, code_set) VALUES (?, ?, ?, ?, ?)",
        terms,
    )
    progress(len(codes))
    version, effective = release_of(path)
    return Loaded(version=version, effective=effective, row_count=len(codes))
