"""HCPCS Level II from CMS's alpha-numeric contractor file (`HCPC<year>_..._ANWEB*.txt`).

The fixed-width ANWEB file is the only HCPCS release file that carries, besides the
public-domain long and short descriptions, each code's add, action and termination
dates and every Level II modifier; it is read by the record layout CMS publishes
beside it (`HCPCS<year>_recordlayout.txt`), not by line numbers, because its top
lines are a free-text disclaimer. CPT (Level I) codes and modifiers belong to the AMA
and are skipped if a file ever holds them.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import CPT_SHAPE, HCPCS

CODE_SET = "hcpcs"

# Record identification (col 11): first line / continuation of a code or a modifier.
CODE, CODE_MORE, MODIFIER, MODIFIER_MORE = "3", "4", "7", "8"
# 1-based inclusive field positions from the CMS record layout, as Python slices.
_CODE = slice(0, 5)
_MOD = slice(3, 5)
_SEQ = slice(5, 10)
_LONG = slice(11, 91)
_SHORT = slice(91, 119)
_ADDED = slice(268, 276)
_ACTION_EFFECTIVE = slice(276, 284)
_TERMINATED = slice(284, 292)
_ACTION = 292

_LEVEL2_CODE = re.compile(r"[A-Z][0-9]{4}")
_MODIFIER = re.compile(r"[0-9A-Z]{2}")
_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
_BATCH = 5000


def _iso(field: str) -> str | None:
    """A YYYYMMDD field as an ISO date; None when blank."""
    field = field.strip()
    if not field:
        return None
    if not re.fullmatch(r"\d{8}", field):
        raise ValueError(field)
    return f"{field[:4]}-{field[4:6]}-{field[6:]}"


def _day_after(iso: str) -> str:
    """A termination date is the last billable day; `deleted_on` is the first day a code
    is gone, as for the ICD-10 addenda (deleted on the fiscal year's first day)."""
    return (date.fromisoformat(iso) + timedelta(days=1)).isoformat()


def release_of(path: Path, latest_action: str | None) -> tuple[str, str | None]:
    """'2019' from `HCPC2019_...`, '2025 April' from `HCPC2025_APR_...`; else the year of
    the file's latest action date, since CMS names each release by the year it starts."""
    match = re.search(r"(?<!\d)(20\d\d)(?:_?(JAN|APR|JUL|OCT))?", path.name, re.I)
    if match:
        year = match.group(1)
        month = _MONTHS.get((match.group(2) or "JAN").upper(), 1)
        name = year if month == 1 else f"{year} {date(2000, month, 1):%B}"
        return name, f"{year}-{month:02d}-01"
    if latest_action:
        return latest_action[:4], f"{latest_action[:4]}-01-01"
    return "unknown", None


class _Reader:
    """Joins each code's or modifier's description lines and writes the finished record."""

    def __init__(self, conn: sqlite3.Connection, path: Path, progress: Progress) -> None:
        self.conn = conn
        self.path = path
        self.progress = progress
        self.today = date.today().isoformat()
        self.current: dict | None = None
        self.codes: list[tuple] = []
        self.terms: list[tuple] = []
        self.deleted: list[tuple] = []
        self.modifiers: list[tuple] = []
        self.modifier_rows: list[tuple[str, str, str | None]] = []
        self.count = 0
        self.latest_action: str | None = None

    def line(self, number: int, line: str) -> None:
        recid = line[10:11]
        if recid in (CODE, MODIFIER):
            self.finish()
            key = line[_MOD] if recid == MODIFIER else line[_CODE]
            try:
                added, action_date = _iso(line[_ADDED]), _iso(line[_ACTION_EFFECTIVE])
                terminated = _iso(line[_TERMINATED])
            except ValueError as exc:
                raise ImportFormatError(
                    f"{self.path.name} line {number}: date field {exc} is not YYYYMMDD; "
                    "is this the HCPCS alpha-numeric (ANWEB) file?"
                ) from None
            if action_date and (self.latest_action is None or action_date > self.latest_action):
                self.latest_action = action_date
            self.current = {
                "recid": recid,
                "key": key,
                "long": [line[_LONG].strip()],
                "short": line[_SHORT].strip() or None,
                "added": added,
                "terminated": terminated,
                "action": line[_ACTION : _ACTION + 1].strip() or None,
            }
        else:
            expected = CODE if recid == CODE_MORE else MODIFIER
            key = line[_MOD] if recid == MODIFIER_MORE else line[_CODE]
            if self.current is None or (self.current["recid"], self.current["key"]) != (
                expected,
                key,
            ):
                raise ImportFormatError(
                    f"{self.path.name} line {number}: a description continuation for "
                    f"{key.strip()!r} does not follow that record's first line"
                )
            self.current["long"].append(line[_LONG].strip())

    def finish(self) -> None:
        record, self.current = self.current, None
        if record is None:
            return
        title = " ".join(part for part in record["long"] if part)
        terminated = record["terminated"]
        if record["recid"] == MODIFIER:
            self.modifier_rows.append((record["key"], title, terminated))
            return
        code = record["key"]
        if CPT_SHAPE.fullmatch(code):
            return  # a Level I (CPT) code: AMA content, never stored from this file
        ended = terminated is not None and terminated < self.today
        self.codes.append(
            (
                HCPCS,
                code,
                title,
                record["short"],
                0 if ended else 1,
                None,
                "code",
                record["added"],
                terminated,
                record["action"],
                CODE_SET,
            )
        )
        self.terms.append((HCPCS, code, title, "title", CODE_SET))
        if ended:
            self.deleted.append((HCPCS, code, title, _day_after(terminated), CODE_SET))
        self.count += 1
        if len(self.codes) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(
            "INSERT INTO codes (system, code, title, short_title, billable, parent, kind,"
            " effective, terminated, action, code_set) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.codes,
        )
        self.conn.executemany(
            "INSERT INTO search_terms (system, code, text, source, code_set)"
            " VALUES (?, ?, ?, ?, ?)",
            self.terms,
        )
        self.conn.executemany("INSERT INTO deleted_codes VALUES (?, ?, ?, ?, ?)", self.deleted)
        self.codes.clear()
        self.terms.clear()
        self.deleted.clear()
        self.progress(self.count)

    def write_modifiers(self, source: str) -> None:
        """Level II modifiers with their official titles; a terminated one says so, since
        the table has no date column and a coder must not be told it is current."""
        rows = []
        for modifier, title, terminated in self.modifier_rows:
            if modifier.isdigit():
                continue  # a Level I (CPT) modifier: AMA content
            if terminated is not None and terminated < self.today:
                title = f"{title} (terminated {terminated})"
            rows.append((modifier, CODE_SET, title, source))
        self.conn.executemany(
            "INSERT INTO modifiers (modifier, code_set, title, source) VALUES (?, ?, ?, ?)", rows
        )
        self.count += len(rows)
        self.progress(self.count)


def _is_record(line: str) -> bool:
    """A code or modifier record, as opposed to the disclaimer lines at the top."""
    if len(line) < 12 or line[10] not in (CODE, CODE_MORE, MODIFIER, MODIFIER_MORE):
        return False
    if not line[_SEQ].isdigit():
        return False
    if line[10] in (MODIFIER, MODIFIER_MORE):
        return line[:3] == "   " and bool(_MODIFIER.fullmatch(line[_MOD]))
    return bool(_LEVEL2_CODE.fullmatch(line[_CODE]) or CPT_SHAPE.fullmatch(line[_CODE]))


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    reader = _Reader(conn, path, progress)
    records = 0
    # Latin-1, CRLF. Iterate the file rather than str.splitlines(): Latin-1 text can
    # hold U+0085, which splitlines() would take for a line break.
    with path.open(encoding="latin-1", newline="") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if _is_record(line):
                records += 1
                reader.line(number, line)
    if records == 0:
        raise ImportFormatError(
            f"{path.name} has no HCPCS records (code in columns 1-5, record id 3/4/7/8 in "
            "column 11); give the fixed-width HCPC<year>_..._ANWEB.txt file from CMS"
        )
    reader.finish()
    reader.flush()
    version, effective = release_of(path, reader.latest_action)
    reader.write_modifiers(f"HCPCS {version}")
    return Loaded(version=version, effective=effective, row_count=reader.count)
