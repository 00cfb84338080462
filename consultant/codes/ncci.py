"""CMS NCCI edits for practitioners: PTP code pairs, MUE unit limits and add-on code edits.

These tables answer "can 29881 and 29877 go on one claim?", "how many units of J1100
per day?" and "what must +99292 be billed with?". CMS ships each as delimited text
behind a copyright preamble whose length and header wording change between quarters
(and PTP in several part files), so every reader finds its header row by column
names and accepts either one file or a .zip holding the parts:

- PTP (`ccipra-v<version>r<rev>-f<part>.txt`): tab-delimited; Column 1, Column 2,
  `*=in existence prior to 1996`, Effective Date and Deletion Date (YYYYMMDD, `*` for
  none), Modifier indicator (0 not allowed, 1 allowed, 9 not applicable), PTP Edit
  Rationale.
- MUE (`MCR_MUE_PractitionerServices_Eff_<MM-DD-YYYY>.csv`): CSV; HCPCS/CPT Code,
  Practitioner Services MUE Values, MUE Adjudication Indicator, MUE Rationale.
- Add-on codes (`AOC_V<year>Q<n>-MCR`, the spreadsheet saved as tab-delimited or CSV):
  Add-on Code, AOC Edit Type, Primary Code (`CCCCC`: the contractor defines the
  primaries), AOC/primary code deletion dates and the edit's effective and deletion
  dates, as YYYYDDD day-of-year dates. CMS's fixed-width AOC .txt is not read: its
  column positions are only in a PDF we could not verify against a real file.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import re
import sqlite3
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from consultant.codes.importing import ImportFormatError, Loaded, Progress, decode_text
from consultant.codes.systems import compact

CODE_SETS = ("ncci-ptp", "ncci-mue", "ncci-addon")
PTP, MUE, ADDON = CODE_SETS
IOCE = "ioce"  # the hospital outpatient edits inside CMS's I/OCE (consultant.codes.ioce)

# What each loaded table is called in an answer: a hospital outpatient edit is not the
# practitioner table, and a draft must never pass one off as the other.
PTP_TABLES = {PTP: "NCCI practitioner PTP edits", IOCE: "NCCI hospital outpatient PTP edits"}
ADDON_TABLES = {ADDON: "NCCI add-on code edits", IOCE: "I/OCE add-on code edits"}


def table_source(name: str, code_set: str, version: str) -> str:
    """How a fact from table NAME of CODE_SET's release VERSION is cited."""
    return f"{name} (CMS {version})" if code_set == IOCE else f"{name} {version}"


# The contractor-defined primary code placeholder in the add-on file (Type 2 add-ons).
CONTRACTOR_DEFINED = "CCCCC"

_CODE = re.compile(r"[0-9A-Za-z]{5}")
_HEADER_SEARCH_ROWS = 200
_BATCH = 50000


# --- reading the files ---------------------------------------------------------------


def _sources(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of PATH, or of each .txt/.csv member, one at a time, when PATH is a
    zip of parts (a quarter's PTP parts hold millions of rows between them)."""
    if not zipfile.is_zipfile(path):
        yield path.name, decode_text(path.read_bytes())
        return
    with zipfile.ZipFile(path) as archive:
        members = sorted(
            info.filename
            for info in archive.infolist()
            if not info.is_dir()
            and info.filename.lower().endswith((".txt", ".csv"))
            and not info.filename.startswith("__MACOSX/")
        )
        if not members:
            raise ImportFormatError(
                f"{path.name} holds no .txt or .csv file; give the zip CMS publishes "
                "or the unzipped text file"
            )
        for name in members:
            yield name, decode_text(archive.read(name))


def _key(cell: str) -> str:
    """A header cell reduced to letters and digits: 'HCPCS/\\nCPT Code' -> 'hcpcscptcode'."""
    return re.sub(r"[^0-9a-z]", "", cell.lower())


# A field's header test, on the reduced header cell.
Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class _Layout:
    what: str  # for messages: 'NCCI PTP edits'
    fields: dict[str, Matcher]  # in matching order; each takes the first free cell
    required: tuple[str, ...]
    code_fields: tuple[str, ...]  # a data row has a code in each of these


def _assign(cells: list[str], layout: _Layout) -> dict[str, int] | None:
    keys = [_key(cell) for cell in cells]
    taken: set[int] = set()
    columns: dict[str, int] = {}
    for field, matches in layout.fields.items():
        for index, key in enumerate(keys):
            if index not in taken and key and matches(key):
                columns[field] = index
                taken.add(index)
                break
    return columns if all(field in columns for field in layout.required) else None


def _table(name: str, text: str, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells by field) for each data row below the header row.

    The header is the first row, tab- or comma-delimited, whose cells name every
    required column; it is found before anything is yielded, so a wrong file fails
    early. Rows without a code where one belongs (preamble, the legend rows under a
    spreadsheet header, footers) are passed over.
    """
    for delimiter in ("\t", ","):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for cells in itertools.islice(reader, _HEADER_SEARCH_ROWS):
                if (columns := _assign(cells, layout)) is not None:
                    return _data_rows(name, reader, columns, layout)
        except csv.Error as exc:
            raise ImportFormatError(f"{name} is not readable as delimited text: {exc}") from None
    raise ImportFormatError(
        f"{name}: no header row naming the {layout.what} columns "
        f"({', '.join(layout.required)}); is this the right CMS file?"
    )


def _data_rows(
    name: str, reader: Any, columns: dict[str, int], layout: _Layout
) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells in `layout.fields` order, '' for an absent column) per row.

    READER is the csv reader positioned after the header row.
    """
    indexes = [columns.get(field) for field in layout.fields]
    code_at = [columns[field] for field in layout.code_fields]
    width = max(columns.values()) + 1
    try:
        for cells in reader:
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            for index in code_at:
                if not _CODE.fullmatch(cells[index].strip()):
                    break
            else:
                yield reader.line_num, [cells[i].strip() if i is not None else "" for i in indexes]
    except csv.Error as exc:
        raise ImportFormatError(
            f"{name} line {reader.line_num} is not readable as delimited text: {exc}"
        ) from None


@functools.lru_cache(maxsize=8192)
def _date(value: str) -> date | None:
    """A CMS date: YYYYMMDD, YYYYDDD (day of year, add-on file), YYYY-MM-DD or M/D/YYYY.

    Blank, `*` and the all-nines 'no end' markers are None. Cached: a PTP file's
    million rows share a few thousand dates.
    """
    value = value.strip()
    if value in ("", "*") or set(value) == {"9"}:
        return None
    if re.fullmatch(r"\d{8}", value):
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    if re.fullmatch(r"\d{7}", value):
        return date(int(value[:4]), 1, 1) + timedelta(days=int(value[4:]) - 1)
    if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        return date.fromisoformat(value)
    if match := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value):
        return date(int(match.group(3)), int(match.group(1)), int(match.group(2)))
    raise ValueError(value)


def _iso(value: str, name: str, line: int, column: str) -> str | None:
    try:
        day = _date(value)
    except ValueError:
        raise ImportFormatError(
            f"{name} line {line}: {column} {value!r} is not a date (YYYYMMDD or YYYYDDD)"
        ) from None
    return day.isoformat() if day else None


def release_of(names: Sequence[str]) -> tuple[str, str | None]:
    """Release name and start date from the file names, first name that tells.

    `..._Eff_10-01-2025.csv` -> 'October 1, 2025'; `AOC_V2025Q4...` -> '2025 Q4';
    `ccipra-v321r0-f1` -> NCCI version '32.1 revision 0', in force from April 2026
    (version N.q starts quarter q+1 of 1994+N: 31.3 is October 2025).
    """
    for name in names:
        if match := re.search(r"(\d{2})-(\d{2})-(\d{4})", name):
            month, day, year = (int(group) for group in match.groups())
            with contextlib.suppress(ValueError):
                start = date(year, month, day)
                return f"{start:%B} {start.day}, {year}", start.isoformat()
        if match := re.search(r"(20\d\d)[-_ ]?q([1-4])", name, re.I):
            year, quarter = match.group(1), int(match.group(2))
            return f"{year} Q{quarter}", f"{year}-{3 * quarter - 2:02d}-01"
        if match := re.search(r"v(\d\d)(\d)r(\d+)", name, re.I):
            major, minor, revision = (int(group) for group in match.groups())
            effective = f"{1994 + major}-{3 * minor + 1:02d}-01" if minor <= 3 else None
            return f"{major}.{minor} revision {revision}", effective
    return Path(names[0]).stem, None


def _load(
    conn: sqlite3.Connection,
    path: Path,
    progress: Progress,
    layout: _Layout,
    row_of: Callable[[str, int, list[str]], tuple],
    insert: str,
) -> Loaded:
    single = not zipfile.is_zipfile(path)
    names: list[str] = []
    batch: list[tuple] = []
    count = 0
    found = 0
    for name, text in _sources(path):
        names.append(name)
        try:
            rows = _table(name, text, layout)
        except ImportFormatError:
            if single:
                raise
            continue  # a zip may carry a readme beside the parts
        found += 1
        for line, row in rows:
            batch.append(row_of(name, line, row))
            if len(batch) >= _BATCH:
                conn.executemany(insert, batch)
                count += len(batch)
                batch.clear()
                progress(count)
    if not found:
        raise ImportFormatError(
            f"no file in {path.name} has the {layout.what} header ({', '.join(layout.required)})"
        )
    conn.executemany(insert, batch)
    count += len(batch)
    progress(count)
    version, effective = release_of([path.name, *names])
    return Loaded(version=version, effective=effective, row_count=count)


# --- PTP ----------------------------------------------------------------------------

_PTP = _Layout(
    what="NCCI PTP edits",
    fields={
        "column1": lambda k: k.startswith("column1"),
        "column2": lambda k: k.startswith("column2"),
        "prior_1996": lambda k: "1996" in k or "existence" in k,
        "effective": lambda k: "effective" in k,
        "deleted": lambda k: "deletion" in k or "deleted" in k,
        "modifier": lambda k: k.startswith("modifier"),
        "rationale": lambda k: "rationale" in k,
    },
    required=("column1", "column2", "effective", "deleted", "modifier"),
    code_fields=("column1", "column2"),
)


def _ptp_row(name: str, line: int, values: list[str]) -> tuple:
    column1, column2, prior_1996, effective, deleted, modifier, rationale = values
    indicator = modifier[:1]
    if indicator not in ("0", "1", "9"):
        raise ImportFormatError(
            f"{name} line {line}: modifier indicator {modifier!r} is not 0, 1 or 9"
        )
    start = _iso(effective, name, line, "effective date")
    if start is None:
        raise ImportFormatError(f"{name} line {line}: the edit has no effective date")
    return (
        column1.upper(),
        column2.upper(),
        int(prior_1996 == "*"),
        start,
        _iso(deleted, name, line, "deletion date"),
        indicator,
        rationale,
    )


def load_ptp(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Practitioner PTP edits, every row kept (deleted ones too: they date old claims)."""
    return _load(
        conn,
        path,
        progress,
        _PTP,
        _ptp_row,
        "INSERT INTO ptp_edits (column1, column2, prior_1996, effective, deleted,"
        " modifier_indicator, rationale) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )


# --- MUE ----------------------------------------------------------------------------

_MUE = _Layout(
    what="MUE",
    fields={
        "code": lambda k: "code" in k and ("hcpcs" in k or "cpt" in k),
        "value": lambda k: "muevalue" in k,
        "indicator": lambda k: "adjudication" in k or k == "mai",
        "rationale": lambda k: "rationale" in k,
    },
    required=("code", "value", "indicator"),
    code_fields=("code",),
)


def load_mue(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """One MUE table (practitioner services); a code listed twice means mixed tables."""
    seen: set[str] = set()

    def mue_row(name: str, line: int, values: list[str]) -> tuple:
        code, value, indicator, rationale = values
        code = code.upper()
        if code in seen:
            raise ImportFormatError(
                f"{name} line {line}: {code} is listed twice; import one MUE table "
                "(practitioner services), not several settings together"
            )
        seen.add(code)
        if not value.isdigit():
            raise ImportFormatError(
                f"{name} line {line}: MUE value {value!r} for {code} is not a number"
            )
        return (code, int(value), indicator, rationale)

    return _load(
        conn,
        path,
        progress,
        _MUE,
        mue_row,
        "INSERT INTO mue (code, value, indicator, rationale) VALUES (?, ?, ?, ?)",
    )


# --- add-on codes -------------------------------------------------------------------

_ADDON = _Layout(
    what="NCCI add-on code edits",
    fields={
        "addon": lambda k: k in ("aoc", "addon") or (k.startswith("addon") and k.endswith("code")),
        "type": lambda k: "type" in k,
        "primary": lambda k: k.startswith("primary") and "del" not in k and "eff" not in k,
        "primary_deleted": lambda k: k.startswith("primary") and "del" in k,
        "addon_deleted": lambda k: k.startswith("aocdel") or (k.startswith("addon") and "del" in k),
        "effective": lambda k: "eff" in k,
        "deleted": lambda k: "del" in k,
    },
    required=("addon", "type", "primary"),
    code_fields=("addon", "primary"),
)


def _addon_row(name: str, line: int, values: list[str]) -> tuple:
    """An edit ends at its own deletion date, or earlier when either code is deleted."""
    addon, addon_type, primary, primary_deleted, addon_deleted, effective, deleted = values
    if addon_type not in ("1", "2", "3"):
        raise ImportFormatError(
            f"{name} line {line}: add-on code type {addon_type!r} is not 1, 2 or 3"
        )
    ends = [
        _iso(deleted, name, line, "edit deletion date"),
        _iso(addon_deleted, name, line, "add-on code deletion date"),
        _iso(primary_deleted, name, line, "primary code deletion date"),
    ]
    return (
        addon.upper(),
        addon_type,
        primary.upper(),
        _iso(effective, name, line, "effective date"),
        min((end for end in ends if end), default=None),
    )


def load_addon(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    return _load(
        conn,
        path,
        progress,
        _ADDON,
        _addon_row,
        "INSERT INTO addon_edits (addon, addon_type, primary_code, effective, deleted)"
        " VALUES (?, ?, ?, ?, ?)",
    )


# --- queries ------------------------------------------------------------------------


@dataclass(frozen=True)
class PtpEdit:
    column1: str  # paid
    column2: str  # denied with column1 unless a modifier is allowed and applies
    prior_1996: bool
    effective: date
    deleted: date | None
    modifier_indicator: str  # '0' never, '1' allowed, '9' not applicable
    rationale: str
    code_set: str  # the table: PTP (practitioner) or IOCE (hospital outpatient)


@dataclass(frozen=True)
class Mue:
    code: str
    value: int
    indicator: str  # MUE Adjudication Indicator as CMS words it: '2 Date of Service Edit: Policy'
    rationale: str


@dataclass(frozen=True)
class AddonInfo:
    code: str
    addon_type: str  # '1' listed primaries only, '2' contractor decides, '3' listed + contractor
    primaries: tuple[str, ...]
    contractor_defined: bool  # the file lists CCCCC: the contractor defines primaries


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def ptp_edits_between(
    conn: sqlite3.Connection, codes: Sequence[str], on: date, code_set: str = PTP
) -> list[PtpEdit]:
    """Edits of CODE_SET's table in force on ON between any two of CODES.

    An edit applies from its effective date up to the day before its deletion date:
    an edit past its deletion date never fires, one effective later does not fire yet.
    """
    keys = sorted({compact(code) for code in codes})
    if len(keys) < 2:
        return []
    marks = ", ".join("?" * len(keys))
    day = on.isoformat()
    rows = conn.execute(
        f"SELECT * FROM ptp_edits WHERE column1 IN ({marks}) AND column2 IN ({marks})"
        " AND effective <= ? AND (deleted IS NULL OR ? < deleted) AND code_set = ?"
        " ORDER BY column1, column2, effective",
        (*keys, *keys, day, day, code_set),
    )
    return [_ptp_edit(row) for row in rows]


def ptp_edits_of(
    conn: sqlite3.Connection, code: str, limit: int, code_set: str = PTP
) -> list[PtpEdit]:
    """Every edit of CODE_SET's table naming CODE in either column, in force or not,
    column 1 first: a code's reference page, where `ptp_edits_between` answers for a claim."""
    key = compact(code)
    rows = conn.execute(
        "SELECT * FROM ptp_edits WHERE (column1 = ? OR column2 = ?) AND code_set = ?"
        " ORDER BY column1 != ?, column1, column2, effective LIMIT ?",
        (key, key, code_set, key, limit),
    )
    return [_ptp_edit(row) for row in rows]


def _ptp_edit(row: sqlite3.Row) -> PtpEdit:
    return PtpEdit(
        column1=row["column1"],
        column2=row["column2"],
        prior_1996=bool(row["prior_1996"]),
        effective=date.fromisoformat(row["effective"]),
        deleted=_day(row["deleted"]),
        modifier_indicator=row["modifier_indicator"],
        rationale=row["rationale"],
        code_set=row["code_set"],
    )


def addons_with(
    conn: sqlite3.Connection, primary: str, on: date, code_set: str = ADDON
) -> list[dict[str, str]]:
    """The add-on codes that list PRIMARY as a primary code on ON in CODE_SET's table."""
    day = on.isoformat()
    rows = conn.execute(
        "SELECT addon, min(addon_type) AS addon_type FROM addon_edits WHERE primary_code = ?"
        " AND (effective IS NULL OR effective <= ?) AND (deleted IS NULL OR ? < deleted)"
        " AND code_set = ? GROUP BY addon ORDER BY addon",
        (compact(primary), day, day, code_set),
    )
    return [{"code": row["addon"], "addon_type": row["addon_type"]} for row in rows]


def mue_for(conn: sqlite3.Connection, code: str) -> Mue | None:
    row = conn.execute("SELECT * FROM mue WHERE code = ?", (compact(code),)).fetchone()
    return Mue(**dict(row)) if row else None


def addon_primaries(
    conn: sqlite3.Connection, code: str, on: date, code_set: str | None = None
) -> AddonInfo | None:
    """CODE's add-on edits in force on ON, in CODE_SET's table or any; None when CODE is
    not an add-on code then.

    Should a code carry edits of more than one type, the lowest (strictest) is given.
    """
    day = on.isoformat()
    rows = conn.execute(
        "SELECT addon_type, primary_code FROM addon_edits WHERE addon = ?"
        " AND (effective IS NULL OR effective <= ?) AND (deleted IS NULL OR ? < deleted)"
        " AND coalesce(?, code_set) = code_set ORDER BY primary_code",
        (compact(code), day, day, code_set),
    ).fetchall()
    if not rows:
        return None
    primaries = dict.fromkeys(row["primary_code"] for row in rows)
    return AddonInfo(
        code=compact(code),
        addon_type=min(row["addon_type"] for row in rows),
        primaries=tuple(p for p in primaries if p != CONTRACTOR_DEFINED),
        contractor_defined=CONTRACTOR_DEFINED in primaries,
    )
