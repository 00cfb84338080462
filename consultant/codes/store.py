"""Read side of the code database: what a code is, its status, notes and neighbours.

Everything that answers "what is this code?" goes through `CodeStore`, so the CLI,
the analysis and (later) the review app agree on statuses and inherited notes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from consultant.codes import db
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    CPT_SHAPE,
    DELETED,
    HCPCS,
    HCPCS_SHAPE,
    ICD10CM,
    ICD10CM_SHAPE,
    ICD10PCS,
    ICD10PCS_SHAPE,
    INVALID,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    UNVERIFIED,
    compact,
    cpt_section,
    normalize,
)

# Release whose rows a system's codes come from, for citing sources.
SYSTEM_RELEASE = {ICD10CM: "icd10cm", ICD10PCS: "icd10pcs", HCPCS: "hcpcs", CPT: "cpt"}


@dataclass(frozen=True)
class Note:
    kind: str
    text: str
    code: str  # the code (or block/chapter) the note is written at


@dataclass(frozen=True)
class Neighbour:
    code: str
    title: str
    billable: bool


@dataclass(frozen=True)
class CodeInfo:
    """One code as the database knows it; `status` is one of systems.STATUSES."""

    code: str
    system: str
    status: str
    title: str | None
    parent: Neighbour | None = None
    children: list[Neighbour] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    seventh_characters: dict[str, str] = field(default_factory=dict)
    section: str | None = None  # CPT section by range
    deleted_on: str | None = None
    source: str | None = None  # "ICD-10-CM FY2026 (April 1, 2026 update)"

    def to_dict(self) -> dict:
        return asdict(self)


class CodeStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> CodeStore:
        return cls(db.connect(path))

    # -- releases -------------------------------------------------------------------

    @cached_property
    def releases(self) -> dict[str, db.Release]:
        return {r.code_set: r for r in db.list_releases(self.conn)}

    def source(self, code_set: str) -> str | None:
        """How a fact from CODE_SET is cited: system and release name."""
        release = self.releases.get(code_set)
        if release is None:
            return None
        label = {
            "icd10cm": "ICD-10-CM",
            "icd10cm-addenda": "ICD-10-CM addenda",
            "icd10pcs": "ICD-10-PCS",
            "icd10pcs-addenda": "ICD-10-PCS addenda",
            "hcpcs": "HCPCS Level II",
            "cpt": "CPT (licensed file)",
        }.get(code_set, code_set)
        return f"{label} {release.version}"

    def has(self, code_set: str) -> bool:
        return code_set in self.releases

    # -- rows -----------------------------------------------------------------------

    def row(self, system: str, code: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM codes WHERE system = ? AND code = ?", (system, code)
        ).fetchone()

    def children(self, system: str, code: str) -> list[Neighbour]:
        rows = self.conn.execute(
            "SELECT code, title, billable FROM codes WHERE system = ? AND parent = ? ORDER BY code",
            (system, code),
        )
        return [Neighbour(r["code"], r["title"], bool(r["billable"])) for r in rows]

    def billable_descendants(self, system: str, code: str, limit: int = 50) -> list[Neighbour]:
        """Complete codes under CODE, nearest first: what to name when CODE is a header."""
        found: list[Neighbour] = []
        frontier = [code]
        while frontier and len(found) < limit:
            nxt: list[str] = []
            for parent in frontier:
                for child in self.children(system, parent):
                    if child.billable:
                        found.append(child)
                    else:
                        nxt.append(child.code)
            frontier = nxt
        return found[:limit]

    def ancestors(self, system: str, code: str) -> list[sqlite3.Row]:
        """CODE's row and every row above it, nearest first."""
        chain: list[sqlite3.Row] = []
        current: str | None = code
        while current is not None and len(chain) < 12:
            row = self.row(system, current)
            if row is None:
                break
            chain.append(row)
            current = row["parent"]
        return chain

    def notes(self, system: str, code: str) -> list[Note]:
        """CODE's own notes, then those it inherits from its category, block and chapter."""
        notes: list[Note] = []
        for row in self.ancestors(system, code):
            for note in self.conn.execute(
                "SELECT kind, text FROM notes WHERE system = ? AND code = ? ORDER BY seq",
                (system, row["code"]),
            ):
                notes.append(Note(note["kind"], note["text"], row["code"]))
        return notes

    def seventh_characters(self, code: str) -> dict[str, str]:
        """The 7th characters an ICD-10-CM code takes, from the nearest level defining them."""
        for row in self.ancestors(ICD10CM, code):
            chars = self.conn.execute(
                "SELECT char, title FROM seventh_chars WHERE code = ? ORDER BY char",
                (row["code"],),
            ).fetchall()
            if chars:
                return {c["char"]: c["title"] for c in chars}
        return {}

    def deleted(self, system: str, code: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM deleted_codes WHERE system = ? AND code = ?", (system, code)
        ).fetchone()

    # -- lookup ---------------------------------------------------------------------

    def systems_for(self, text: str) -> list[str]:
        """Systems whose code shape TEXT fits, most likely first."""
        raw = compact(text)
        shapes: list[str] = []
        if ICD10CM_SHAPE.match(raw):
            shapes.append(ICD10CM)
        if HCPCS_SHAPE.match(raw) and "." not in text:
            shapes.append(HCPCS)
        if ICD10PCS_SHAPE.match(raw) and "." not in text:
            shapes.append(ICD10PCS)
        if CPT_SHAPE.match(raw):
            shapes.append(CPT)
        return shapes

    def lookup(self, text: str, system: str | None = None) -> CodeInfo:
        """What TEXT is: the first system that knows it, else the likeliest system's verdict."""
        return self.candidates(text, system)[0]

    def candidates(self, text: str, system: str | None = None) -> list[CodeInfo]:
        """Every reading of TEXT, known codes first (`J1100` is both ICD-10-CM J11.00 and a
        HCPCS code; the caller's context decides), then the likeliest system's verdict."""
        systems = [system] if system else self.systems_for(text)
        if not systems:
            return [CodeInfo(code=text.strip().upper(), system=ICD10CM, status=INVALID, title=None)]
        infos = [self.lookup_in(s, text) for s in systems]
        known = [i for i in infos if i.status not in (INVALID, UNVERIFIED)]
        return known or infos

    def lookup_in(self, system: str, text: str) -> CodeInfo:
        code = normalize(system, text)
        if system == CPT and not self.has("cpt"):
            section = cpt_section(code)
            return CodeInfo(
                code=code,
                system=CPT,
                status=UNVERIFIED if section else INVALID,
                title=None,
                section=section,
            )
        row = self.row(system, code)
        if row is None:
            gone = self.deleted(system, code)
            if gone is not None:
                return CodeInfo(
                    code=code,
                    system=system,
                    status=DELETED,
                    title=gone["title"],
                    deleted_on=gone["deleted_on"],
                    source=self.source(gone["code_set"]) or gone["code_set"],
                )
            return CodeInfo(
                code=code,
                system=system,
                status=INVALID,
                title=None,
                section=cpt_section(code) if system == CPT else None,
                source=self.source(SYSTEM_RELEASE[system]),
            )
        children = self.children(system, code)
        sevenths = self.seventh_characters(code) if system == ICD10CM else {}
        if row["billable"]:
            status = BILLABLE
        elif row["terminated"]:
            status = DELETED
        elif sevenths and children and all(len(compact(c.code)) == 7 for c in children):
            status = NEEDS_SEVENTH
        else:
            status = NOT_BILLABLE
        parent = self.row(system, row["parent"]) if row["parent"] else None
        return CodeInfo(
            code=code,
            system=system,
            status=status,
            title=row["title"],
            parent=Neighbour(parent["code"], parent["title"], bool(parent["billable"]))
            if parent
            else None,
            children=children,
            notes=self.notes(system, code),
            seventh_characters=sevenths,
            section=cpt_section(code) if system == CPT else None,
            deleted_on=row["terminated"],
            source=self.source(row["code_set"]),
        )
