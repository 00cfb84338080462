"""ICD-10-PCS tables and definitions XML (`icd10pcs_tables_<year>.xml`,
`icd10pcs_definitions_<year>.xml`): the axes a code is built from.

The order file lists every valid code, but a coder builds a code axis by axis: root
operation, body part, approach, device, qualifier. The tables say which values each row
of a table allows (with their labels); the definitions say what a root operation means,
which anatomical terms a body-part value includes and which brand names a device value
covers. `consultant.codes.pcs_build` reads both to turn "lap chole" into 0FT44ZZ.
"""

from __future__ import annotations

import json
import sqlite3
from math import prod
from pathlib import Path
from xml.etree import ElementTree

from consultant.codes.icd10cm import release_of
from consultant.codes.icd10pcs import fiscal_year
from consultant.codes.importing import ImportFormatError, Loaded, Progress

TABLES_CODE_SET = "icd10pcs-tables"
DEFINITIONS_CODE_SET = "icd10pcs-definitions"


def _text(element: ElementTree.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return " ".join(element.text.split()) or None


def _root(path: Path, tag: str, kind: str) -> ElementTree.Element:
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ImportFormatError(f"{path.name} is not well-formed XML ({error})") from error
    if root.tag != tag:
        raise ImportFormatError(
            f"{path.name} has root <{root.tag}>, not <{tag}>; give CMS's icd10pcs_{kind}_<year>.xml"
        )
    return root


def _release(path: Path, root: ElementTree.Element) -> tuple[str, str | None]:
    """The release the XML's own <version> names, else the year in the file name."""
    version = _text(root.find("version"))
    return release_of(path, version if version and version.isdigit() else fiscal_year(path))


def _labels(axis: ElementTree.Element) -> list[tuple[str, str]]:
    return [(label.get("code") or "", _text(label) or "") for label in axis.findall("label")]


def load_tables(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Every table's first three axes, and each row's values for characters 4-7."""
    root = _root(path, "ICD10PCS.tabular", "tables")
    tables: list[tuple] = []
    values: list[tuple] = []
    written = 0
    for number, table in enumerate(root.iter("pcsTable"), 1):
        head: dict[int, tuple[str, str]] = {}
        definition = None
        for axis in table.findall("axis"):
            labels = _labels(axis)
            if len(labels) != 1:
                raise ImportFormatError(
                    f"{path.name} table {number}: axis {axis.get('pos')} has {len(labels)} "
                    "values; a table's first three axes have one each"
                )
            head[int(axis.get("pos") or 0)] = labels[0]
            if axis.get("pos") == "3":
                definition = _text(axis.find("definition"))
        if set(head) != {1, 2, 3}:
            raise ImportFormatError(f"{path.name} table {number} lacks one of axes 1-3")
        tbl = "".join(head[pos][0] for pos in (1, 2, 3))
        tables.append((tbl, head[1][1], head[2][1], head[3][1], definition))
        for seq, row in enumerate(table.findall("pcsRow"), 1):
            counts = []
            for axis in row.findall("axis"):
                labels = _labels(axis)
                counts.append(len(labels))
                title = _text(axis.find("title")) or ""
                values.extend(
                    (tbl, seq, int(axis.get("pos") or 0), code, label, title)
                    for code, label in labels
                )
            if row.get("codes") and prod(counts) != int(row.get("codes") or 0):
                raise ImportFormatError(
                    f"{path.name} table {tbl} row {seq} says {row.get('codes')} codes but its "
                    f"axes give {prod(counts)}"
                )
        if len(values) >= 5000:
            written += _write_values(conn, values)
            progress(written)
    written += _write_values(conn, values)
    conn.executemany("INSERT INTO pcs_tables VALUES (?, ?, ?, ?, ?)", tables)
    progress(written)
    version, effective = _release(path, root)
    return Loaded(version=version, effective=effective, row_count=written)


def _write_values(conn: sqlite3.Connection, values: list[tuple]) -> int:
    """Write VALUES and empty the list; how many were written."""
    conn.executemany("INSERT INTO pcs_axis_values VALUES (?, ?, ?, ?, ?, ?)", values)
    count = len(values)
    values.clear()
    return count


def load_definitions(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Each section's axis terms: definition, explanation and "includes" entries; and
    the device aggregation table (a specific device coded as its general value).

    A body-part term that names several values ("Knee Joint, Left" and "..., Right")
    becomes one row per value, each with the shared includes.
    """
    root = _root(path, "ICD10PCS.definitions", "definitions")
    rows: list[tuple] = []
    for section in root.findall("section"):
        code = section.get("code") or ""
        for axis in section.findall("axis"):
            pos = int(axis.get("pos") or 0)
            axis_title = _text(axis.find("title")) or ""
            for terms in axis.findall("terms"):
                definition = _text(terms.find("definition"))
                explanation = _text(terms.find("explanation"))
                includes = json.dumps(
                    [text for text in map(_text, terms.findall("includes")) if text]
                )
                for title in terms.findall("title"):
                    term = _text(title)
                    if term:
                        rows.append(
                            (code, pos, axis_title, term, definition, explanation, includes)
                        )
    conn.executemany("INSERT INTO pcs_definitions VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    aggregates: list[tuple] = []
    for aggregate in root.iter("aggregate"):
        device, parent = _text(aggregate.find("device")), aggregate.find("parent")
        if device is None or parent is None:
            continue
        operation = _text(aggregate.find("operation")) or "All applicable"
        for body_system in filter(None, map(_text, aggregate.findall("bodySys"))):
            aggregates.append(
                (device, operation, body_system, parent.get("value") or "", _text(parent) or "")
            )
    conn.executemany("INSERT INTO pcs_device_aggregation VALUES (?, ?, ?, ?, ?)", aggregates)
    progress(len(rows) + len(aggregates))
    version, effective = _release(path, root)
    return Loaded(version=version, effective=effective, row_count=len(rows) + len(aggregates))
