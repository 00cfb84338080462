"""ICD-10-CM from CDC's tabular XML: every code, header, instructional note and 7th character.

Codes that need a 7th character are stored as headers, and every complete code is
materialized beneath them (placeholder X filled), so a lookup of `S32.000A` finds a
real row whose notes are inherited up the tree.
"""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from datetime import date
from importlib.util import find_spec
from pathlib import Path

from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import ICD10CM, compact, normalize_icd10cm

CODE_SET = "icd10cm"

# XML element -> note kind in the `notes` table.
NOTE_ELEMENTS = {
    "inclusionTerm": "inclusion",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional_code",
    "codeAlso": "code_also",
    "notes": "note",
    "sevenChrNote": "note",
}
# Note kinds that describe what a code covers, and so help a search find it.
SEARCHABLE_NOTES = {"inclusion": "inclusion", "includes": "includes"}

_MONTHS = [date(2000, month, 1).strftime("%B").lower() for month in range(1, 13)]


def bundled_tabular() -> Path:
    """The April 2026 tabular that ships inside the simple-icd-10-cm package.

    Found without importing the package, which parses the whole XML on import.
    """
    spec = find_spec("simple_icd_10_cm")
    locations = spec.submodule_search_locations if spec else None
    for location in locations or ():
        for entry in sorted((Path(location) / "data").glob("icd10c-tabular*.xml")):
            return entry
    raise FileNotFoundError(
        "the simple-icd-10-cm package is not installed with its tabular XML; "
        "`pip install simple-icd-10-cm`, or load a CDC file: `consultant codes import icd10cm FILE`"
    )


def release_of(path: Path, version: str) -> tuple[str, str | None]:
    """Name and effective date: an April update if the file name says so, else the FY start."""
    match = re.search(r"(" + "|".join(_MONTHS) + r")-(\d{1,2})-(\d{4})", path.name, re.I)
    if match:
        month = _MONTHS.index(match.group(1).lower()) + 1
        day, year = int(match.group(2)), int(match.group(3))
        label = f"{match.group(1).capitalize()} {day}, {year}"
        return f"FY{version} ({label} update)", f"{year:04d}-{month:02d}-{day:02d}"
    if version.isdigit():
        return f"FY{version}", f"{int(version) - 1}-10-01"
    return version, None


class _Writer:
    def __init__(self, conn: sqlite3.Connection, progress: Progress) -> None:
        self.conn = conn
        self.progress = progress
        self.codes: list[tuple] = []
        self.notes: list[tuple] = []
        self.terms: list[tuple] = []
        self.sevenths: list[tuple] = []
        self.count = 0

    def code(self, code: str, title: str, billable: bool, parent: str | None, kind: str) -> None:
        self.codes.append((ICD10CM, code, title, None, int(billable), parent, kind, CODE_SET))
        self.count += 1
        if len(self.codes) >= 20000:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(
            "INSERT INTO codes (system, code, title, short_title, billable, parent, kind, code_set)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self.codes,
        )
        self.conn.executemany(
            "INSERT INTO notes (system, code, kind, seq, text, code_set) VALUES (?, ?, ?, ?, ?, ?)",
            self.notes,
        )
        self.conn.executemany(
            "INSERT INTO search_terms (system, code, text, source, code_set)"
            " VALUES (?, ?, ?, ?, ?)",
            self.terms,
        )
        self.conn.executemany("INSERT INTO seventh_chars VALUES (?, ?, ?)", self.sevenths)
        self.codes.clear()
        self.notes.clear()
        self.terms.clear()
        self.sevenths.clear()
        self.progress(self.count)

    def notes_of(self, element: ET.Element, code: str) -> None:
        seq = 0
        for child in element:
            kind = NOTE_ELEMENTS.get(child.tag)
            if kind is None:
                continue
            for note in child.iter("note"):
                text = _text(note)
                if not text:
                    continue
                seq += 1
                self.notes.append((ICD10CM, code, kind, seq, text, CODE_SET))
                if source := SEARCHABLE_NOTES.get(kind):
                    self.terms.append((ICD10CM, code, text, source, CODE_SET))


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _seventh(element: ET.Element) -> list[tuple[str, str]]:
    definition = element.find("sevenChrDef")
    if definition is None:
        return []
    return [(ext.get("char", ""), _text(ext)) for ext in definition.findall("extension")]


# "7th characters D and S do not apply to codes in category S06 with 6th character 7 - ...,
# or 8 - ...": the tabular states 7th-character exceptions in prose, so read them from it.
_EXCEPTION = re.compile(
    r"7th characters? ((?:[A-Z](?:, | and | or )?)+) do(?:es)? not apply to codes in "
    r"category (\w+) with 6th characters? (\d)(?:[^,]*, or (\d))?"
)


def _seventh_exceptions(element: ET.Element) -> dict[str, set[str]]:
    """6th character -> 7th characters that do not apply below ELEMENT."""
    excluded: dict[str, set[str]] = {}
    for note in element.iter("note"):
        if match := _EXCEPTION.search(_text(note)):
            chars = set(re.findall(r"[A-Z]", match.group(1)))
            for sixth in filter(None, (match.group(3), match.group(4))):
                excluded.setdefault(sixth, set()).update(chars)
    return excluded


def _complete_codes(
    code: str, title: str, sevenths: list[tuple[str, str]], excluded: dict[str, set[str]]
):
    """`S32.000` + A -> `S32.000A`; `S00.01` + A -> `S00.01XA` (placeholder X to six)."""
    base = compact(code).ljust(6, "X")
    for char, meaning in sevenths:
        if char not in excluded.get(base[5], ()):
            yield normalize_icd10cm(base + char), f"{title}, {meaning}"


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ImportFormatError(f"{path.name} is not well-formed XML: {exc}") from None
    if root.tag != "ICD10CM.tabular":
        raise ImportFormatError(
            f"{path.name} is not CDC's ICD-10-CM tabular XML (root <{root.tag}>); "
            "use `import icd10cm-index` for index files"
        )
    version = _text(root.find("version")) or "unknown"
    writer = _Writer(conn, progress)

    def walk(
        diag: ET.Element,
        parent: str,
        inherited: list[tuple[str, str]],
        excluded: dict[str, set[str]],
    ) -> None:
        code = normalize_icd10cm(_text(diag.find("name")))
        title = _text(diag.find("desc"))
        own = _seventh(diag)
        if own:
            writer.sevenths.extend((code, char, meaning) for char, meaning in own)
            excluded = _seventh_exceptions(diag)
        sevenths = own or inherited
        children = diag.findall("diag")
        kind = "category" if len(compact(code)) == 3 else "subcategory" if children else "code"
        needs_seventh = not children and bool(sevenths) and len(compact(code)) < 7
        writer.code(code, title, not children and not needs_seventh, parent, kind)
        writer.notes_of(diag, code)
        writer.terms.append((ICD10CM, code, title, "title", CODE_SET))
        if needs_seventh:
            for full, full_title in _complete_codes(code, title, sevenths, excluded):
                writer.code(full, full_title, True, code, "code")
        for child in children:
            walk(child, code, sevenths, excluded)

    for chapter in root.iter("chapter"):
        chapter_code = f"Chapter {_text(chapter.find('name'))}"
        writer.code(chapter_code, _text(chapter.find("desc")), False, None, "chapter")
        writer.notes_of(chapter, chapter_code)
        for section in chapter.findall("section"):
            # A block holding a single category has that category's id ("B20"): keep
            # blocks apart from codes by always writing them as a range.
            first, _, last = (section.get("id") or "").partition("-")
            block = f"{first}-{last or first}"
            writer.code(block, _text(section.find("desc")), False, chapter_code, "block")
            writer.notes_of(section, block)
            for diag in section.findall("diag"):
                walk(diag, block, [], {})
    writer.flush()
    name, effective = release_of(path, version)
    return Loaded(version=name, effective=effective, row_count=writer.count)
