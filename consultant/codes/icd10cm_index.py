"""The ICD-10-CM Alphabetic Index and its tables, as search entries that lead to codes.

Coders find codes through the index, not the tabular titles: "Ulcer, pressure, stage 3,
sacral region" is how they think, so every index path that ends in a code becomes a
`search_terms` row with that path as its text. One XML file is one release: the main
index, the Table of Drugs, the Table of Neoplasms and the External Cause Index are four
code sets, so importing one table never deletes another's rows.

CDC's newest main index XML we hold is FY2017's. A third party's CSV flattening of the
FY2025 main index (`ICD10CM_2025_Index.csv`: one row per term, with its level) carries the
nine years of terms added since ("Diabetes, type 2, with osteomyelitis"); it is imported
as its own code set, `icd10cm-index-additions`, holding only the paths and codes the
loaded official index lacks, so the official rows stay the ones search reads first and
what the flattening lost (manifestation codes in brackets, "see category" pointers) comes
from the XML.

Codes are stored as the index gives them (normalized, a trailing "-" dropped): the index
may point at a header ("S32.0-") or at a code a later tabular changed, and search
completes or drops such codes at query time against the loaded tabular.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

from consultant.codes.db import CodeDatabaseError
from consultant.codes.icd10cm import release_of
from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.neoplasm_morphology import UNSPECIFIED_SITE, behavior_of
from consultant.codes.systems import ICD10CM, normalize_icd10cm

# `search_terms.source` of each kind of file -> its code set.
CODE_SETS = {
    "index": "icd10cm-index",
    "drug": "icd10cm-drug",
    "neoplasm": "icd10cm-neoplasm",
    "eindex": "icd10cm-eindex",
}
ADDITIONS = "icd10cm-index-additions"  # the flattened FY2025 index's terms the XML lacks
# The flattening's header, which is how a file is known to be one.
_FLAT_HEADER = ["RowID", "Letter", "Level", "Term", "See", "SeeAlso", "NonEssModif", "Code"]
# The first column heading names the table.
_TABLE_HEADINGS = {"substance": "drug", "neoplasm": "neoplasm"}

# Elements of an index term that hold a code: the code, the manifestation code printed in
# brackets after it, and "see subcategory"/"see category" pointers.
_CODE_ELEMENTS = ("code", "manif", "subcat", "seecat")
_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?-?$")
# "see categories T17 and T18", "see also subcategory M14.8-": cross references to codes.
_CODE_REFERENCE = re.compile(r"^(?:sub)?categor(?:y|ies)\b", re.I)
_CODE_IN_TEXT = re.compile(r"\b[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?\b")
# "see categories O03-O06", "categories F11-F19 with .x5x": ranges and patterns, not codes.
_CODE_PATTERN = re.compile(r"\bwith\b|[A-Z][0-9][0-9A-Z]-[A-Z][0-9]")
# Subterms that only connect their parent to their children ("with" > "chronic kidney
# disease"): a coder says "with chronic kidney disease", so they join with a space.
_CONNECTORS = frozenset(
    {
        "with",
        "due to",
        "in",
        "following",
        "injuring",
        "complicating",
        "striking",
        "associated with",
        "resulting in",
        "involving",
        "by",
        "causing",
        "from",
        "stated as",
        "on",
        "meaning",
    }
)
_PLURAL = re.compile(r"^\((?:e|s|es)\)")
# A "see" whose target lists more choices than this ("see Disease, by site") points the
# coder at a whole entry to browse, which no single row can stand for.
_MAX_CHOICES = 12
# References omit a title's "NEC"/"NOS": "see Neoplasm, skin, ear" names "skin NOS".
_UNSPECIFIED = re.compile(r" (?:nec|nos)$")
_BATCH = 20000


def detect(path: Path) -> str:
    """The code set of an index file, read from its root and headings (not its name).

    Raises ImportFormatError for anything that is not one of CDC's four index files.
    """
    if not path.is_file():
        raise CodeDatabaseError(f"{path} is not a file; give the path of a CDC index XML")
    root_tag = ""
    attrs: dict[str, str] = {}
    title = heading = None
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if not root_tag:
                root_tag, attrs = element.tag, dict(element.attrib)
                if root_tag != "ICD10CM.index":
                    break
            elif event == "start" and element.tag == "letter":
                break
            elif event == "end" and element.tag == "title" and title is None:
                title = _plain(element)
            elif event == "end" and element.tag == "head" and heading is None:
                heading = _plain(element)
    except ET.ParseError as exc:
        raise ImportFormatError(f"{path.name} is not well-formed XML: {exc}") from None
    return CODE_SETS[_kind(path, root_tag, attrs, title, heading)]


def _kind(
    path: Path, root_tag: str, attrs: dict[str, str], title: str | None, heading: str | None
) -> str:
    if root_tag != "ICD10CM.index":
        hint = " (that is the tabular: `import icd10cm`)" if root_tag == "ICD10CM.tabular" else ""
        raise ImportFormatError(
            f"{path.name} is not a CDC ICD-10-CM index XML: its root is <{root_tag}>{hint}; "
            "give icd10cm_index_*.xml, icd10cm_drug_*.xml, icd10cm_neoplasm_*.xml "
            "or icd10cm_eindex_*.xml"
        )
    if attrs.get("isAddenda") == "true":
        raise ImportFormatError(
            f"{path.name} is an index addenda file (changes only); import the full index XML"
        )
    if heading is not None:
        if kind := _TABLE_HEADINGS.get(heading.lower()):
            return kind
        raise ImportFormatError(
            f"{path.name} is an index table whose first column is '{heading}', neither the "
            "Table of Drugs ('Substance') nor the Table of Neoplasms ('Neoplasm')"
        )
    if title and "external cause" in title.lower():
        return "eindex"
    if title and "index" in title.lower():
        return "index"
    raise ImportFormatError(
        f"{path.name} has neither table headings nor an index title ('{title or ''}'); "
        "it is not one of CDC's ICD-10-CM index files"
    )


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Write one index file's rows under the code set `detect(path)` names.

    The caller imports the file as `detect(path)`'s code set (the CLI takes the code set
    from `detect`), since that is the code set whose old rows the transaction removed.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ImportFormatError(f"{path.name} is not well-formed XML: {exc}") from None
    heading = root.find("indexHeading/head[@col='1']")
    kind = _kind(
        path,
        root.tag,
        dict(root.attrib),
        _plain(root.find("title")) or None,
        _plain(heading) if heading is not None else None,
    )
    index = _Index(root, kind)
    writer = _Writer(conn, kind, progress)
    for letter in root.iter("letter"):
        for main in letter.findall("mainTerm"):
            index.walk(main, writer)
    writer.flush()
    version, effective = release_of(path, _plain(root.find("version")) or "unknown")
    return Loaded(version=version, effective=effective, row_count=writer.count)


def load_additions(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """The flattened index's rows whose path and code the official index lacks; all of
    them when no official index is loaded. Import it after the official index (`import-dir`
    does): the official rows it is compared with are the ones loaded at that moment."""
    root = _flat_tree(path)
    writer = _Writer(conn, "index", progress, code_set=ADDITIONS)
    official = conn.execute(
        "SELECT code, text FROM search_terms WHERE code_set = ?", (CODE_SETS["index"],)
    )
    writer.seen.update((code, text) for code, text in official)
    index = _Index(root, "index")
    for main in root.iter("mainTerm"):
        index.walk(main, writer)
    writer.flush()
    year = re.search(r"(\d{4})", path.name)
    version, effective = release_of(path, year[1] if year else "unknown")
    return Loaded(version=f"{version} (flattened)", effective=effective, row_count=writer.count)


def _flat_tree(path: Path) -> ET.Element:
    """The flattened CSV as the index XML's tree: each row a term under the last row one
    level up, with its nonessential modifiers, code and "see" as the XML holds them. Not
    its "see also": the entries it points at lost their bracketed manifestation codes in
    the flattening, so following one reads "Dementia, with Lewy bodies, with behavioral
    disturbance" as F02.80, the code without it."""
    root = ET.Element("ICD10CM.index")
    letters: dict[str, ET.Element] = {}
    open_terms: list[ET.Element] = []  # the last term of each level above the row
    with path.open(encoding="utf-8", newline="") as file:
        rows = csv.DictReader(file)
        if rows.fieldnames != _FLAT_HEADER:
            header = ",".join((rows.fieldnames or [])[:8]) or "empty"
            raise ImportFormatError(
                f"{path.name} is not a flattened ICD-10-CM index CSV: its header is "
                f"{header}, not {','.join(_FLAT_HEADER)}"
            )
        for row in rows:
            level = int(row["Level"] or 0)
            if level > len(open_terms):
                raise ImportFormatError(
                    f"{path.name}: row {row['RowID']} is at level {level} under no term of "
                    f"level {level - 1}; the file is not a whole flattened index"
                )
            if level == 0:
                letter = letters.get(row["Letter"])
                if letter is None:
                    letter = letters[row["Letter"]] = ET.SubElement(root, "letter")
                term = ET.SubElement(letter, "mainTerm")
            else:
                term = ET.SubElement(open_terms[level - 1], "term", level=str(level))
            title = ET.SubElement(term, "title")
            title.text = row["Term"]
            if row["NonEssModif"]:
                ET.SubElement(title, "nemod").text = row["NonEssModif"]
            for tag, column in (("code", "Code"), ("see", "See")):
                if row[column]:
                    ET.SubElement(term, tag).text = row[column]
            del open_terms[level:]
            open_terms.append(term)
    return root


class _Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        source: str,
        progress: Progress,
        code_set: str | None = None,
    ) -> None:
        self.conn = conn
        self.source = source
        self.code_set = code_set or CODE_SETS[source]
        self.progress = progress
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.count = 0

    def add(self, code: str, text: str) -> None:
        if (code, text) in self.seen:
            return
        self.seen.add((code, text))
        self.rows.append((ICD10CM, code, text, self.source, self.code_set))
        self.count += 1
        if len(self.rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(
            "INSERT INTO search_terms (system, code, text, source, code_set)"
            " VALUES (?, ?, ?, ?, ?)",
            self.rows,
        )
        self.rows.clear()
        self.progress(self.count)


# An entry is what a term leads to: (table column label or None, normalized code).
_Entry = tuple[str | None, str]


class _Index:
    """One parsed index file: renders term paths and follows its "see" references."""

    def __init__(self, root: ET.Element, kind: str) -> None:
        self.kind = kind
        self.columns = {
            head.get("col", ""): _column_label(_plain(head)) for head in root.iter("head")
        }
        self.mains = _by_name(root.iter("mainTerm"))
        self._children: dict[int, dict[str, list[ET.Element]]] = {}

    def walk(self, main: ET.Element, writer: _Writer) -> None:
        """Rows for MAIN and every subterm; subterms carry the main term's short title."""
        self.rows(main, [_title(main)], writer)
        prefix = [_short_title(main)]

        def descend(term: ET.Element, path: list[str]) -> None:
            for child in term.findall("term"):
                child_path = [*path, _title(child)]
                self.rows(child, child_path, writer)
                descend(child, child_path)

        descend(main, prefix)

    def rows(self, term: ET.Element, path: list[str], writer: _Writer) -> None:
        """TERM's own codes, then the codes its "see" and "see also" lead to.

        A followed reference stays in the text ("Abdominalgia (see Pain, abdominal)"), so
        whoever reads a suggestion sees that the code came through a cross reference.
        """
        text = _join(path)
        for label, code in self.entries(term):
            writer.add(code, self.render(text, label))
        for tag, phrase in (("see", "see"), ("seeAlso", "see also")):
            reference = _plain(term.find(tag))
            if not reference:
                continue
            if len(path) == 1 and (behavior := behavior_of(reference)):
                # "Adenocarcinoma - see also Neoplasm, malignant, by site": a site no row
                # can list; the histology's behavior is kept for search to read the site
                # with (neoplasm_morphology.py), leading to the unspecified site's code.
                writer.add(UNSPECIFIED_SITE[behavior][0], f"{text} ({phrase} {reference})")
                continue
            if _CODE_REFERENCE.match(reference):
                if not _CODE_PATTERN.search(reference):
                    for code in _CODE_IN_TEXT.findall(reference):
                        writer.add(normalize_icd10cm(code), text)
                continue
            for target in self.resolve(reference):
                choices = list(_frontier(target, []))
                if len(choices) > _MAX_CHOICES:
                    continue
                for relative, node in choices:
                    shown = _join([reference, *relative]) if relative else reference
                    for label, code in self.entries(node):
                        writer.add(code, self.render(f"{text} ({phrase} {shown})", label))

    def entries(self, term: ET.Element) -> list[_Entry]:
        if self.kind in ("drug", "neoplasm"):
            cells = (
                (self.columns.get(cell.get("col", "")), _plain(cell))
                for cell in term.findall("cell")
            )
            return [
                (label, normalize_icd10cm(value))
                for label, value in cells
                if label and _CODE.match(value)
            ]
        values = (_plain(term.find(tag)) for tag in _CODE_ELEMENTS)
        return [(None, normalize_icd10cm(value)) for value in values if _CODE.match(value)]

    def render(self, text: str, label: str | None) -> str:
        if label is None:
            return text
        return f"{text}, {label}" if self.kind == "neoplasm" else f"{text} {label}"

    def resolve(self, reference: str) -> list[ET.Element]:
        """The terms a "see" names: "Pain, abdominal" -> main term Pain, subterm abdominal.

        Titles contain commas too ("Abdomen, abdominal"; "due to, caused by"), so each
        step tries the longest run of the reference's parts first. A trailing "by site"
        means "then find the site", which the subterms of what precedes it list.
        """
        parts = [name for part in reference.split(",") if (name := _name(part))]
        while parts and parts[-1].startswith("by "):
            parts.pop()
        for taken in range(len(parts), 0, -1):
            mains = self.mains.get(", ".join(parts[:taken]))
            if mains and (found := self._descend(mains, parts[taken:])):
                return found
        return []

    def _descend(self, terms: list[ET.Element], parts: list[str]) -> list[ET.Element]:
        if not parts:
            return terms
        for taken in range(len(parts), 0, -1):
            name = ", ".join(parts[:taken])
            matches = [child for term in terms for child in self._named(term).get(name, ())]
            if matches and (found := self._descend(matches, parts[taken:])):
                return found
        return []

    def _named(self, term: ET.Element) -> dict[str, list[ET.Element]]:
        key = id(term)
        if key not in self._children:
            self._children[key] = _by_name(term.findall("term"))
        return self._children[key]


def _frontier(term: ET.Element, relative: list[str]) -> Iterator[tuple[list[str], ET.Element]]:
    """The nearest terms at or below TERM that carry codes, with their path from TERM.

    A "see" leads to the target's own code; a target without one ("Malrotation") lists
    its choices below ("cecum", "kidney"), and those are what the reference offers.
    """
    if any(term.find(tag) is not None for tag in (*_CODE_ELEMENTS, "cell")):
        yield relative, term
        return
    for child in term.findall("term"):
        yield from _frontier(child, [*relative, _title(child)])


def _plain(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _title(term: ET.Element, *, modifiers: bool = True) -> str:
    """The printed title: "Abasia (-astasia) (hysterical)"; a plural "(s)" stays on its word."""
    title = term.find("title")
    if title is None:
        return ""
    text = title.text or ""
    for child in title:
        modifier = " ".join((child.text or "").split()) if modifiers else ""
        text += modifier if _PLURAL.match(modifier) else f" {modifier}"
        text += f" {child.tail or ''}"
    return re.sub(r"\s+,", ",", " ".join(text.split()))


def _short_title(main: ET.Element) -> str:
    """The main term as the head of its subterms' paths: "Ulcer, pressure, stage 3".

    Its inflected alternatives ("Ulcer, ulcerated, ulcerating, ulceration, ulcerative")
    and its modifiers ("Hypertension (accelerated) (benign) (essential) ...") would repeat
    on hundreds of rows, burying the subterm words a search ranks by; the main term's own
    rows keep them.
    """
    first, *alternatives = _title(main, modifiers=False).split(", ")
    if " " not in first:
        stem = first.lower()[: max(4, len(first) - 4)]
        alternatives = [
            alt for alt in alternatives if " " in alt or not alt.lower().startswith(stem)
        ]
    return ", ".join([first, *alternatives])


def _by_name(terms: Iterable[ET.Element]) -> dict[str, list[ET.Element]]:
    """Terms by what a "see" may call them: the whole title without modifiers, else one of
    its comma-separated parts ("Ulcer, duodenum" names "duodenum, duodenal (peptic)") or
    the words before its first modifier.

    A whole title wins over a part: "Malposition, congenital" means the subterm
    "congenital", not "gallbladder, congenital".
    """
    whole: dict[str, list[ET.Element]] = {}
    parts: dict[str, list[ET.Element]] = {}
    for term in terms:
        title = term.find("title")
        if title is None:
            continue
        name = _name(" ".join([title.text or "", *(child.tail or "" for child in title)]))
        for key in {name, _UNSPECIFIED.sub("", name)}:
            whole.setdefault(key, []).append(term)
        head = _name(title.text or "")  # "Misadventure" of "Misadventure (s) ... during care"
        for part in {head, *(part.strip() for part in name.split(","))} - {name}:
            for key in {part, _UNSPECIFIED.sub("", part)}:
                parts.setdefault(key, []).append(term)
    return parts | whole


def _name(text: str) -> str:
    """How titles and references compare: no parenthesized modifiers, case or spacing."""
    return re.sub(r"\s+,", ",", " ".join(re.sub(r"\([^)]*\)", " ", text).split())).lower()


def _join(path: list[str]) -> str:
    path = _acuity_settled(path)
    text = path[0]
    for previous, part in pairwise(path):
        text += f" {part}" if previous.lower() in _CONNECTORS else f", {part}"
    return text


def _acuity_settled(path: list[str]) -> list[str]:
    """PATH without a term's nonessential "(acute)" where a subterm below it says how acute
    the condition is: "Failure, heart (acute), diastolic, chronic" is no acute failure."""
    settled = list(path)
    for i, part in enumerate(path[1:], start=1):
        if _ACUITY.search(re.sub(r"\([^)]*\)", " ", part)):
            settled[:i] = [_OPTIONAL_ACUITY.sub("", earlier) for earlier in settled[:i]]
    return settled


_ACUITY = re.compile(r"\b(?:acute|chronic|subacute)\b", re.I)
_OPTIONAL_ACUITY = re.compile(r"\s*\((?:acute|chronic|subacute)\)", re.I)


def _column_label(heading: str) -> str:
    """ "Poisoning, Accidental (unintentional)" -> "poisoning accidental (unintentional)"."""
    label = heading.replace(",", "").lower()
    return re.sub(r"\bca\b", "carcinoma", label)
