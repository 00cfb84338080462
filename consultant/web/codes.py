"""Code lookup pages and their JSON API, in the spirit of a code reference site.

`/codes?q=` looks up the codes a query names and searches its words; `/codes/{code}`
shows what `consultant codes lookup` prints (status, source, notes with where each is
written, parent chain, children, 7th characters) plus the NCCI edits loaded for it.
`/api/codes/search` and `/api/codes/{code}` give the same facts as JSON for a token.

CPT descriptors are the AMA's copyright: whatever the code database holds, CPT codes
are shown by number, section and status only, here and in the JSON.

The code database is opened once per app. A CodeStore's connection and the search's
in-memory state are not made for concurrent use, and pages are served from a thread
pool, so every read goes through one lock (a lookup takes a few milliseconds).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from consultant.codes import msdrg
from consultant.codes.ncci import (
    ADDON,
    ADDON_TABLES,
    IOCE,
    MUE,
    PTP,
    PTP_TABLES,
    addon_primaries,
    addons_with,
    mue_for,
    ptp_edits_of,
    table_source,
)
from consultant.codes.opening import open_store
from consultant.codes.search import MIN_SCORE, CodeSearch
from consultant.codes.status import release_status
from consultant.codes.store import CodeInfo, CodeStore, Neighbour
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    DELETED,
    HCPCS,
    ICD9CM,
    ICD10CM,
    ICD10PCS,
    INVALID,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    SYSTEMS,
    UNVERIFIED,
    compact,
)
from consultant.drafting.findings import status_findings
from consultant.web.rendering import render
from consultant.web.security import ApiUser, PageViewer

router = APIRouter()
log = logging.getLogger(__name__)

# Short names for URLs: /codes/J1100?system=hcpcs.
SLUGS = {ICD10CM: "icd10cm", ICD10PCS: "icd10pcs", HCPCS: "hcpcs", CPT: "cpt", ICD9CM: "icd9cm"}
STATUS_LABELS = {
    BILLABLE: "billable",
    NOT_BILLABLE: "header",
    NEEDS_SEVENTH: "needs a 7th character",
    INVALID: "invalid",
    DELETED: "deleted",
    UNVERIFIED: "unverified",
}
# The badge colour (app.css `.badge.code-*`) each status is shown with.
BADGES = {NOT_BILLABLE: "header", NEEDS_SEVENTH: "header"}
NOTE_LABELS = {
    "inclusion": "Inclusion term",
    "includes": "Includes",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional_code": "Use additional code",
    "code_also": "Code also",
    "note": "Note",
}
MODIFIER_INDICATORS = {"0": "not allowed", "1": "allowed", "9": "not applicable"}
IMPORT_HINTS = {PTP: "ncci-ptp", MUE: "ncci-mue", ADDON: "ncci-addon"}
PAGE_HITS = 25
MAX_QUERY = 500
MAX_PTP = 500  # edits shown per code (a common code has thousands in a real quarter)
_TOKENS = re.compile(r"[\s,;]+")
_EDGE_PUNCTUATION = "()[]{}:.'\"!?"


@dataclass
class CodeReference:
    """The app's one open code database, its search, and the lock that serializes them."""

    store: CodeStore
    search: CodeSearch
    lock: threading.Lock


_OPENING = threading.Lock()


def code_reference(request: Request) -> CodeReference:
    """The app's code database, opened on first use (loading the bundled ICD-10-CM on a
    machine that has none yet) and kept on `app.state` for every later request."""
    state = request.app.state
    reference: CodeReference | None = getattr(state, "code_reference", None)
    if reference is None:
        with _OPENING:
            reference = getattr(state, "code_reference", None)
            if reference is None:
                store = open_store(state.config.codes.database, log.info)
                reference = CodeReference(store, CodeSearch(store), threading.Lock())
                state.code_reference = reference
    return reference


def system_named(value: str | None) -> str | None:
    """The system VALUE names ('hcpcs', 'ICD-10-CM', 'icd10pcs'); None for none."""
    if not value:
        return None
    key = compact(value).lower()
    for system in SYSTEMS:
        if compact(system).lower() == key:
            return system
    raise HTTPException(
        400, f"Unknown code system {value!r}; use one of {', '.join(SLUGS.values())}."
    )


# --- the facts about one code ----------------------------------------------------------


def _shown_title(system: str, title: str | None) -> str | None:
    """Never a CPT descriptor, even from a licensed file: CPT is shown by number only."""
    return None if system == CPT else title


def _neighbour(system: str, neighbour: Neighbour) -> dict[str, Any]:
    return {
        "code": neighbour.code,
        "system": system,
        "slug": SLUGS[system],
        "title": _shown_title(system, neighbour.title),
        "billable": neighbour.billable,
    }


def summary(info: CodeInfo) -> dict[str, Any]:
    """What a search page's lookup shows of a code: what it is, not its notes."""
    return {
        "code": info.code,
        "system": info.system,
        "slug": SLUGS[info.system],
        "status": info.status,
        "status_label": STATUS_LABELS[info.status],
        "badge": BADGES.get(info.status, info.status),
        "title": _shown_title(info.system, info.title),
        "section": info.section,
        "source": _source(info),
    }


def _source(info: CodeInfo) -> str | None:
    if info.system == CPT and info.status == UNVERIFIED:
        return "CPT section number ranges (no CPT file loaded)"
    return info.source


def _explanation(store: CodeStore, info: CodeInfo) -> str | None:
    """What the status means for a claim. Headers get a line (the page lists what is
    below them); a deleted or invalid code gets the analysis's own finding."""
    if info.system == CPT:
        if info.status == UNVERIFIED:
            return (
                f"No licensed CPT file is loaded: {info.code} falls in the CPT range for "
                f"{info.section}, but whether it is a current code is not verified."
            )
        if info.status != INVALID:
            return "CPT descriptors are the AMA's copyright; this app shows CPT numbers only."
    if info.status == NOT_BILLABLE:
        return f"{info.code} is a heading, not a billable code: a claim needs a code below it."
    if info.status == NEEDS_SEVENTH:
        placeholder = (
            " A code shorter than six characters takes the placeholder X before it."
            if len(compact(info.code)) < 6
            else ""
        )
        return f"{info.code} is not complete without a 7th character.{placeholder}"
    found = status_findings(store, info)
    return found[0].message if found else None


def readings(store: CodeStore, text: str, system: str | None) -> list[CodeInfo]:
    """Every known reading of TEXT, likeliest first; [] when TEXT is no code.

    Chapters ('Chapter 4'), blocks ('E08-E13') and ICD-10-PCS tables ('0SR') are rows
    too, but not code-shaped, so `CodeStore.candidates` does not find them: they are
    found by their stored name, as the parent links on these pages give it.
    """
    known = [i for i in store.candidates(text, system) if i.status != INVALID]
    if known:
        return known
    raw = text.strip()
    for each in [system] if system else SYSTEMS:
        if each == CPT:
            continue
        for name in dict.fromkeys((raw, raw.upper(), raw.capitalize())):
            row = store.row(each, name)
            if row is None:
                continue
            if row["kind"] not in ("chapter", "block"):
                return [store.lookup_in(each, name)]
            parent = store.row(each, row["parent"]) if row["parent"] else None
            return [
                CodeInfo(
                    code=row["code"],
                    system=each,
                    status=NOT_BILLABLE,
                    title=row["title"],
                    parent=Neighbour(parent["code"], parent["title"], bool(parent["billable"]))
                    if parent
                    else None,
                    children=store.children(each, name),
                    notes=store.notes(each, name),
                    source=store.source(row["code_set"]),
                )
            ]
    return []


def not_found(store: CodeStore, text: str, system: str | None) -> str:
    """Why TEXT is no code: the analysis's own words (with the nearest code above it)."""
    if not system and not store.systems_for(text):
        return (
            f"{text.strip()} does not have the shape of an ICD-10-CM, ICD-10-PCS, HCPCS "
            "or CPT code."
        )
    found = status_findings(store, store.candidates(text, system)[0])
    return found[0].message if found else f"{text.strip()} is not a known code."


def code_facts(store: CodeStore, info: CodeInfo, others: list[CodeInfo], today: date) -> dict:
    """Everything the code page and `/api/codes/{code}` tell about INFO."""
    chain = store.ancestors(info.system, info.code) if info.status != UNVERIFIED else []
    own = chain[0] if chain and chain[0]["code"] == info.code else None
    above = chain[1:] if own is not None else []
    return {
        **summary(info),
        "kind": own["kind"] if own is not None else None,
        "effective": own["effective"] if own is not None else None,
        "deleted_on": info.deleted_on,
        "explanation": _explanation(store, info),
        "ancestors": [
            {
                "code": row["code"],
                "system": info.system,
                "slug": SLUGS[info.system],
                "title": _shown_title(info.system, row["title"]),
                "billable": bool(row["billable"]),
            }
            for row in reversed(above)
        ],
        "parent": _neighbour(info.system, info.parent) if info.parent else None,
        "children": [_neighbour(info.system, child) for child in info.children],
        "notes": [
            {
                "kind": note.kind,
                "label": NOTE_LABELS.get(note.kind, note.kind),
                "text": note.text,
                "at": note.code,
                "inherited": note.code != info.code,
            }
            for note in (info.notes if info.system != CPT else [])
        ],
        "seventh_characters": dict(info.seventh_characters),
        "valid_from": info.valid_from,
        "valid_to": info.valid_to,
        "date_source": info.date_source,
        "date_note": info.date_note,
        "cc_mcc": info.cc_mcc,
        "cc_mcc_history": _severity_history(store, info),
        "hcc": info.hcc,
        "crosswalk": info.crosswalk,
        "ncci": ncci_facts(store, info.code, today) if info.system in (CPT, HCPCS) else None,
        "other_readings": [summary(other) for other in others],
    }


def _severity_history(store: CodeStore, info: CodeInfo) -> list[dict[str, str | None]]:
    """The code's MS-DRG level in each loaded version, for a page that shows when it changed."""
    if info.system != ICD10CM or not store.has(msdrg.CODE_SET):
        return []
    levels = msdrg.levels_by_version(store.conn, info.code)
    if not any(level for _, level in levels):
        return []
    return [{"version": version, "level": level} for version, level in levels]


# --- NCCI ------------------------------------------------------------------------------


def _ncci_source(store: CodeStore, code_set: str, what: str) -> str:
    return f"{what} {store.releases[code_set].version}"


def _ptp_facts(store: CodeStore, code: str, table: str, today: date) -> dict[str, Any]:
    edits = ptp_edits_of(store.conn, code, MAX_PTP + 1, table)
    return {
        "source": table_source(PTP_TABLES[table], table, store.releases[table].version),
        "more": len(edits) > MAX_PTP,
        "edits": [
            {
                "column1": edit.column1,
                "column2": edit.column2,
                "modifier_indicator": edit.modifier_indicator,
                "modifier": MODIFIER_INDICATORS.get(edit.modifier_indicator, "?"),
                "effective": edit.effective.isoformat(),
                "deleted": edit.deleted.isoformat() if edit.deleted else None,
                "prior_1996": edit.prior_1996,
                "rationale": edit.rationale,
                "in_force": edit.effective <= today
                and (edit.deleted is None or today < edit.deleted),
            }
            for edit in edits[:MAX_PTP]
        ],
    }


def ncci_facts(store: CodeStore, code: str, today: date) -> dict[str, Any]:
    """PTP pairs, MUE and add-on edits for CODE; a table not loaded is None, with the
    import command that loads it under `missing`."""
    conn = store.conn
    facts: dict[str, Any] = {
        "ptp": None,
        "ptp_outpatient": None,
        "mue": None,
        "addon": None,
        "missing": [
            f"consultant codes import {kind} FILE"
            for code_set, kind in IMPORT_HINTS.items()
            if not store.has(code_set)
        ],
    }
    for key, table in (("ptp", PTP), ("ptp_outpatient", IOCE)):
        if store.has(table):
            facts[key] = _ptp_facts(store, code, table, today)
    if store.has(MUE):
        mue = mue_for(conn, code)
        facts["mue"] = {
            "source": _ncci_source(store, MUE, "NCCI MUE"),
            "value": mue.value if mue else None,
            "indicator": mue.indicator if mue else None,
            "rationale": mue.rationale if mue else None,
        }
    if table := next((t for t in ADDON_TABLES if store.has(t)), None):
        addon = addon_primaries(conn, code, today, table)
        facts["addon"] = {
            "source": table_source(ADDON_TABLES[table], table, store.releases[table].version),
            "is_addon": addon is not None,
            "addon_type": addon.addon_type if addon else None,
            "primaries": list(addon.primaries) if addon else [],
            "contractor_defined": addon.contractor_defined if addon else False,
            "addons": addons_with(store.conn, code, today, table),
        }
    return facts


# --- the search page's two halves ------------------------------------------------------


def query_facts(reference: CodeReference, q: str, system: str | None, limit: int) -> dict:
    """Lookups of the codes Q names and search hits for the rest of its words.

    SYSTEM narrows the search; a code is looked up in SYSTEM first, then in any. A
    code-shaped word that is no code is searched when it reads as an abbreviation
    ('T2DM', 'B12') and listed under `not_codes` when written as a code ('E99.99',
    'J9999'): searching digits finds only titles that happen to hold them.
    """
    store = reference.store
    lookups: list[dict[str, Any]] = []
    not_codes: list[str] = []
    words: list[str] = []
    for token in _TOKENS.split(q):
        token = token.strip(_EDGE_PUNCTUATION)
        if not token:
            continue
        if store.systems_for(token):
            found = readings(store, token, system)
            if not found and system:
                found = readings(store, token, None)
            if found:
                lookups.extend(summary(info) for info in found)
                continue
            if "." in token or sum(c.isdigit() for c in token) >= 3:
                not_codes.append(token)
                continue
        words.append(token)
    text = " ".join(words)
    hits = reference.search.search(text, system=system, limit=limit) if words else []
    return {
        "query": q,
        "system": system,
        "lookups": lookups,
        "not_codes": not_codes,
        "weak": bool(hits) and hits[0].score < MIN_SCORE,
        "hits": [
            {
                "code": hit.code,
                "system": hit.system,
                "slug": SLUGS[hit.system],
                "title": _shown_title(hit.system, hit.title),
                "score": hit.score,
            }
            for hit in hits
        ],
    }


def release_facts(store: CodeStore, today: date) -> list[dict[str, Any]]:
    """The loaded releases as `consultant codes status` lists them, with its warnings."""
    return [
        {
            "code_set": status.release.code_set,
            "version": status.release.version,
            "effective": status.release.effective,
            "rows": status.release.row_count,
            "source_file": status.release.source_file,
            "warning": status.warning,
        }
        for status in (release_status(r, today) for r in store.releases.values())
    ]


def lookup_facts(reference: CodeReference, code: str, system: str | None) -> dict | None:
    """The facts of CODE's likeliest reading (of SYSTEM's when given), None when unknown."""
    store = reference.store
    found = readings(store, code, system)
    if not found:
        return None
    chosen = found[0]
    others = [
        info
        for info in (found if system is None else readings(store, code, None))
        if (info.system, info.code) != (chosen.system, chosen.code)
    ]
    return code_facts(store, chosen, others, date.today())


def note_groups(facts: dict) -> list[dict[str, Any]]:
    """The notes by the level they are written at, the code's own first, for the page."""
    titles = {a["code"]: a["title"] for a in facts["ancestors"]}
    groups: list[dict[str, Any]] = []
    for note in facts["notes"]:
        if not groups or groups[-1]["at"] != note["at"]:
            groups.append(
                {
                    "at": note["at"],
                    "title": titles.get(note["at"]),
                    "inherited": note["inherited"],
                    "notes": [],
                }
            )
        groups[-1]["notes"].append(note)
    return groups


def _systems() -> list[tuple[str, str]]:
    return [(SLUGS[s], s) for s in SYSTEMS]


# --- pages -----------------------------------------------------------------------------


@router.get("/codes")
def codes_page(request: Request, viewer: PageViewer, q: str = "", system: str = "") -> HTMLResponse:
    """The search box; with Q, lookups of the codes it names and hits for its words;
    without, the loaded releases."""
    chosen = system_named(system)
    q = q.strip()[:MAX_QUERY]
    reference = code_reference(request)
    with reference.lock:
        found = query_facts(reference, q, chosen, PAGE_HITS) if q else None
        releases = release_facts(reference.store, date.today())
    return render(
        request,
        "web/codes.html",
        viewer,
        q=q,
        system=SLUGS[chosen] if chosen else "",
        systems=_systems(),
        found=found,
        releases=releases,
    )


@router.get("/codes/{code}")
def code_page(request: Request, code: str, viewer: PageViewer, system: str = "") -> HTMLResponse:
    """One code: what it is, where it sits, its notes and edits; 404 with a search link
    when no loaded code set has it."""
    chosen = system_named(system)
    reference = code_reference(request)
    with reference.lock:
        facts = lookup_facts(reference, code, chosen)
        missing = not_found(reference.store, code, chosen) if facts is None else ""
    return render(
        request,
        "web/code.html",
        viewer,
        200 if facts else 404,
        asked=code,
        facts=facts,
        groups=note_groups(facts) if facts else [],
        missing=missing,
    )


# --- the JSON API ----------------------------------------------------------------------


@router.get("/api/codes/search", tags=["api"])
def api_search(
    request: Request,
    user: ApiUser,
    q: Annotated[str, Query(max_length=MAX_QUERY)],
    system: str = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Lookups of the codes Q names and billable codes for its words, best first."""
    chosen = system_named(system)
    reference = code_reference(request)
    with reference.lock:
        return query_facts(reference, q.strip(), chosen, limit)


@router.get("/api/codes/{code}", tags=["api"])
def api_code(request: Request, code: str, user: ApiUser, system: str = "") -> dict[str, Any]:
    """What CODE is: status, source, parent chain, children, notes, 7th characters, and
    for CPT and HCPCS the NCCI edits loaded (CPT by number only, never a descriptor)."""
    chosen = system_named(system)
    reference = code_reference(request)
    with reference.lock:
        facts = lookup_facts(reference, code, chosen)
        if facts is None:
            raise HTTPException(404, not_found(reference.store, code, chosen))
    return facts
