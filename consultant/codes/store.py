"""Read side of the code database: what a code is, its status, notes and neighbours.

Everything that answers "what is this code?" goes through `CodeStore`, so the CLI,
the analysis and (later) the review app agree on statuses and inherited notes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

from consultant.codes import db, gems, hcc, msdrg, validity
from consultant.codes.gems import icd9_shape
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    CPT_SHAPE,
    DELETED,
    HCPCS,
    HCPCS_SHAPE,
    ICD9CM,
    ICD10CM,
    ICD10CM_LETTERED,
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
SYSTEM_RELEASE = {
    ICD10CM: "icd10cm",
    ICD10PCS: "icd10pcs",
    HCPCS: "hcpcs",
    CPT: "cpt",
    ICD9CM: "gems",
}
# Releases whose version already says what they are ("MS-DRG v36–v43.1").
_SELF_NAMED = frozenset(("msdrg", "hcc", "gems", "drug-names"))
# ICD-9-CM was replaced by ICD-10-CM for services from this day on.
ICD9_RETIRED = "2015-10-01"


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
    on: str | None = None  # the date of service the status holds for (ISO)
    valid_from: str | None = None  # the dated release's run holding `on`, else the nearest
    valid_to: str | None = None
    date_note: str | None = None  # how the date of service changes the answer
    date_source: str | None = None
    cc_mcc: dict | None = None  # MS-DRG severity as a secondary diagnosis on `on`
    hcc: list[dict] = field(default_factory=list)  # risk-adjustment categories
    crosswalk: dict | None = None  # ICD-9-CM: the GEMs' ICD-10-CM targets

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
            "icd10pcs-tables": "ICD-10-PCS tables",
            "icd10pcs-definitions": "ICD-10-PCS definitions",
            "hcpcs": "HCPCS Level II",
            "cpt": "CPT (licensed file)",
            "ioce": "CMS",
        }.get(code_set, "" if code_set in _SELF_NAMED else code_set)
        return f"{label} {release.version}".strip()

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
        dot = text.find(".")
        shapes: list[str] = []
        if (ICD10CM_SHAPE.match(raw) and dot in (-1, 3)) or (
            ICD10CM_LETTERED.match(raw) and dot == 3
        ):
            shapes.append(ICD10CM)
        if HCPCS_SHAPE.match(raw) and dot == -1:
            shapes.append(HCPCS)
        if ICD10PCS_SHAPE.match(raw) and dot == -1:
            shapes.append(ICD10PCS)
        if CPT_SHAPE.match(raw) and dot == -1:
            shapes.append(CPT)
        if icd9_shape(text.strip()):
            shapes.append(ICD9CM)
        return shapes

    def lookup(self, text: str, system: str | None = None, on: date | None = None) -> CodeInfo:
        """What TEXT is: the first system that knows it, else the likeliest system's verdict."""
        return self.candidates(text, system, on)[0]

    def candidates(
        self, text: str, system: str | None = None, on: date | None = None
    ) -> list[CodeInfo]:
        """Every reading of TEXT, known codes first (`J1100` is both ICD-10-CM J11.00 and a
        HCPCS code; the caller's context decides), then the likeliest system's verdict."""
        systems = [system] if system else self.systems_for(text)
        if not systems:
            return [CodeInfo(code=text.strip().upper(), system=ICD10CM, status=INVALID, title=None)]
        infos = [self.lookup_in(s, text, on) for s in systems]
        known = [i for i in infos if i.status not in (INVALID, UNVERIFIED)]
        return known or infos

    @cached_property
    def dated_from(self) -> date | None:
        """The first day the quarterly validity tables cover (None: none loaded)."""
        return validity.coverage_start(self.conn)

    def lookup_in(self, system: str, text: str, on: date | None = None) -> CodeInfo:
        """What TEXT is in SYSTEM on the date of service ON (default today)."""
        day = on or date.today()
        if system == ICD9CM:
            return self._icd9(text)
        info = self._release_info(system, normalize(system, text))
        dating = validity.on_date(
            self.conn,
            system,
            info.code,
            info.status,
            day,
            self._dated_source(),
            self.dated_from,
        )
        extra: dict = {"on": day.isoformat()}
        if dating is not None:
            extra |= {
                "status": dating.status,
                "valid_from": dating.valid_from,
                "valid_to": dating.valid_to,
                "date_note": dating.note,
                "date_source": dating.source,
            }
            if info.status == INVALID and dating.status != INVALID:
                # known to the dated release only (G2211 after the 2019 HCPCS file)
                extra["title"] = dating.title
                extra["source"] = dating.source
            elif dating.status == INVALID and info.status != INVALID:
                extra["source"] = dating.source  # not yet a code on that date
            if dating.status == DELETED and dating.valid_to and info.deleted_on is None:
                extra["deleted_on"] = (
                    date.fromisoformat(dating.valid_to) + timedelta(days=1)
                ).isoformat()
        if system == ICD10CM:
            extra |= self._risk_facts(info.code, day)
        return replace(info, **extra)

    def _dated_source(self) -> str:
        release = self.releases.get(validity.DATED_SET)
        return (
            f"CMS {release.version} quarterly code tables" if release else "quarterly code tables"
        )

    def _risk_facts(self, code: str, day: date) -> dict:
        """CC/MCC and HCC facts of an ICD-10-CM code, where those sets are loaded."""
        facts: dict = {}
        if self.has("msdrg") and (level := msdrg.cc_mcc(self.conn, code, day)) is not None:
            facts["cc_mcc"] = level.to_dict()
        if self.has("hcc"):
            year = hcc.payment_year_for(day)
            facts["hcc"] = [h.to_dict() for h in hcc.hccs(self.conn, code, year)]
        return facts

    def _icd9(self, text: str) -> CodeInfo:
        """An ICD-9-CM code: retired since October 1, 2015, answered with its GEMs map."""
        code = icd9_shape(text.strip()) or text.strip()
        walk = gems.crosswalk(self.conn, code) if self.has("gems") else None
        if walk is None:
            return CodeInfo(
                code=code, system=ICD9CM, status=INVALID, title=None, source=self.source("gems")
            )
        crosswalk = walk.to_dict()
        summary = gems.describe(walk)
        for target in crosswalk["targets"]:
            # the GEMs predate FY2017: say which targets a claim can no longer carry
            target["status"] = self._release_info(ICD10CM, target["code"]).status
        stale = [t["code"] for t in crosswalk["targets"] if t["status"] != BILLABLE]
        if stale:
            source = self.source("icd10cm") or "the current ICD-10-CM"
            summary += (
                f" Not billable in {source}: {', '.join(dict.fromkeys(stale))}; use a "
                "complete code below or in place of each."
            )
        return CodeInfo(
            code=code,
            system=ICD9CM,
            status=DELETED,
            title=walk.title,
            deleted_on=ICD9_RETIRED,
            source=walk.source,
            crosswalk={**crosswalk, "summary": summary},
        )

    def _release_info(self, system: str, code: str) -> CodeInfo:
        """CODE as its own system's release describes it, before any date is applied."""
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
