"""Code search in a customer's own words: complete, billable codes only, best first.

Coders write "DM2 w/ CKD 3a", "sacral decub stage 3", "f/u R distal radius fx", not
official titles. A query is rewritten into the words the code sets use (abbreviations,
lay phrases and drug names from synonyms.toml, misspellings corrected against the
indexed vocabulary, porter stems), then ranked over titles, inclusion terms and the
alphabetic index by how much of the query an entry covers and how little it adds.
An entry that leads to a header or to an incomplete index code ("L89.15") is completed
down the tree to the billable code the query's other words pick (laterality, stage,
type; encounter words pick the 7th character), the "unspecified" branch when the query
does not say; a code the loaded tabular does not have is dropped, never suggested.

Everything a search needs is in the analyzed index (search_index.py); what a process
keeps in memory (term counts, the spelling vocabulary, the ICD-10-CM tree) is loaded
once per CodeStore and reloaded when a release changes.
"""

from __future__ import annotations

import heapq
import math
import re
import sqlite3
import tomllib
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import chain
from pathlib import Path

from rapidfuzz import fuzz, process

from consultant.codes.db import CodeDatabaseError
from consultant.codes.drug_table import DrugTable
from consultant.codes.external_cause import (
    EXTERNAL_CAUSE,
    ExternalCauseResolver,
    injury_at,
    names_injury,
)
from consultant.codes.hcpcs_resolve import HcpcsResolver
from consultant.codes.history_of import HistoryCodes
from consultant.codes.in_pregnancy import InPregnancy
from consultant.codes.long_term_use import LongTermUse, Taken
from consultant.codes.neoplasm_morphology import Morphology
from consultant.codes.pcs_build import PcsBuilder
from consultant.codes.query_cues import read_cues
from consultant.codes.search_index import (
    analyze,
    analyzed_index_is_current,
    stem,
    stems,
    unpack,
    update_analyzed_index,
)
from consultant.codes.specifics import contradicts, leaves_unspecified, says_less, stated
from consultant.codes.store import CodeStore
from consultant.codes.systems import HCPCS, ICD10CM, ICD10PCS
from consultant.codes.value_codes import bmi_code, gestation_code

SYNONYMS_FILE = Path(__file__).with_name("synonyms.toml")
HCPCS_TERMS_FILE = Path(__file__).with_name("hcpcs_terms.toml")

# -- ranking constants (tuned on tests/data/search_eval_dev.tsv) ------------------------
# Entries scored in full per query, and codes completed down the tree.
_CANDIDATES = 250
_REMEMBERED = 4096  # searches kept per loaded database
_COMPLETED = 40  # ICD-10-CM entries completed per query...
_COMPLETED_OTHER = 20  # ...and PCS/HCPCS ones, whose completion is a title's lookup
# A term in more entries than this does not select candidates on its own ("left").
_COMMON = 15000
_IDF_CAP = 9.0
# How much an entry's words that the query did not ask for cost, relative to coverage:
# _EXTRA * extra / (asked + _SATURATION * extra), so a long entry that happens to hold
# every query word (a quality-measure descriptor) still ranks low. A word of an index
# cross reference costs _SEE of an entry's own.
_EXTRA = 0.45
_SATURATION = 0.6
_SEE = 0.5
# A descriptor this long (a quality-measure code's) names a situation, not a condition.
_WORDY = 10
_WORDY_COST = 0.01
# "other"/"specified" name a residual category: wrong for a query that did not say so.
_RESIDUAL_COST = 4.0
# The entry says the opposite ("without hematuria" for "with hematuria").
_CONFLICT = 0.8
# An adverse effect's manifestation ranks at least this share of the adverse effect.
_MANIFESTATION = 0.9
_INCIDENTAL = "Z33.1"  # pregnant state, incidental
_TAKEN_NOW = 0.95  # a drug taken now, as its Z79 class, when the phrase tells nothing else
_TOLD = 0.7  # ...and just below the condition it tells besides, when that is found
# The drug codes themselves, and "other adverse effects NEC" (T78.8-, T88.7): no manifestation.
# An injury (S00-S99) is no drug's effect either ("lip swelling on lisinopril" is not a
# cut), nor is a complication of care (T80-T88: "keflex reaction" is no serum reaction).
_NO_EFFECT = re.compile(r"^T(?:3[6-9]|[45]\d|6[0-5])\.|^T78\.8|^T8[0-8]|^S")
# A manifestation whose title says a drug caused it, preferred by this much for an adverse
# effect's phrase.
_DRUG_EFFECT = 0.2
_EFFECTS_READ = 10  # an effect's own words' hits the manifestation is chosen among
# Words of how a drug was involved, which name no effect.
_EFFECT_WORDS = frozenset(
    stem(word)
    for word in re.findall(
        r"\S+",
        "reaction reactions effect effects side adverse toxicity toxic due from after to of"
        " with caused induced allergic allergy sensitivity intolerance started starting"
        " taking took on",
    )
)
_BY_DRUGS = re.compile(
    r"\bdue to drugs?\b|\bdrug[- ]induced\b|\bdue to drugs and medicaments"
    r"|\bdrug or chemical induced\b",
    re.I,
)
# A Table of Drugs entry for a query that names no poisoning, adverse effect or underdosing.
_NO_COLUMN = 0.5
# A code whose title leaves unspecified the side the query states ranks this much lower.
_UNSTATED = 0.1
# What an entry that merely lacks a denied word ("status asthmaticus") covers of it.
_ABSENT = 0.75
# "Concussion without loss of consciousness" says more than "concussion" asked.
_UNASKED_NEGATION = 0.005
# Weight of a query word that asks for a 7th character ("initial", "nonunion").
_INTENT_WEIGHT = 1.2
# "healed in poor position": healing is said of every subsequent fracture encounter; the
# word beside it (routine, delayed, malunion) decides.
_HEALING = 0.5
_SOFT = 0.35  # a synonym's word in parentheses: a hint, not a requirement
_SHARED = 0.5  # each further word of an abbreviation's expansion counts this much
# "UTI due to E. coli": the condition leads, its cause is a second code.
_CAUSE = 0.6
_RESIDUAL_TITLE = re.compile(r"\bother\b", re.I)  # "..., of other organs or systems"
_CAUSE_CUES = (("due", "to"), ("secondary", "to"), ("caused", "by"))
# A completion the query did not decide ("pneumonia" -> the first of J18's codes) ranks
# just below an entry that names its code.
_GUESS = 0.02
# ICD-10-CM is what most questions are about: on a near tie, the diagnosis comes first.
_OTHER_SYSTEM = 0.02
_READING_PENALTY = 0.03  # per rank of a less likely reading of an ambiguous abbreviation
_MAX_READINGS = 4
# A spelling this close to an indexed word is that word, even when its stem is indexed
# too ("migrane" is migraine, though "migrans" shares its stem).
_CLOSE = 90
_COMMONER = 10
# Clauses of a phrase that may tell an injury and, apart, how it happened.
_CLAUSE = re.compile(r"\s*(?:[,;]|\band\b|\bafter\b|\bwhile\b|\bwhen\b|\s-\s)\s*", re.I)
_SPLIT_KEPT = 5
_ACCIDENT = re.compile(r"^[VWX]\d")  # accidents, assaults, self-harm (V00-X99)
# Below this, a hit covers too little of the query to be worth suggesting...
MIN_SCORE = 0.3
# ...but when nothing reaches it ("store and forward images reviewed"), the hits that
# share a selective word are still a coder's best leads, listed at their low scores.
_WEAK_SCORE = 0.1
_SOURCE_RANK = {"title": 0, "inclusion": 1, "includes": 1, "short_title": 1}

# Words that only say a title is unspecific: an entry is not wrong for having them.
_NEUTRAL = frozenset(
    stem(w)
    for w in [
        "unspecified",
        "unidentified",
        "site",
        "uncomplicated",
        "encounter",
        "initial",
        "primary",
        "classified",
        "elsewhere",
        # a poisoning without documented intent is coded accidental
        "accidental",
        "unintentional",
    ]
)
_UNSPECIFIED = stem("unspecified")
_RESIDUAL = frozenset(stem(w) for w in ("other", "specified", "identified"))
# Query words that choose a 7th character rather than a condition.
_INTENT = frozenset(
    stem(w)
    for w in [
        "initial",
        "subsequent",
        "sequela",
        "routine",
        "healing",
        "delayed",
        "nonunion",
        "malunion",
        # "closed" is said of a fracture, and only 7th characters say it back
        "closed",
    ]
)
_ENCOUNTER = stem("encounter")
_HEAL = stem("healing")
_MARKS = "+^~"
_PREFIXES = frozenset(
    [
        "non",
        "pre",
        "post",
        "semi",
        "sub",
        "anti",
        "multi",
        "self",
        "co",
        "re",
        "un",
        "over",
        "under",
        "one",
        "two",
        "three",
        "single",
        "double",
    ]
)
_VOWELS = "aeiouy"
_SUFFIX = 3  # letters a brand's suffix or strength has at most ("Bicillin L-A", "Kenalog 40")

Key = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class SearchHit:
    code: str
    system: str
    title: str
    score: float
    # ICD-10-PCS axes the text did not state, filled with the usual value ("approach")
    open_axes: tuple[str, ...] = ()
    # coded beside the phrase's leading code, not instead of it (a drug taken now, Z79)
    alongside: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class CodeSearch:
    def __init__(self, store: CodeStore) -> None:
        self.store = store
        self._holder = _holder_for(store)

    def search(self, text: str, *, system: str | None = None, limit: int = 10) -> list[SearchHit]:
        """Billable codes for TEXT, best first; [] when nothing in TEXT is searchable. When
        no code covers enough of TEXT (MIN_SCORE), the few that cover some of it."""
        if limit <= 0 or not text or not text.strip():
            return []
        data = self._holder.current()
        key = (text, system)
        ranked = data.answers.get(key)
        if ranked is None:
            ranked = data.answers[key] = self._ranked(data, text, system)
            if len(data.answers) > _REMEMBERED:
                data.answers.popitem(last=False)
        else:
            data.answers.move_to_end(key)
        return ranked[:limit]

    def knows(self, word: str) -> bool:
        """Whether WORD names something on its own: a main term of the Alphabetic Index or
        of the External Cause Index, a drug of the Table of Drugs, or a term we rewrite. A
        lone everyday word ("special", "listed") is not searched for."""
        data = self._holder.current()
        key = word.lower()
        return key in data.synonyms.terms or stem(key) in data.main_terms()

    def concepts(self, text: str) -> list[frozenset[str]]:
        """What TEXT's words stand for as the search reads them, abbreviations and synonyms
        expanded ("fx" and "fracture" alike): each concept as its indexed stems. Two phrases
        with the same concepts speak of the same thing ("the SSI", "surgical site
        infection R ankle")."""
        data = self._holder.current()
        read = data.concepts.get(text)
        if read is None:
            # a message's phrases are compared with each other many times: read once
            if len(data.concepts) > _REMEMBERED:
                data.concepts.clear()
            queries = data.queries(read_cues(text).text, None)
            read = data.concepts[text] = [
                frozenset(a.lstrip("~+^") for a in c.alternatives)
                for c in (queries[0].concepts if queries else [])
            ]
        return read

    def names_drug(self, word: str) -> bool:
        """Whether WORD is a substance of the Table of Drugs or a brand of one: a capitalized
        word alone is a drug ("Kenalog") or a person ("Dana"), and eponyms make both known."""
        return self._holder.current().drugs.substance_in(word) is not None

    def _injury_and_cause(self, text: str) -> list[SearchHit]:
        """ "Slipped on ice, fx R ankle", "fell off a ladder and broke L wrist": a phrase
        whose clauses tell an injury and how it happened is two searches, the injury's
        codes first and the cause's beside them (I.C.20: an external cause code is never
        listed first); [] for any other phrase."""
        injury: list[str] = []
        cause: list[str] = []
        clauses = [clause for clause in _CLAUSE.split(text) if clause and clause.strip()]
        unparted = len(clauses) == 1 and (at := injury_at(text)) is not None
        if unparted:
            # a message's phrase, its commas gone: an accident told before the injury
            # ("fell off his bike closed fx of L distal radius")
            clauses = [text[:at], text[at:]]
        for clause in clauses:
            (injury if names_injury(clause) else cause).append(clause)
        if not injury or not cause:
            return []
        # the cause first: most such phrases tell none, and then the injury's search is
        # not needed
        how = self.search(", ".join(cause), system=ICD10CM, limit=_SPLIT_KEPT)
        if not how or how[0].score < MIN_SCORE or not EXTERNAL_CAUSE.match(how[0].code):
            return []
        if unparted and not _ACCIDENT.match(how[0].code):
            return []  # "I&D of the surgical wound" tells no accident
        hurt = self.search(", ".join(injury), system=ICD10CM, limit=_SPLIT_KEPT)
        if not hurt or hurt[0].score < _TOLD:
            return []
        ceiling = hurt[0].score - 0.01
        beside = [
            replace(hit, score=round(min(hit.score, ceiling - 0.001 * i), 3), alongside=True)
            for i, hit in enumerate(h for h in how if EXTERNAL_CAUSE.match(h.code))
        ]
        injuries = [hit for hit in hurt if not EXTERNAL_CAUSE.match(hit.code)]
        return sorted([*injuries, *beside], key=lambda hit: -hit.score)

    def _in_pregnancy(
        self,
        data: _SearchData,
        best: dict[Key, tuple[float, int, str]],
        alongside: set[str],
        condition_words: str,
        trimester: str | None,
    ) -> None:
        """ "asthma in pregnancy": the chapter 15 code whose range holds the condition's
        code leads, the condition's code beside it (I.C.15.a.1, in_pregnancy.py), unless a
        chapter 15 code names the condition itself ("UTI in pregnancy" is O23.40)."""
        if any(key[1].startswith("O") and hit[0] >= _TOLD for key, hit in best.items()):
            return
        found = self.search(condition_words, system=ICD10CM, limit=1)
        if not found or found[0].score < _TOLD or found[0].code.startswith(("O", "Z")):
            return
        condition = found[0]
        chapter15 = data.pregnancy.of(condition.code)
        if chapter15 is None:
            return
        code, title = data.in_trimester(*chapter15, trimester)
        best.pop((ICD10CM, _INCIDENTAL), None)  # the provider did not say so (I.C.15.a.1)
        lead = max((hit[0] for hit in best.values()), default=condition.score)
        best[(ICD10CM, code)] = (max(lead, condition.score), 0, title)
        best[(ICD10CM, condition.code)] = (max(lead, condition.score) * 0.99, 0, condition.title)
        alongside.add(condition.code)

    def _ranked(self, data: _SearchData, text: str, system: str | None) -> list[SearchHit]:
        cues = read_cues(text)
        system = system or cues.system
        if system in (None, ICD10CM) and (told := self._injury_and_cause(cues.text)):
            return told
        # The Table of Drugs answers how a drug was involved: "Toradol" alone asks for the
        # drug, not a poisoning, so its entries rank lower when no column word is said.
        cell = data.drugs.cell_query(cues.text)
        column = cell is not None
        searches = [(cues.text, system, 0.0)]
        if cell is not None and system in (None, ICD10CM):
            searches.append((cell, ICD10CM, 0.0))
        histology = data.morphology.reading(cues.text) if system in (None, ICD10CM) else None
        if histology is not None:
            # "adenocarcinoma of the RUL" as the Table of Neoplasms reads it: malignant, of
            # the right upper lobe (neoplasm_morphology.py); below a code that names the
            # histology itself ("squamous cell carcinoma of skin of nose")
            searches.append((histology.text, ICD10CM, _READING_PENALTY))
        taken = Taken([], "")
        if cell is None and system in (None, ICD10CM):
            taken = data.long_term.taken(cues.text, diagnosis=system == ICD10CM)
            if taken.codes:
                # what the phrase tells beside the drugs, its words all asked
                searches[0] = (taken.rest, system, 0.0)
        # Asked for a PCS code outright, "on the vent 72 hrs" is the ventilation, not a
        # status; a drug the patient takes now ("insulin use") or took wrongly ("didn't
        # take insulin for 3 days") was given no procedure.
        built = (
            data.pcs.build(cues.text, asked=system == ICD10PCS)
            if system == ICD10PCS or (system is None and not taken.codes and not column)
            else []
        )
        alongside: set[str] = set()
        found_by: list[dict[Key, tuple[float, int, str]]] = []
        said = stated(text)
        # "at 34 weeks": a title's "third trimester" is what the phrase said (specifics.py)
        told_trimester = (
            frozenset(analyze(f"{said.trimester} trimester")) if said.trimester else None
        )
        for phrase, within, penalty in searches:
            found_by.append({})
            for query in data.queries(phrase, within):
                query.penalty += penalty
                if told_trimester:
                    query.asked |= told_trimester
                for key, found in data.rank(query, within, column).items():
                    if key not in found_by[-1] or found[0] > found_by[-1][key][0]:
                        found_by[-1][key] = found
        if histology is not None:
            found_by[-1] = {k: v for k, v in found_by[-1].items() if histology.gives(k[1])}
        best: dict[Key, tuple[float, int, str]] = {}
        for found in found_by:
            for key, hit in found.items():
                if key not in best or hit[0] > best[key][0]:
                    best[key] = hit
        if len(searches) > 1 and cell is not None and cell.endswith("adverse effect"):
            # I.C.19.e.5(a): the effect is coded first, then the T-code; the phrase's best
            # code for the effect belongs beside the adverse effect's.
            # the effect the phrase tells in its own words, as they alone find it: "digoxin
            # toxicity" tells none, "infusion reaction to Remicade" no acute dystonia
            dropped = stems(cell) | _EFFECT_WORDS
            told = " ".join(
                w
                for w in re.findall(r"[a-z]+", cues.text.lower())
                if stem(w) not in dropped and data.drugs.substance_in(w) is None
            )
            found = (
                {hit.code for hit in self.search(told, system=ICD10CM, limit=_EFFECTS_READ)}
                if told
                else set()
            )
            # ...or a drug's own form of it ("Drug-induced hypoglycemia", E16.0)
            words = stems(told)
            effects = [
                kv
                for kv in found_by[0].items()
                if kv[0][0] == ICD10CM
                and not _NO_EFFECT.match(kv[0][1])
                and (
                    kv[0][1] in found
                    or (_BY_DRUGS.search(kv[1][2]) is not None and bool(stems(kv[1][2]) & words))
                )
            ]
            if effects and best:
                # a manifestation the tabular names as a drug's ("Hypotension due to drugs",
                # "Drug-induced hypoglycemia") is the one for an adverse effect
                key, (score, rank, title) = max(
                    effects,
                    key=lambda kv: kv[1][0] + (_DRUG_EFFECT if _BY_DRUGS.search(kv[1][2]) else 0),
                )
                top = max(hit[0] for hit in best.values())
                best[key] = (max(score, _MANIFESTATION * top), rank, title)
                alongside.add(key[1])
        if not built and system != ICD10PCS:
            # A PCS title that shares a word ("humeral shaft") is no answer to a question
            # that names no procedure.
            best = {k: v for k, v in best.items() if k[0] != ICD10PCS}
        if built:
            # The builder read a procedure done (it builds nothing for a diagnosis, a status
            # or a supply): its codes lead, in its order, and a diagnosis or a title that
            # shares the words ("enucleation" -> avulsion of eye) follows them.
            mine = {(ICD10PCS, candidate.code) for candidate in built}
            rival = max((hit[0] for key, hit in best.items() if key not in mine), default=0.0)
            if MIN_SCORE <= built[0].score <= rival:
                shrink = built[0].score * 0.99 / rival
                best = {
                    key: hit if key in mine else (hit[0] * shrink, *hit[1:])
                    for key, hit in best.items()
                }
        previous = 2.0
        for candidate in built:
            previous = min(candidate.score, previous - 0.001)
            best[(ICD10PCS, candidate.code)] = (previous, 0, candidate.title)
        open_axes = {candidate.code: candidate.open_axes for candidate in built}
        valued = None
        if system in (None, ICD10CM):
            valued = bmi_code(data.conn, text) or gestation_code(data.conn, text)
        if valued is not None:
            # The value decides: every other BMI range or week count contradicts it.
            best = {k: v for k, v in best.items() if not k[1].startswith(valued.code[:3])}
            score = 1.0
            found = self.search(valued.rest, system=ICD10CM, limit=3) if valued.rest else []
            if found and found[0].score >= _TOLD and not found[0].code.startswith(valued.code[:3]):
                # "morbid obesity, BMI 42", "gestational HTN at 32 weeks": the condition
                # leads, in the trimester the weeks fall in, and the value is coded beside
                # it (value_codes.py)
                lead = found[0]
                code, title = data.in_trimester(lead.code, lead.title, said.trimester)
                known = best.get((ICD10CM, code), (0.0,))[0]
                best[(ICD10CM, code)] = (max(lead.score, known), 0, title)
                score = lead.score * 0.99
                alongside.add(valued.code)
                for beside in found[1:]:
                    if beside.alongside:  # the condition a chapter 15 code leads (I.C.15.a.1)
                        best[(ICD10CM, beside.code)] = (score * 0.99, 0, beside.title)
                        alongside.add(beside.code)
            best[(ICD10CM, valued.code)] = (score, 0, valued.title)
        if system == HCPCS or (system is None and (not taken.codes or taken.rest.strip())):
            # HCPCS Level II read as coders word it (drug + dose + route, service, DME
            # features): its codes take the resolver's score (hcpcs_resolve.py). A phrase
            # telling only a drug the patient takes now ("on insulin") tells a status, not
            # a drug supplied.
            data.hcpcs.merge(best, cues.text, built[0].score if built else None)
        if system in (None, ICD10CM):
            # External causes as the External Cause Index reads them (a transport accident
            # axis by axis: role, vehicle, counterpart, traffic); never ahead of an injury
            # the phrase names (external_cause.py).
            data.external.merge(best, text)
        if taken.codes:
            # "on Eliquis", "DM2 on metformin": a drug taken now is its Z79 class, which no
            # word names; beside what else the phrase tells, which leads (long_term_use.py).
            told = max(
                (
                    hit[0]
                    for key, hit in best.items()
                    if key[0] == ICD10CM and not contradicts(said, hit[2])
                ),
                default=0.0,
            )
            score = _TAKEN_NOW if told < _TOLD else told * 0.99
            for code in taken.codes:
                found = data.title(ICD10CM, code)
                if found is not None and found[1]:
                    best[(ICD10CM, code)] = (score, 0, found[0])
                    alongside.add(code)
        if system in (None, ICD10CM) and (told := data.history.told(cues.text)) and told[0]:
            # "fam hx colon ca": the history code whose tabular range holds the condition's
            # code (Z80.0 for C18.9), which no title word names (history_of.py)
            condition = self.search(told[0], system=ICD10CM, limit=1)
            sure = condition and condition[0].score >= _TOLD and condition[0].code[0] != "Z"
            top = max(best.items(), key=lambda kv: kv[1][0], default=None)
            vague = top is None or says_less(top[1][2]) or _RESIDUAL_TITLE.search(top[1][2])
            if sure and vague and (found := data.history.of(condition[0].code, told[1])):
                # above a vague answer ("..., unspecified"), never above a specific one
                best[(ICD10CM, found[0])] = (
                    min(1.0, top[1][0] + 0.01) if top else 1.0,
                    0,
                    found[1],
                )
        if system in (None, ICD10CM) and (had := data.pregnancy.told(cues.text)):
            self._in_pregnancy(data, best, alongside, had, said.trimester)
        for key, (score, rank, title) in list(best.items()):
            if contradicts(said, title):
                del best[key]
            elif leaves_unspecified(said, title):
                best[key] = (score - _UNSTATED, rank, title)
        # On a tie: the diagnosis code, the title's own entry, the unspecified sibling.
        ranked = sorted(
            best.items(),
            key=lambda kv: (
                -kv[1][0],
                kv[0][0] != ICD10CM,
                kv[1][1],
                "unspecified" not in kv[1][2].lower(),
                kv[0][1],
            ),
        )
        floor = MIN_SCORE if ranked and ranked[0][1][0] >= MIN_SCORE else _WEAK_SCORE
        return [
            SearchHit(
                code=code,
                system=system_,
                title=title,
                score=round(score, 3),
                open_axes=open_axes.get(code, ()) if system_ == ICD10PCS else (),
                alongside=code in alongside,
            )
            for (system_, code), (score, _, title) in ranked
            if score >= floor
        ]


# -- per-database state -------------------------------------------------------------------

_HOLDERS: weakref.WeakKeyDictionary[CodeStore, _Holder] = weakref.WeakKeyDictionary()


def _holder_for(store: CodeStore) -> _Holder:
    holder = _HOLDERS.get(store)
    if holder is None:
        holder = _HOLDERS[store] = _Holder(store.conn)
    return holder


class _Holder:
    """The loaded search state of one database, reloaded when its releases change."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._signature: str | None = None
        self._data: _SearchData | None = None

    def current(self) -> _SearchData:
        signature = self.conn.execute(
            "SELECT group_concat(code_set || sha256 || imported_at) FROM"
            " (SELECT * FROM releases ORDER BY code_set)"
        ).fetchone()[0]
        if self._data is None or signature != self._signature:
            _ensure_index(self.conn)
            self._data = _SearchData(self.conn)
            self._signature = signature
        return self._data


def _ensure_index(conn: sqlite3.Connection) -> None:
    """Bring the analyzed index up to date (a database built by an older version)."""
    if analyzed_index_is_current(conn):
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        update_analyzed_index(conn)
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise CodeDatabaseError(
            f"the code database's search index is out of date and cannot be rebuilt here "
            f"({exc}); open the database once with write access (any `consultant codes` "
            "command does) to rebuild it"
        ) from None
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# -- synonyms -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Synonyms:
    terms: dict[str, list[str]]  # word or phrase -> readings, likeliest first
    longest: int  # words in the longest phrase
    ignore: frozenset[str]
    equivalents: dict[str, frozenset[str]]  # stem -> stems that mean the same
    emphasis: dict[str, float]  # stem -> weight factor
    implied: dict[str, frozenset[str]]  # stem -> stems an entry may add at no cost
    drug_readings: dict[str, list[str]]  # terms, and drugs as the Table's class entries


@lru_cache(maxsize=1)
def _synonyms() -> _Synonyms:
    data = tomllib.loads(SYNONYMS_FILE.read_text(encoding="utf-8"))
    hcpcs = tomllib.loads(HCPCS_TERMS_FILE.read_text(encoding="utf-8"))["hcpcs"]
    terms: dict[str, list[str]] = {}
    for table in ("abbreviations", "phrases", "procedures", "drugs"):
        for key, value in data.get(table, {}).items():
            terms[" ".join(_words(key))] = [value] if isinstance(value, str) else list(value)
    for key, value in hcpcs.items():
        # the diagnosis reading of a shared word stays first
        terms.setdefault(" ".join(_words(key)), [value])
    # "large contusion" is the contusion; "small lac" the laceration its abbreviation says
    qualifiers, spelled = data.get("qualifiers", {}), data.get("abbreviations", {})
    for qualified in qualifiers.get("before", []):
        for word in qualifiers.get("words", []):
            terms.setdefault(f"{word} {qualified}", [spelled.get(qualified, qualified)])
    equivalents: dict[str, frozenset[str]] = {}
    for group in data.get("equivalents", {}).get("groups", []):
        stems = frozenset(t for word in group for t in analyze(word))
        for s in stems:
            equivalents[s] = equivalents.get(s, frozenset()) | stems
    return _Synonyms(
        terms=terms,
        longest=max((k.count(" ") + 1 for k in terms), default=1),
        ignore=frozenset(data.get("ignore", {}).get("words", [])),
        equivalents=equivalents,
        emphasis={stem(w): float(x) for w, x in data.get("emphasis", {}).items()},
        implied={
            stem(w): frozenset(t for said in words for t in analyze(said))
            for w, words in data.get("implied", {}).items()
        },
        drug_readings=terms
        | {" ".join(_words(key)): [value] for key, value in data.get("drug_classes", {}).items()},
    )


_CORRECTED = 5  # letters from which a word the index does not know may be a misspelling
# Query words keep "s/p", "w/o", "t2dm", "3a", "40-44.9", "crohn's" whole.
_QUERY_WORD = re.compile(r"[a-z0-9]+(?:[/'.\-][a-z0-9]+)*/?")
# "ckd3": an abbreviation run together with its stage.
_GLUED = re.compile(r"^([a-z]{2,})(\d+[a-z]?)$")


def _words(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    return [w if w.endswith("w/") else w.rstrip("./") for w in _QUERY_WORD.findall(text)]


# -- queries, entries and their scores -----------------------------------------------------


@dataclass(frozen=True)
class _Concept:
    """One query word: the stems that express it, and what covering it is worth."""

    alternatives: frozenset[str]
    weight: float
    negated: bool = False


@dataclass
class _Query:
    concepts: list[_Concept]
    penalty: float  # a less likely reading of an ambiguous abbreviation
    asked: frozenset[str] = frozenset()  # stems an entry may have at no cost, besides...
    total: float = 0.0

    def __post_init__(self) -> None:
        # ...every stem the query used
        self.asked |= frozenset(a for c in self.concepts for a in c.alternatives)
        self.total = sum(c.weight for c in self.concepts)


@dataclass
class _Bag:
    """An entry's tokens by kind (see search_index.analyze)."""

    essential: set[str]
    optional: set[str]
    negated: set[str]  # kept with their "~"
    see: set[str]

    @cached_property
    def present(self) -> set[str]:
        """Every token; computed once (a bag is not changed after it is built)."""
        return self.essential.union(self.optional, self.negated, self.see)

    def __or__(self, other: _Bag) -> _Bag:
        return _Bag(
            self.essential | other.essential,
            self.optional | other.optional,
            self.negated | other.negated,
            self.see | other.see,
        )


def _bag(tokens: Iterable[str]) -> _Bag:
    bag = _Bag(set(), set(), set(), set())
    for token in tokens:
        kind = token[0]
        if kind == "+":
            bag.optional.add(token[1:])
        elif kind == "^":
            bag.see.add(token[1:])
        elif kind == "~":
            bag.negated.add(token)
        else:
            bag.essential.add(token)
    return bag


@lru_cache(maxsize=100_000)
def _analyzed(text: str) -> _Bag:
    return _bag(analyze(text))


@lru_cache(maxsize=50_000)
def _indexed(tokens: str) -> _Bag:
    """An index entry's stored tokens as a bag; the same entries come up search after
    search, so each is parsed once."""
    return _bag(tokens.split())


@dataclass
class _Node:
    code: str
    title: str
    billable: bool
    kind: str
    children: list[str] = field(default_factory=list)


class _SearchData:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.synonyms = _synonyms()
        self.df: dict[str | None, dict[str, int]] = {None: {}}
        for term, system, n in conn.execute(
            "SELECT term, system, SUM(df) FROM search_df GROUP BY term, system"
        ):
            self.df.setdefault(system, {})[term] = n
            self.df[None][term] = self.df[None].get(term, 0) + n
        self.docs: dict[str | None, int] = dict(
            conn.execute("SELECT system, COUNT(*) FROM search_docs GROUP BY system").fetchall()
        )
        self.docs[None] = sum(self.docs.values())
        self.vocabulary: dict[str, int] = dict(
            conn.execute("SELECT word, SUM(count) FROM search_words GROUP BY word").fetchall()
        )
        self.words = list(self.vocabulary)
        # "hiv" -> the stems of "human immunodeficiency virus", as the titles spell it out.
        self.spelled_out: dict[str, list[str]] = {}
        for abbreviation, spelled, _ in conn.execute(
            "SELECT abbreviation, stems, SUM(count) AS n FROM search_abbreviations"
            " GROUP BY abbreviation, stems ORDER BY n"
        ):
            self.spelled_out[abbreviation] = spelled.split()
        self._tree: dict[str, _Node] | None = None
        self._sevenths: dict[str, list[tuple[str, str]]] = {}
        self._titles: dict[Key, tuple[str, bool] | None] = {}
        self._reaches: dict[str, frozenset[str]] = {}
        self._idfs: dict[str | None, dict[str, float]] = {}
        self._costs: dict[str | None, dict[str, float]] = {}
        self._corrections: dict[str, str] = {}
        self.drugs = DrugTable(conn, self.synonyms.drug_readings)
        self.pcs = PcsBuilder(conn)
        self.external = ExternalCauseResolver(conn)
        self.long_term = LongTermUse(self.drugs.generic, self.drugs.poisonings)
        self.history = HistoryCodes(conn)
        self.pregnancy = InPregnancy(conn)
        self.morphology = Morphology(conn, self.synonyms.terms)
        self._hcpcs: HcpcsResolver | None = None
        self._main_terms: frozenset[str] | None = None
        # Whole searches, newest last: coders ask about the same conditions again and
        # again. Kept with the data, so a new release starts afresh.
        self.answers: OrderedDict[tuple[str, str | None], list[SearchHit]] = OrderedDict()
        self.concepts: dict[str, list[frozenset[str]]] = {}  # CodeSearch.concepts, remembered

    @property
    def hcpcs(self) -> HcpcsResolver:
        """The HCPCS resolver, built on first use: most searches never need it."""
        if self._hcpcs is None:
            self._hcpcs = HcpcsResolver(
                self.conn,
                self.synonyms.terms,
                self._rewritten,
                self.brand,
                self.synonyms.equivalents,
            )
        return self._hcpcs

    # -- query analysis ---------------------------------------------------------------

    def queries(self, text: str, system: str | None) -> list[_Query]:
        """The readings of TEXT: one, or one per meaning of an ambiguous abbreviation."""
        words = self._unglued(_words(text))
        readings: list[tuple[list[str], float]] = [([], 0.0)]
        factors: dict[str, float] = {}
        i = 0
        while i < len(words):
            if known := self._known(words, i):
                options, size = known
                for option in options:
                    factors.update(_shares(option, size))
                i += size
            else:
                i += 1
                if words[i - 1].removesuffix("'s") in self.synonyms.ignore:
                    continue  # "pt's L hand"
                options = [self._rewritten(words[i - 1])]
            if len(options) == 1 or len(readings) >= _MAX_READINGS:
                readings = [([*r, options[0]], p) for r, p in readings]
            else:
                readings = [
                    ([*r, o], p + _READING_PENALTY * n)
                    for r, p in readings
                    for n, o in enumerate(options)
                ]
        for cue in _CAUSE_CUES:
            at = _find(words, cue)
            if at is not None:
                for token in analyze(" ".join(words[at + len(cue) :])):
                    base = token.lstrip(_MARKS)
                    factors[base] = factors.get(base, 1.0) * _CAUSE
        queries = [self._query(" ".join(r), system, p, factors) for r, p in readings]
        return [q for q in queries if q.concepts]

    def _known(self, words: list[str], at: int) -> tuple[list[str], int] | None:
        """The readings of the words at AT that a drug's name of several words ("Bicillin
        L-A", not "bicillin" and "la") or the synonyms know, with how many words they took."""
        if brand := self.brand(words, at):
            return [brand[0]], brand[1]
        for size in range(min(self.synonyms.longest, len(words) - at), 0, -1):
            if options := self.synonyms.terms.get(" ".join(words[at : at + size])):
                return options, size
        return None

    def _unglued(self, words: list[str]) -> list[str]:
        out = []
        for word in words:
            match = _GLUED.match(word)
            if match and word not in self.synonyms.terms and match[1] in self.synonyms.terms:
                out.extend(match.groups())
            else:
                out.append(word)
        return out

    def brand(self, words: list[str], at: int) -> tuple[str, int] | None:
        """A drug's name of several words at AT ("Bicillin L-A", "Kenalog-40") as its
        generic, with how many words it took; None where the words name no such drug."""
        if len(words[at]) < 4 or not self.drugs.generic(words[at].split("-")[0]):
            return None
        for size in (3, 2, 1):
            said = " ".join(words[at : at + size])
            _, *rest = re.split(r"[-\s]", said)
            if at + size > len(words) or not rest or any(len(w) > _SUFFIX for w in rest):
                continue  # a brand's suffix is short ("L-A", "XR", "40"): no "converting enzyme"
            # the drug-name lists spell one brand several ways ("bicillin cr", "c-r")
            for name in (said.replace("-", ""), said.replace("-", " "), said):
                if generic := self.drugs.generic(name):
                    return generic, size
        brand, _, strength = words[at].partition("-")
        if strength.isdigit():
            # "Kenalog-10": a strength the lists do not name
            return f"{self.drugs.generic(brand)} ({strength})", 1
        return None

    def _rewritten(self, word: str) -> str:
        """A word the synonyms do not know, spelled as the indexed text spells it."""
        generic = self.drugs.generic(word) if len(word) >= 4 else None
        if generic:
            # "Decadron": the generic the HCPCS descriptors name; the brand still counts
            # where an entry has it (the Table of Drugs lists some brands).
            return f"{generic} ({word})"
        parts = word.split("-")
        if len(parts) > 1 and all(p.isalpha() for p in parts):
            joined = "".join(parts)
            # a word some entry spells whole, a prefixed one ("non-sterile") or a HCPCS
            # descriptor's ("semi-electric"); not two words a few index entries happen to
            # hyphenate ("late-onset": late onset)
            glued = stem(joined)
            whole = joined in self.vocabulary or parts[0] in _PREFIXES or self._df(glued, HCPCS)
            if whole and glued in self.df[None]:
                # "pre-diabetic" -> "prediabetic": the parts still count, a little.
                return joined + "".join(f" ({p})" for p in parts)
            return " ".join(self._corrected(p) for p in parts)
        return self._corrected(word)

    def _corrected(self, word: str) -> str:
        """WORD, or the indexed word it is most likely a misspelling of. A word of four
        letters is everyday English more often than a misspelling ("came" is not CALME)."""
        if not word.isalpha() or len(word) < _CORRECTED or word in self.vocabulary:
            return word
        corrected = self._corrections.get(word)
        if corrected is None:
            corrected = self._corrections[word] = self._correction(word)
        return corrected

    def _correction(self, word: str) -> str:
        found = process.extract(word, self.words, scorer=fuzz.ratio, score_cutoff=84, limit=10)
        if len(word) < 7:
            # A short word is too easily another word ("chole" -> "hole"): misspellings
            # keep their first letter.
            found = [f for f in found if f[0][0] == word[0] and f[1] >= 88]
        df = self.df[None].get(stem(word), 0)
        # An inflection the index does not spell out ("hypothyroid", "tripped") stays,
        # unless a far more common word is a letter away ("migrane": migrans, migraine).
        close = [f for f in found if f[1] >= _CLOSE and self.vocabulary[f[0]] > _COMMONER * df]
        if df and not close:
            return word
        candidates = close or found
        if not candidates:
            return word
        # Among near-equal spellings the common word wins ("osteoperosis" is osteoporosis,
        # not osteopetrosis).
        top = max(f[1] for f in candidates)
        return max(
            (f for f in candidates if f[1] >= top - 5),
            key=lambda f: (self.vocabulary[f[0]], f[1]),
        )[0]

    def _query(
        self, text: str, system: str | None, penalty: float, factors: dict[str, float]
    ) -> _Query:
        tokens = analyze(text)
        wants_encounter = any(t.lstrip(_MARKS) in _INTENT for t in tokens)
        concepts: list[_Concept] = []
        seen: set[str] = set()
        # "HIV" asks for "human immunodeficiency virus [HIV]" without needing its words.
        spelled = frozenset(s for t in tokens for s in self.spelled_out.get(t, ()))
        # "humerus" says the arm ("shaft of humerus, left arm") without the word
        implied = frozenset(
            s for t in tokens for s in self.synonyms.implied.get(t.lstrip(_MARKS), ())
        )
        for token in tokens:
            soft = token[0] in "+^"
            token = token.lstrip("+^")
            if token in seen or (token == _ENCOUNTER and wants_encounter):
                continue
            seen.add(token)
            negated = token.startswith("~")
            base = token.lstrip("~")
            alternatives = self.synonyms.equivalents.get(base, frozenset({base})) | self._near(base)
            if negated:
                alternatives = frozenset("~" + a for a in alternatives)
            if base in _INTENT:
                weight = _INTENT_WEIGHT * (_HEALING if base == _HEAL else 1.0)
            else:
                known = [a for a in alternatives if self._df(a.lstrip("~"), system)]
                if not known:
                    continue  # no entry has it: it cannot tell entries apart
                weight = max(self._idf(a.lstrip("~"), system) for a in known)
                weight *= self.synonyms.emphasis.get(base, 1.0) * factors.get(base, 1.0)
            concepts.append(_Concept(alternatives, weight * (_SOFT if soft else 1.0), negated))
        return _Query(concepts, penalty, spelled | implied)

    def _near(self, base: str) -> frozenset[str]:
        """Indexed stems a vowel off BASE: "hypoxi"/"hypox", "emboli"/"embol"."""
        if len(base) < 5 or not base.isalpha() or base in self.df[None]:
            return frozenset()
        near = {base + v for v in _VOWELS}
        if base[-1] in _VOWELS:
            near.add(base[:-1])
        return frozenset(s for s in near if len(s) >= 5 and s in self.df[None])

    def _df(self, term: str, system: str | None) -> int:
        return self.df.get(system, {}).get(term, 0)

    def _idf(self, term: str, system: str | None) -> float:
        cache = self._idfs.setdefault(system, {})
        idf = cache.get(term)
        if idf is None:
            n = self.docs.get(system, 0)
            idf = cache[term] = min(math.log(1 + n / (self._df(term, system) + 0.5)), _IDF_CAP)
        return idf

    def _score(self, query: _Query, bag: _Bag, system: str | None) -> float:
        """Share of the query an entry covers, less what it adds that was not asked."""
        total = query.total
        present = bag.present
        matched = conflict = 0.0
        for concept in query.concepts:
            if not present.isdisjoint(concept.alternatives):
                matched += concept.weight
            elif concept.negated:
                if any(a[1:] in bag.essential for a in concept.alternatives):
                    conflict += concept.weight
                else:
                    # "asthma, no status asthmaticus": an entry that does not have what the
                    # query denies fits it, if less surely than one that denies it too.
                    matched += _ABSENT * concept.weight
            elif bag.negated and any("~" + a in bag.negated for a in concept.alternatives):
                conflict += concept.weight
        extra = self._extra(bag.essential - query.asked, system)
        extra += _SEE * self._extra(bag.see - bag.essential - query.asked, system)
        unasked = min(len(bag.negated - query.asked), 3) * _UNASKED_NEGATION
        rambling = max(0, len(bag.essential) - _WORDY) * _WORDY_COST
        return (
            matched / total
            - _EXTRA * extra / (total + _SATURATION * extra)
            - _CONFLICT * conflict / total
            - unasked
            - rambling
        )

    def _extra(self, unasked: set[str], system: str | None) -> float:
        costs = self._costs.get(system)
        if costs is None:
            costs = self._costs[system] = {}
        cost = 0.0
        for term in unasked:
            found = costs.get(term)
            if found is None:
                found = costs[term] = self._cost(term, system)
            cost += found
        return cost

    def _cost(self, term: str, system: str | None) -> float:
        """What an entry's word the query did not ask for costs it."""
        if term in _RESIDUAL:
            return _RESIDUAL_COST
        if term in _NEUTRAL:
            return 0.0
        return self._idf(term, system) * self.synonyms.emphasis.get(term, 1.0)

    # -- ranking ----------------------------------------------------------------------

    def rank(
        self, query: _Query, system: str | None, column: bool = True
    ) -> dict[Key, tuple[float, int, str]]:
        """(system, code) -> (score, source rank, title) of each billable code found;
        COLUMN: the query says how a drug was involved."""
        scored: dict[Key, tuple[float, int, _Bag, float]] = {}
        for system_, code, source, tokens in self._candidates(query, system):
            bag = _indexed(tokens)
            cost = _NO_COLUMN if source == "drug" and not column else 0.0
            score = self._score(query, bag, system_) - cost
            rank = _SOURCE_RANK.get(source, 2)
            key = (system_, code)
            if key not in scored or (score, -rank) > (scored[key][0], -scored[key][1]):
                scored[key] = (score, rank, bag, cost)

        # Complete the entries by what they could reach: a header's title may lack the
        # words one of its codes has ("O13" -> "..., second trimester"). Per code set:
        # "drainage of left lower lung lobe" must not crowd out the pneumonia codes still to
        # be completed (PCS titles go when no procedure was asked).
        def reach(kv: tuple[Key, tuple[float, int, _Bag, float]]) -> tuple[float, int]:
            return self._reachable(query, kv[0], kv[1][2], kv[1][0]), -kv[1][1]

        diagnoses = [kv for kv in scored.items() if kv[0][0] == ICD10CM]
        others = [kv for kv in scored.items() if kv[0][0] != ICD10CM]
        top = heapq.nlargest(_COMPLETED, diagnoses, key=reach)
        top += heapq.nlargest(_COMPLETED_OTHER, others, key=reach)
        found: dict[Key, tuple[float, int, str]] = {}
        for (system_, code), (_, rank, bag, cost) in top:
            completed = self._complete(query, system_, code, bag)
            if completed is None:
                continue
            full, title, score = completed
            score -= cost + query.penalty + (_OTHER_SYSTEM if system_ != ICD10CM else 0.0)
            key = (system_, full)
            if key not in found or (score, -rank) > (found[key][0], -found[key][1]):
                found[key] = (score, rank, title)
        return found

    def _candidates(self, query: _Query, system: str | None) -> list[tuple[str, str, str, str]]:
        """Entries holding the query's selective words, most of them first."""
        concepts = sorted(query.concepts, key=lambda c: self._concept_df(c, system))
        selective = [c for c in concepts if self._concept_df(c, system) <= _COMMON]
        weights: dict[int, float] = {}
        for concept in selective or concepts[:1]:
            lists = self._postings(concept.alternatives, system)
            ids: Iterable[int] = lists[0] if len(lists) == 1 else dict.fromkeys(chain(*lists))
            get = weights.get
            for doc_id in ids:
                weights[doc_id] = get(doc_id, 0.0) + concept.weight
        if not weights:
            return []
        # Postings list short entries first, and nlargest keeps that order among ties.
        best = heapq.nlargest(_CANDIDATES, weights, key=weights.__getitem__)
        marks = ",".join("?" * len(best))
        return self.conn.execute(
            f"SELECT system, code, source, tokens FROM search_docs WHERE id IN ({marks})", best
        ).fetchall()

    def _concept_df(self, concept: _Concept, system: str | None) -> int:
        return sum(self._df(a, system) for a in concept.alternatives)

    def _postings(self, terms: Iterable[str], system: str | None) -> list:
        terms = list(terms)
        sql = f"SELECT ids FROM search_postings WHERE term IN ({','.join('?' * len(terms))})"
        args = terms
        if system:
            sql += " AND system = ?"
            args = [*terms, system]
        return [unpack(blob) for (blob,) in self.conn.execute(sql, args)]

    def _reachable(self, query: _Query, key: Key, bag: _Bag, score: float) -> float:
        """SCORE, raised by the query words a header's codes could still cover."""
        system, code = key
        if system != ICD10CM:
            return score
        node = self.tree().get(code)
        if node is None or node.billable:
            return score
        below = self._reach(node)
        present = bag.present
        gain = sum(
            c.weight
            for c in query.concepts
            if not c.alternatives & present and c.alternatives & below
        )
        return score + gain / query.total

    def _reach(self, node: _Node) -> frozenset[str]:
        """Every word of the titles under NODE."""
        found = self._reaches.get(node.code)
        if found is None:
            tree = self.tree()
            found = frozenset(
                t.lstrip("~")
                for leaf in self._leaves(node)
                for t in _analyzed(tree[leaf].title).present
            )
            self._reaches[node.code] = found
        return found

    # -- completion -------------------------------------------------------------------

    def _complete(
        self, query: _Query, system: str, code: str, bag: _Bag
    ) -> tuple[str, str, float] | None:
        """The billable code an entry for CODE stands for, with its title and score; a
        completion adds the words its code's title has beyond the entry's code's."""
        if system != ICD10CM:
            found = self.title(system, code)
            if found is None or not found[1]:
                return None
            return code, found[0], self._score(query, bag, system)
        node = self.tree().get(code)
        if node is None:
            found = self.title(system, code)  # a 7th-character code
            if found is None or not found[1]:
                return None  # not in the loaded tabular: never suggest it
            return code, found[0], self._score(query, bag, system)
        final, guess = bag, False
        if bag.see:
            # A cross reference leads to its target's code: what that code's title says
            # beyond the entry counts too ("Neoplasm, pulmonary (see also Neoplasm, lung)"
            # -> C34.1, the upper lobe).
            final = bag | _as_see(_analyzed(node.title), bag)
        if not node.billable:
            chosen = self._best_leaf(query, node, bag)
            if chosen is None:
                return None
            leaf, guess = self.tree()[chosen[0]], chosen[1]
            final = final | _added(_analyzed(leaf.title), _analyzed(node.title))
            node = leaf
        code, title = node.code, node.title
        if not node.billable:
            seventh = self._seventh(query, node, final)
            if seventh is None:
                return None
            code, title, meaning = seventh
            final = final | _Bag(set(), meaning, set(), set())
        return code, title, self._score(query, final, system) - (_GUESS if guess else 0.0)

    def _best_leaf(self, query: _Query, root: _Node, bag: _Bag) -> tuple[str, bool] | None:
        """The descendant of ROOT (billable, or awaiting its 7th character) whose title
        best fits the query, and whether no query word decided it."""
        covered = bag.present
        best: tuple[float, int, str, float] | None = None
        least = math.inf
        for leaf in self._leaves(root):
            title = _analyzed(self.tree()[leaf].title)
            present = title.present
            gain = sum(c.weight for c in query.concepts if c.alternatives & present)
            conflict = sum(
                c.weight
                for c in query.concepts
                if (not c.negated and any("~" + a in title.negated for a in c.alternatives))
                or (c.negated and any(a[1:] in title.essential for a in c.alternatives))
            )
            cost = self._extra(title.essential - query.asked - covered, ICD10CM)
            value = gain - _EXTRA * cost - _CONFLICT * conflict
            unspecific = int(_UNSPECIFIED in title.essential)
            if best is None or (value, unspecific) > best[:2]:
                best = (value, unspecific, leaf, gain)
            least = min(least, gain)
        if best is None:
            return None
        return best[2], best[2] != root.code and best[3] <= least

    def _leaves(self, root: _Node) -> list[str]:
        tree = self.tree()
        out: list[str] = []
        stack = [root.code]
        while stack and len(out) < 2000:
            node = tree[stack.pop()]
            if node.billable or (not node.children and node.kind == "code"):
                out.append(node.code)
            else:
                stack.extend(reversed(node.children))
        return out

    def _seventh(self, query: _Query, holder: _Node, bag: _Bag) -> tuple | None:
        """The 7th-character code under HOLDER that the query's encounter words pick
        (its code, title and meaning); the first (A: initial encounter, closed
        fracture) when they pick none."""
        options = self._sevenths.get(holder.code)
        if options is None:
            # A holder has no children of its own: its code range is its 7th characters.
            options = self.conn.execute(
                "SELECT code, title FROM codes WHERE system = ? AND code > ? AND code < ?"
                " AND billable = 1 ORDER BY code",
                (ICD10CM, holder.code, holder.code + "~"),
            ).fetchall()
            self._sevenths[holder.code] = options
        said = [c for c in query.concepts if not c.alternatives & bag.present]
        best = None
        for code, title in options:
            meaning = _analyzed(title[len(holder.title) :]).present
            meaning = {m.lstrip("~") for m in meaning}
            # The encounter words decide first: "closed, delayed union" of a humerus, whose
            # subsequent encounters do not say closed, is G, not A (initial, closed).
            gain = (
                sum(c.weight for c in said if c.alternatives & meaning & _INTENT),
                sum(c.weight for c in said if c.alternatives & meaning),
            )
            if best is None or gain > best[0]:
                best = (gain, code, title, meaning)
        return best[1:] if best else None

    def title(self, system: str, code: str) -> tuple[str, bool] | None:
        key = (system, code)
        if key not in self._titles:
            # billable in its release, and not ended since by the quarterly tables
            row = self.conn.execute(
                "SELECT title, billable AND (NOT EXISTS (SELECT 1 FROM code_validity v"
                " WHERE v.system = c.system AND v.code = c.code) OR EXISTS (SELECT 1 FROM"
                " code_validity v WHERE v.system = c.system AND v.code = c.code"
                " AND v.valid_to IS NULL)) FROM codes c WHERE system = ? AND code = ?",
                key,
            ).fetchone()
            self._titles[key] = (row[0], bool(row[1])) if row else None
        return self._titles[key]

    def in_trimester(self, code: str, title: str, trimester: str | None) -> tuple[str, str]:
        """The sibling of CODE for TRIMESTER where CODE's title leaves the trimester
        unspecified (O13.9 -> O13.3 for "third"); CODE itself otherwise."""
        if trimester is None or "unspecified trimester" not in title.lower():
            return code, title
        wanted = re.sub("unspecified trimester", f"{trimester} trimester", title, flags=re.I)
        row = self.conn.execute(
            "SELECT code, title FROM codes WHERE system = ? AND billable = 1 AND title = ?"
            " AND parent = (SELECT parent FROM codes WHERE system = ? AND code = ?)",
            (ICD10CM, wanted, ICD10CM, code),
        ).fetchone()
        return (row[0], row[1]) if row else (code, title)

    def main_terms(self) -> frozenset[str]:
        """Stems of the index's main terms (the first word of an entry's path)."""
        if self._main_terms is None:
            rows = self.conn.execute(
                "SELECT DISTINCT substr(text, 1, instr(text || ',', ',') - 1) FROM search_terms"
                " WHERE source IN ('index', 'eindex', 'drug', 'neoplasm')"
            )
            self._main_terms = frozenset(
                stem(word) for (term,) in rows for word in re.findall(r"[a-z]+", term.lower())
            )
        return self._main_terms

    def tree(self) -> dict[str, _Node]:
        """ICD-10-CM without its 7th-character codes: what completion walks."""
        if self._tree is None:
            rows = self.conn.execute(
                "SELECT c.code, c.title, c.billable, c.kind, c.parent FROM codes c"
                " LEFT JOIN codes p ON p.system = c.system AND p.code = c.parent"
                " WHERE c.system = ? AND (c.billable = 0 OR p.kind IS NULL"
                " OR p.kind != 'code' OR p.billable = 1) ORDER BY c.code",
                (ICD10CM,),
            ).fetchall()
            tree = {code: _Node(code, title, bool(b), kind) for code, title, b, kind, _ in rows}
            for code, *_, parent in rows:
                if parent in tree:
                    tree[parent].children.append(code)
            self._tree = tree
        return self._tree


def _as_see(title: _Bag, entry: _Bag) -> _Bag:
    """A code's words the entry did not say, weighed as a cross reference's words."""
    said = entry.essential | entry.optional | entry.see
    return _Bag(set(), set(), set(), title.essential - said)


def _added(title: _Bag, ancestor: _Bag) -> _Bag:
    """What a code's title says beyond its ancestor's: the words a completion adds."""
    said = ancestor.essential | ancestor.optional
    return _Bag(title.essential - said, title.optional - said, set(title.negated), set())


def _find(words: list[str], phrase: tuple[str, ...]) -> int | None:
    for i in range(len(words) - len(phrase) + 1):
        if tuple(words[i : i + len(phrase)]) == phrase:
            return i
    return None


def _shares(expansion: str, words: int) -> dict[str, float]:
    """Weight factors for the stems of an abbreviation's expansion: "MRSA" is one thing
    the customer said, not four, though its four words count more than one."""
    stems = {t for t in analyze(expansion) if t[0] not in _MARKS}
    if len(stems) <= words:
        return {}
    factor = (words + _SHARED * (len(stems) - words)) / len(stems)
    return dict.fromkeys(stems, factor)
