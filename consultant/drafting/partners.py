"""The codes a suggested code's own notes ask for beside it, found in what the message says.

A coder who picks N39.0 reads its "Use additional code (B95-B97), to identify infectious
agent" and looks back at the record for the organism; E11.65's notes ask for insulin or oral
drug use (Z79.4, Z79.84), N18.6's for dialysis status (Z99.2), an injury's chapter for its
external cause (I.C.20). The same is done here: each note's codes are looked for among the
message's own phrases, and a phrase chiefly about one of them gives it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from consultant.codes.search import CodeSearch, SearchHit
from consultant.codes.search_index import analyze
from consultant.codes.specifics import says_less
from consultant.codes.store import CodeStore
from consultant.codes.systems import ICD10CM
from consultant.drafting.extract import phrase_parts
from consultant.drafting.findings import CodeRef, note_references
from consultant.drafting.patient_context import PatientContext, rules_out

# Chapter 20 codes the cause of an injury beside its Chapter 19 code (Official Guidelines
# I.C.20: "used with any code in the range of A00.0-T88.9"), with the place, activity and
# status where the record says them (I.C.20.b, c, k); the tabular says so in prose. A
# poisoning's code names its intent, and a complication of care (T80-T88) is not caused
# by a fall in another part of the story.
_EXTERNAL_CAUSES = (CodeRef("V00", "Y38"), CodeRef("Y92"), CodeRef("Y93"), CodeRef("Y99"))
_INJURY = re.compile(r"^(?:S|T[0-2]|T3[0-4]|T6[6-9]|T7)")  # not poisonings, not care
# "Unspecified" place, activity and status: not used where the record does not say
# (I.C.20.b, c, k), so never offered for a phrase that only came close.
_UNSTATED = frozenset(("Y92.9", "Y93.9", "Y99.9"))
# A place of care names where the visit is ("seen at urgent care"), unless the phrase
# tells what happened there ("fell in the hospital bathroom").
_CARE_PLACE = re.compile(r"^Y92\.(?:2[34]|53)")
_EVENT = re.compile(
    r"\b(?:fell|falls?|slipp\w*|tripp\w*|injur\w*|burn\w*|struck|hit|cut|bitten|collid\w*)\b",
    re.I,
)
# An injury's code with its 7th character ("S82.201P"), and an external cause's ("W11.XXXA")
_SEVENTH = re.compile(r"^(?:S|T[0-2]|T3[0-4]|T6[6-9]|T7)\d?\w?\.\w{3}[A-Z]$")
_CAUSE = re.compile(r"^(?:[VWX]\d\d|Y[0-3]\d)\.\w{3}[A-Z]$")
# Exposure to radiation (W88-W90) is a cause only where the record says exposure.
_RADIATION = re.compile(r"^W(?:8[89]|90)\.")
_EXPOSED = re.compile(r"\bexpos", re.I)
# Exposure to other specified factors (X58) is a cause only where the phrase tells one.
_OTHER_FACTORS = re.compile(r"^X58\.")
_DEPTH = 25  # hits of a phrase looked through for a note's codes
_FLOOR = 0.5  # a partner is a good match of its phrase...
_SHARE = 0.85  # ...and what the phrase is chiefly about
_BESIDE_EVENT = re.compile(r"^Y92")  # but the place of an external cause...
_PLACE_FLOOR = 0.4  # ...matched this well by a phrase that tells the event too


def partners(
    store: CodeStore,
    search: CodeSearch,
    leads: Sequence[SearchHit],
    said: Sequence[str],
    patient: PatientContext | None = None,
) -> dict[str, list[SearchHit]]:
    """The codes LEADS' "use additional code" notes ask for that a phrase of SAID names,
    each once, by the code of the lead they go with; and what those codes' own notes ask
    for (I12.0 asks for the stage, N18.6, whose note asks for the dialysis status, Z99.2)."""
    taken = {hit.code for hit in leads}
    phrases = list(dict.fromkeys(part for p in said for part in (p, *phrase_parts(p))))
    found: dict[str, list[SearchHit]] = {}
    for lead in leads:
        if lead.system != ICD10CM:
            continue
        asking = [lead]  # the lead, then each partner found for it
        while asking:
            for ref in _wanted(store, asking.pop(0).code):
                if any(ref.covers(code) for code in taken):
                    continue  # the note is met: "fell from a ladder" gave W11, not W19 too
                hit = _named_in(search, phrases, ref, taken, patient)
                if hit is not None:
                    hit = same_encounter(store, hit, lead)
                    found.setdefault(lead.code, []).append(hit)
                    taken.add(hit.code)
                    asking.append(hit)
    return found


def same_encounter(store: CodeStore, hit: SearchHit, lead: SearchHit) -> SearchHit:
    """HIT (an external cause) with the encounter of the injury LEAD it goes with: I.C.20.a
    gives the cause the injury's 7th character (A initial, D subsequent, S sequela) for
    every encounter the injury is treated at."""
    if not _CAUSE.match(hit.code) or not _SEVENTH.match(lead.code):
        return hit
    encounter = lead.code[-1]
    wanted = "A" if encounter in "ABC" else "S" if encounter == "S" else "D"
    code = hit.code[:-1] + wanted
    row = store.row(ICD10CM, code) if code != hit.code else None
    if row is None or not row["billable"]:
        return hit
    return replace(hit, code=code, title=row["title"])


def _wanted(store: CodeStore, code: str) -> list[CodeRef]:
    refs = [
        ref
        for note in store.notes(ICD10CM, code)
        if note.kind == "use_additional_code"
        for ref in note_references(note.text)
    ]
    return [*refs, *_EXTERNAL_CAUSES] if _INJURY.match(code) else refs


def _named_in(
    search: CodeSearch,
    phrases: Sequence[str],
    ref: CodeRef,
    taken: set[str],
    patient: PatientContext | None,
) -> SearchHit | None:
    best: SearchHit | None = None
    named: list[tuple[SearchHit, str]] = []
    for phrase in phrases:
        # blind, as the phrases were searched for suggestions: the answers are remembered
        hits = [h for h in search.search(phrase, limit=_DEPTH) if h.system == ICD10CM]
        coded = [hit for hit in hits if hit.code in taken]
        fair = [
            h
            for h in hits
            if h.score >= _PLACE_FLOOR
            and _fits(h, phrase, taken, patient)
            and not any(_says_no_more(search, phrase, h, other) for other in coded)
        ]
        fitting = [hit for hit in fair if ref.covers(hit.code)]
        named += [(hit, phrase) for hit in fair if hit.score >= _FLOOR]
        # the first that fits, if the phrase is chiefly about it; a place is told beside the
        # event that happened there ("fell from a stepladder in the garage of his house":
        # W11 chiefly, Y92.015 beside it)
        beside = bool(fitting) and _BESIDE_EVENT.match(fitting[0].code) is not None
        if (
            fitting
            and (beside or fitting[0].score >= max(_FLOOR, _SHARE * hits[0].score))
            and (best is None or _preferred(fitting[0]) > _preferred(best))
        ):
            best = fitting[0]
    if best is not None and says_less(best.title):
        # "the CKD code" finds N18.9; "CKD stage 4 and HTN", chiefly the combination, says
        # the stage: a sibling is taken when its phrase says every word it adds (the note
        # may name it in another range: "N18.1-N18.4, N18.9")
        told = [
            hit
            for hit, phrase in named
            if hit.code[:3] == best.code[:3]
            and not says_less(hit.title)
            and _adds_only_said(search, phrase, hit.title, best.title)
        ]
        best = max(told, key=lambda hit: hit.score, default=best)
    return best


def _says_no_more(search: CodeSearch, phrase: str, hit: SearchHit, coded: SearchHit) -> bool:
    """Whether HIT tells nothing of PHRASE that the CODED one does not, and adds what the
    phrase did not say: "Mom smokes in the house" is Z77.22's exposure, not Z57.31's
    occupational one, though J45's note names both."""
    concepts = search.concepts(phrase)
    own, other = set(analyze(hit.title)), set(analyze(coded.title))
    told = [concept for concept in concepts if concept & own]
    if not told:
        return False  # found by other than its title's words (the Table of Drugs' T-codes)
    unsaid = {t for t in own - other if t[0] not in "+^~"} - set().union(*concepts)
    return bool(unsaid) and all(concept & other for concept in told)


def _adds_only_said(search: CodeSearch, phrase: str, title: str, vaguer: str) -> bool:
    added = {t for t in analyze(title) if t[0] not in "+^~"} - set(analyze(vaguer))
    said = set().union(*search.concepts(phrase))
    return bool(added) and added <= said


def _fits(hit: SearchHit, phrase: str, taken: set[str], patient: PatientContext | None) -> bool:
    """Whether HIT of PHRASE is a code the phrase can stand for beside those TAKEN."""
    if hit.code in taken or hit.code in _UNSTATED:
        return False
    if says_less(hit.title) and any(code[:3] == hit.code[:3] for code in taken):
        return False  # N18.9 beside the N18.4 given for another of the note's ranges
    if _CARE_PLACE.match(hit.code) and not _EVENT.search(phrase):
        return False
    if _RADIATION.match(hit.code) and not _EXPOSED.search(phrase):
        return False  # "xray shows delayed union" is the imaging, not an exposure
    if _OTHER_FACTORS.match(hit.code) and not (_EVENT.search(phrase) or _EXPOSED.search(phrase)):
        return False  # "in SNF for rehab after ORIF" tells the care, not a cause
    return patient is None or not rules_out(patient, hit.system, hit.code, hit.title)


def _preferred(hit: SearchHit) -> tuple[bool, float]:
    """A specific code before a vague one of its phrase's picks, then the better match."""
    return not says_less(hit.title), hit.score
