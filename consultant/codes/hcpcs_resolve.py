"""HCPCS Level II codes read from a coder's plain words: drug + dose + route, Medicare
services, DME and supplies by item and feature.

The general search scores an entry by how little it adds to the query, which suits
ICD-10-CM's terse titles but not HCPCS descriptors: "Injection, ketorolac tromethamine,
per 15 mg" adds four words to "Toradol 60 mg IM", and a screening G-code's descriptor
twenty to "screening colonoscopy average risk". So HCPCS is ranked again here, over
the codes valid in the newest quarter (long descriptors, or the I/OCE short ones for
codes added since the HCPCS file was loaded), by:

- coverage: the share of the phrase's words (read with the HCPCS coders' words of
  hcpcs_terms.toml first) a descriptor holds, with a light charge for what it adds;
  a descriptor's "without side rails" the phrase did not ask for is charged in full,
  since an item comes with its usual features unless the coder says otherwise;
- drugs: a descriptor with no route fits every route; one naming another route, or
  a manufacturer's product the phrase did not name, fits less; among dose siblings
  the stated dose picks the one whose amount it equals, then one it is a multiple of
  ("per 250 mg"), then one it fits under ("up to 10 mg");
- cues: "Medicare", "G code", a dose or a route say a HCPCS code is wanted.

The results join the general ranking (search.py) at their own score, so a phrase a
diagnosis fits better ("B12 deficiency") still leads with the diagnosis.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import sqlite3
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from consultant.codes.search_index import analyze, stem
from consultant.codes.systems import HCPCS

Key = tuple[str, str]
Hit = tuple[float, int, str]

# -- tuning (tests/data/search_eval_dev_procedures.tsv) -----------------------------------
_IDF_CAP = 9.0
_UNKNOWN_WEIGHT = 9.0  # a phrase word no HCPCS descriptor has: it covers nothing
_SOFT = 0.35  # a rewrite's word in parentheses: a hint
_SHARED = 0.5  # each further word of a rewrite counts this much
_INDICATION = 0.5
_EXTRA = 0.3  # charge for a descriptor's words the phrase did not ask for
_SATURATION = 0.6
_OPTIONAL_EXTRA = 0.5  # a descriptor's parenthesized word costs this share
_CONFLICT = 0.8
_OTHER_NUMBER = 0.5
_UNASKED_NEGATION = 2.0  # a descriptor's "without X" the phrase did not say
_ABSENT = 0.75  # a descriptor lacking what the phrase denies fits it, less surely
_UNSTATED_ROUTE = 0.85  # a route the descriptor does not restrict
_OTHER_ROUTE = 0.5  # conflict share of a route the descriptor names otherwise
_DOSE_EXACT = 0.06
_DOSE_MULTIPLE = 0.03
_DOSE_MISFIT = 0.05
_NON_MEDICARE = 0.01  # S-codes (private payers) after the Medicare code on a tie
_CUE_BONUS = 0.08  # "Medicare", "J code", a dose or a route: the phrase asks for HCPCS
_MIN_SCORE = 0.35
_FULL = 0.85  # a code covering this share of the phrase is what it is about
_DEFER = 0.9  # a partial code ranks at most this share of the best diagnosis...
_DEFER_FROM = 0.3  # ...when that diagnosis fits this well
_ENCOUNTER = 0.5  # a Z code fitting this well leads a phrase naming no billing cue
_UNREAD = 0.8  # a HCPCS code the general search found and the resolver did not
_KEPT = 12
_CLIPPED = 8  # letters from which a short descriptor's clipped word is the one it begins
_SELECTIVE = 600  # a word in more descriptors selects no candidates on its own
_CANDIDATES = 600

# Quality-measure reporting codes: statements about a patient, not services or items.
_MEASURE = re.compile(r"^(?:G8|G9|M[01])")

# Billing words that ask for a code, never a descriptor's word.
_CUE_WORDS = frozenset(
    stem(w)
    for w in (
        "code",
        "codes",
        "hcpcs",
        "medicare",
        "medicaid",
        "billing",
        "bill",
        "billed",
        "pt",
        "patient",
        "product",
        "j",
        "g",
        "q",
        "h",
        "k",
        "l",
        "e",
        "a",
        "s",
        "t",
    )
)
_CUE = re.compile(
    r"\b(?:medicare|medicaid|hcpcs|level\s+ii|[jgqeaklhst][\s-]?codes?|dme|supply\s+code)\b",
    re.I,
)

# Routes as descriptors and coders word them.
_ROUTES: dict[str, tuple[str, ...]] = {
    "im": ("im", "intramuscular", "intramuscularly"),
    "iv": ("iv", "ivp", "intravenous", "intravenously", "drip", "rider", "piggyback", "ivpb"),
    "sc": ("sc", "sq", "subq", "sub-q", "subcut", "subcutaneous", "subcutaneously"),
    "oral": ("oral", "po", "orally", "tablet", "tablets", "capsule", "capsules"),
    "inhalation": ("inhalation", "inhaled", "neb", "nebulizer", "nebulized", "respules"),
    "intravitreal": ("intravitreal",),
    "intraocular": ("intraocular", "ophthalmic"),
    "intrathecal": ("intrathecal",),
    "intra-articular": ("intra-articular", "intraarticular"),
    "intradermal": ("intradermal", "id"),
    "nasal": ("nasal", "intranasal"),
    "topical": ("topical",),
    "implant": ("implant",),
    "intravesical": ("intravesical",),
}
_PARENTERAL = frozenset({"im", "iv", "sc"})
_ROUTE_OF: dict[str, str] = {stem(w): r for r, ws in _ROUTES.items() for w in ws}
_ROUTE_WORD = re.compile(
    r"\b("
    + "|".join(sorted((re.escape(w) for ws in _ROUTES.values() for w in ws), key=len, reverse=True))
    + r")\b",
    re.I,
)
# Words that only say a drug is given: every drug descriptor fits them.
_GIVEN = frozenset(
    stem(w)
    for w in (
        "injection",
        "inject",
        "injectable",
        "inj",
        "shot",
        "infusion",
        "infuse",
        "push",
        "dose",
        "vial",
        "administered",
        "drug",
        "medication",
        "med",
        "solution",
    )
)
# Descriptor words a drug code may add at no cost.
_DRUG_NEUTRAL = frozenset(
    stem(w)
    for w in (
        "injection",
        "inj",
        "infusion",
        "per",
        "mg",
        "mcg",
        "microgram",
        "micrograms",
        "milligram",
        "gram",
        "grams",
        "unit",
        "units",
        "ml",
        "cc",
        "iu",
        "dose",
        "up",
        "hydrochloride",
        "hcl",
        "sodium",
        "sulfate",
        "fda",
        "approved",
        "final",
        "product",
        "non",
        "compounded",
        "administered",
        "through",
        "dme",
        "form",
        "concentrated",
        "solution",
        "use",
        "sterile",
    )
)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_HEAD = re.compile(r"[,;:(]")
# ...and the patients a drug is given to: "ESRD on dialysis" asks for no epoetin, where
# "(for non-ESRD use)" still tells two epoetin codes apart
_USED_WITH = re.compile(
    r"\b(?:for use with|used with|for use in|for use on)\b|\((?=for esrd on dialysis\))", re.I
)
_CONTEXT = 0.6  # a phrase word only the item's "used with" part has: an accessory
_HEAD_EXTRA = 2.0  # an unasked word of the item's name costs this many times more
_NUMBER_WORDS = {
    stem(w): str(i)
    for i, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
}
_PHRASE_WORD = re.compile(r"[a-z0-9]+(?:[/'.\-][a-z0-9]+)*/?")
HCPCS_TERMS_FILE = Path(__file__).with_name("hcpcs_terms.toml")

# A dose as coders write it ("60 mg", "1 gram", "5,000 units", "1000 cc", "2 g").
_UNITS = {
    "mg": ("mg", 1.0),
    "mgs": ("mg", 1.0),
    "milligram": ("mg", 1.0),
    "milligrams": ("mg", 1.0),
    "g": ("mg", 1000.0),
    "gm": ("mg", 1000.0),
    "gram": ("mg", 1000.0),
    "grams": ("mg", 1000.0),
    "mcg": ("mg", 0.001),
    "microgram": ("mg", 0.001),
    "micrograms": ("mg", 0.001),
    "unit": ("unit", 1.0),
    "units": ("unit", 1.0),
    # penicillin G's doses: "Bicillin L-A 2.4 million units"
    "million units": ("unit", 1_000_000.0),
    "million unit": ("unit", 1_000_000.0),
    "u": ("unit", 1.0),
    "iu": ("unit", 1.0),
    "i.u": ("unit", 1.0),
    "meq": ("meq", 1.0),
    "ml": ("ml", 1.0),
    "cc": ("ml", 1.0),
    "l": ("ml", 1000.0),
    "liter": ("ml", 1000.0),
    "liters": ("ml", 1000.0),
    "litre": ("ml", 1000.0),
    "mci": ("mci", 1.0),
    "millicurie": ("mci", 1.0),
    "millicuries": ("mci", 1.0),
}
_AMOUNT = (
    r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*("
    + "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
    + r")\b\.?"
)
_DOSE = re.compile(_AMOUNT, re.I)
_PER = re.compile(r"\b(per|up\s+to)\s+" + _AMOUNT, re.I)
_PER_UNIT = re.compile(r"\(\s*" + _AMOUNT + r"\s*=\s*1\s*unit\s*\)", re.I)
# "1 liter", "500": an IV fluid's volume needs no unit word.
_SHORT_FORMS = (
    (re.compile(r"\binj\b\.?,?", re.I), "injection "),
    (re.compile(r"\bw/o\b", re.I), "without "),
    (re.compile(r"\bw/", re.I), "with "),
    # The reference product's "excludes biosimilar" ("ex bio" in the I/OCE's short
    # descriptors) is a billing note, not a word a coder asks for; a biosimilar is named by
    # its generic's four-letter suffix ("pegfilgrastim-bmez"), with or without the word.
    (re.compile(r"\b(?:excludes biosimilar|ex bio)\b,?", re.I), ""),
    (re.compile(r"\b([a-z]{5,}-[a-z]{4})\b(?!,? biosimilar)"), r"\1 biosimilar"),
)


@dataclass(frozen=True)
class Amount:
    """A descriptor's billing unit: AMOUNT of UNIT, 'per' it, 'up to' it, or a fixed dose."""

    value: float
    unit: str
    kind: str  # "per", "up to", "fixed"


@dataclass
class _Entry:
    code: str
    title: str
    essential: frozenset[str]
    optional: frozenset[str]
    negated: frozenset[str]  # stems the descriptor denies, without the "~"
    drug: bool
    routes: frozenset[str]
    amount: Amount | None
    head: frozenset[str]  # the item the descriptor names: its words before the first comma
    context: frozenset[str]  # words only of what it is used with ("..., used with CPAP")
    # what its words would cost unasked, summed once (essential, optional, negated)
    unasked: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def present(self) -> frozenset[str]:
        return self.essential | self.optional


@dataclass(frozen=True)
class _Concept:
    alternatives: frozenset[str]
    weight: float
    negated: bool = False
    soft: bool = False  # a hint (a brand beside its generic): not missing when absent
    indication: bool = False  # what the item is for ("... for CPAP")


def _amount(title: str) -> Amount | None:
    """The billing unit a drug descriptor names, if any."""
    if match := _PER_UNIT.search(title):
        unit, factor = _UNITS[match[2].lower()]
        return Amount(float(match[1].replace(",", "")) * factor, unit, "per")
    found = list(_PER.finditer(title))
    if found:
        match = found[-1]
        unit, factor = _UNITS[match[3].lower()]
        kind = "per" if match[1].lower() == "per" else "up to"
        return Amount(float(match[2].replace(",", "")) * factor, unit, kind)
    found = list(_DOSE.finditer(title))
    if found:
        match = found[-1]
        unit, factor = _UNITS[match[2].lower()]
        return Amount(float(match[1].replace(",", "")) * factor, unit, "fixed")
    return None


def dose_fit(dose: tuple[float, str], amount: Amount | None) -> float:
    """How well a stated dose picks a descriptor's billing unit: >0 fits, <0 does not."""
    if amount is None or amount.unit != dose[1] or amount.value <= 0:
        return 0.0
    value = dose[0]
    if math.isclose(value, amount.value, rel_tol=1e-6):
        return _DOSE_EXACT
    ratio = value / amount.value
    if amount.kind == "up to" and value < amount.value:
        return _DOSE_MULTIPLE
    if ratio >= 1 and math.isclose(ratio, round(ratio), rel_tol=1e-6):
        # "per 250 mg" bills 4 units for 1 g; a fixed "40 mg" code bills 2 for 80 mg,
        # but a sibling of exactly 80 mg (which returned _DOSE_EXACT) is the answer.
        return _DOSE_MULTIPLE if amount.kind != "fixed" else _DOSE_MULTIPLE / 2
    return -_DOSE_MISFIT


class HcpcsResolver:
    """The HCPCS codes valid now, analyzed once per database, and the ranking over them."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        terms: dict[str, list[str]],
        rewrite: Callable[[str], str],
        brand: Callable[[list[str], int], tuple[str, int] | None],
        equivalents: dict[str, frozenset[str]],
    ) -> None:
        # HCPCS coders' words first, then the shared abbreviations ("pt", "hx", "w/c").
        self.terms: dict[str, str] = {k: v[0] for k, v in terms.items() if v}
        self.hcpcs_terms = _hcpcs_terms()
        self.terms.update(self.hcpcs_terms)
        self.longest = max((k.count(" ") + 1 for k in self.terms), default=1)
        self.rewrite = rewrite
        self.brand = brand
        self.equivalents = equivalents
        self.entries: list[_Entry] = []
        self.drugs: dict[str, bool] = {}  # code -> whether it is a drug's
        self.postings: dict[str, list[int]] = {}
        rows = [r for r in _current_titles(conn) if r[1] and not _MEASURE.match(r[0])]
        for code, title, short in rows:
            if not short:
                self._add(code, title, ())
        # A short descriptor abbreviates ("Inj, methylpred acetate 1 mg"): its clipped
        # word stands for the long descriptors' words it begins.
        vocabulary = sorted(self.postings)
        for code, title, short in rows:
            if short:
                self._add(code, title, vocabulary)
        n = len(self.entries)
        self.idf = {
            t: min(math.log(1 + n / (len(ids) + 0.5)), _IDF_CAP) for t, ids in self.postings.items()
        }
        # Scoring subtracts the few words a phrase asks from these sums, instead of adding
        # up every unasked word of every candidate for every search.
        for entry in self.entries:
            entry.unasked = (
                sum(self._essential_cost(entry, t) for t in entry.essential),
                sum(self._optional_cost(entry, t) for t in entry.optional),
                sum(self.idf.get(t, 0.0) for t in entry.negated),
            )

    def _essential_cost(self, entry: _Entry, term: str) -> float:
        if (entry.drug and term in _DRUG_NEUTRAL) or _NUMBER.match(term) or term in _ROUTE_OF:
            return 0.0
        return self.idf.get(term, 0.0) * (_HEAD_EXTRA if term in entry.head else 1.0)

    def _optional_cost(self, entry: _Entry, term: str) -> float:
        if (entry.drug and term in _DRUG_NEUTRAL) or _NUMBER.match(term):
            return 0.0
        return self.idf.get(term, 0.0)

    def _add(self, code: str, title: str, vocabulary: list[str] | tuple[()]) -> None:
        text = title
        for pattern, replacement in _SHORT_FORMS:
            text = pattern.sub(replacement, text)
        tokens = analyze(text)
        essential = {t for t in tokens if t[0] not in "+^~"}
        optional = {t[1:] for t in tokens if t[0] in "+^"}
        optional.update(_NUMBER_WORDS[t] for t in essential if t in _NUMBER_WORDS)
        head = {t for t in analyze(_HEAD.split(text, maxsplit=1)[0]) if t[0] not in "+^~"}
        parts = _USED_WITH.split(text, maxsplit=1)
        context = set()
        if len(parts) > 1:
            context = {t.lstrip("+^~") for t in analyze(parts[1])}
            context -= {t.lstrip("+^~") for t in analyze(parts[0])}
        for token in list(essential) if vocabulary else ():
            if len(token) >= 4 and token.isalpha() and token not in self.postings:
                at = bisect.bisect_left(vocabulary, token)
                longer = list(itertools.takewhile(token.__le__, vocabulary[at : at + 4]))
                longer = [v for v in longer if v.startswith(token)]
                if (
                    longer
                    and len(token) >= _CLIPPED
                    and all(v.startswith(longer[0]) for v in longer)
                ):
                    # "pegfilgrast": a drug's name cut short is that name (the longer
                    # words are its biosimilars' glued names, "pegfilgrastimjmdb")
                    essential.discard(token)
                    essential.add(longer[0])
                elif 0 < len(longer) <= 3:
                    optional.update(longer)
        negated = {t[1:] for t in tokens if t[0] == "~"}
        amount = _amount(text)
        lowered = text.lower()
        drug = amount is not None and (
            code[0] in "JQSCA" or lowered.startswith(("injection", "infusion"))
        )
        routes = frozenset(_ROUTE_OF[t] for t in essential | optional if t in _ROUTE_OF)
        entry = _Entry(
            code,
            title,
            frozenset(essential),
            frozenset(optional - essential),
            frozenset(negated),
            drug,
            routes if drug else frozenset(),
            amount if drug else None,
            frozenset(head),
            frozenset(context),
        )
        index = len(self.entries)
        self.entries.append(entry)
        self.drugs[code] = drug
        for token in essential | optional | negated:
            self.postings.setdefault(token, []).append(index)

    # -- the phrase -----------------------------------------------------------------------

    def _words(self, text: str, terms: dict[str, str]) -> list[tuple[str, int]]:
        """TEXT rewritten in descriptor words by TERMS, each part with the number of the
        phrase's words it stands for."""
        words = _split(text)
        out: list[tuple[str, int]] = []
        i = 0
        while i < len(words):
            if brand := self.brand(words, i):
                out.append(brand)  # "Bicillin L-A": the generic, all its words
                i += brand[1]
                continue
            for size in range(min(self.longest, len(words) - i), 0, -1):
                value = terms.get(" ".join(words[i : i + size]))
                if value is not None:
                    out.append((value, size))
                    i += size
                    break
            else:
                word = words[i]
                # A descriptor's own word (a brand HCPCS names, a drug added since the
                # HCPCS file) is never respelled as another indexed word.
                out.append((word if stem(word) in self.postings else self.rewrite(word), 1))
                i += 1
        return out

    def readings(self, text: str) -> list[list[_Concept]]:
        """TEXT read with the HCPCS coders' words and the shared synonyms, and with the
        HCPCS words alone (the shared ones lean to the diagnosis: "wellness visit")."""
        found = [self.concepts(text, self.terms), self.concepts(text, self.hcpcs_terms)]
        return [c for i, c in enumerate(found) if c and c not in found[:i]]

    def concepts(self, text: str, terms: dict[str, str]) -> list[_Concept]:
        """The phrase's words as weighted concepts over the HCPCS descriptors."""
        concepts: list[_Concept] = []
        seen: set[str] = set()
        factors: dict[str, float] = {}
        glue: dict[str, set[str]] = {}  # "chin strap" -> "chinstrap"
        purposes: set[str] = set()
        words = self._words(text, terms)
        indication = False
        for i, (part, size) in enumerate(words):
            if part == "for" and i > 0:
                indication = True  # "naropin for nerve block": what it is for counts less
            analyzed = analyze(part)
            if indication:
                factors.update((t.lstrip("+^~"), _INDICATION) for t in analyzed)
                purposes.update(t.lstrip("+^~") for t in analyzed)
            if i + 1 < len(words) and (glued := stem(part + words[i + 1][0])) in self.postings:
                glue[glued] = {t.lstrip("+^~") for t in analyzed} | {
                    t.lstrip("+^~") for t in analyze(words[i + 1][0])
                }
            stems = {t.lstrip("+^~") for t in analyzed if t[0] not in "+^"}
            if len(stems) > size:
                # "b12" -> "vitamin b-12 cyanocobalamin" is one thing the coder said.
                factor = (size + _SHARED * (len(stems) - size)) / len(stems)
                factors.update(dict.fromkeys(stems, factor))
        # Analyzed whole, so "without" reaches the word after it.
        tokens = analyze(" ".join(part for part, _ in words))
        for token in tokens:
            soft = token[0] in "+^"
            token = token.lstrip("+^")
            negated = token.startswith("~")
            base = token.lstrip("~")
            if base in seen or base in _CUE_WORDS:
                continue
            seen.add(base)
            alternatives = set(self.equivalents.get(base, frozenset())) | {base}
            alternatives |= {g for g, parts in glue.items() if base in parts}
            if base in _NUMBER_WORDS:
                alternatives.add(_NUMBER_WORDS[base])  # "two piece" is "2 piece"
            known = [self.idf[a] for a in alternatives if a in self.idf]
            weight = max(known) if known else _UNKNOWN_WEIGHT
            weight *= factors.get(base, 1.0)
            concepts.append(
                _Concept(
                    frozenset(alternatives),
                    weight * (_SOFT if soft else 1.0),
                    negated,
                    soft,
                    base in purposes,
                )
            )
        return concepts

    # -- ranking --------------------------------------------------------------------------

    def rank(self, text: str) -> dict[Key, tuple[float, int, str, bool]]:
        """(HCPCS, code) -> (score, 0, title, whether the phrase is all about it) for the
        codes TEXT best describes."""
        doses = [
            (float(m[1].replace(",", "")) * _UNITS[m[2].lower()][1], _UNITS[m[2].lower()][0])
            for m in _DOSE.finditer(text)
        ]
        plain = _DOSE.sub(" ", text)
        routes = {_ROUTE_OF[stem(m[1].lower())] for m in _ROUTE_WORD.finditer(plain)}
        # A dose or a parenteral route asks for the drug's code, not a poisoning.
        cue = bool(_CUE.search(text) or doses or routes & _PARENTERAL)
        scored: dict[Key, tuple[float, int, str, bool]] = {}
        for concepts in self.readings(plain):
            total = sum(c.weight for c in concepts)
            asked = frozenset(a for c in concepts for a in c.alternatives)
            for index in self._candidates(concepts):
                entry = self.entries[index]
                score, covered = self._score(entry, concepts, total, asked)
                if entry.drug and doses:
                    score += max(dose_fit(d, entry.amount) for d in doses)
                if entry.code[0] == "S":
                    score -= _NON_MEDICARE
                if cue:
                    score += _CUE_BONUS
                key = (HCPCS, entry.code)
                if score >= _MIN_SCORE and (key not in scored or score > scored[key][0]):
                    scored[key] = (score, 0, entry.title, cue or covered >= _FULL)
        kept = sorted(scored.items(), key=lambda kv: (-kv[1][0], kv[0][1]))[:_KEPT]
        return dict(kept)

    def _candidates(self, concepts: list[_Concept]) -> Iterable[int]:
        weights: dict[int, float] = {}
        usable = [c for c in concepts if not c.alternatives <= _GIVEN]
        lists = [
            (c, [self.postings[a] for a in c.alternatives if a in self.postings]) for c in usable
        ]
        selective = [
            (c, ls) for c, ls in lists if ls and sum(len(x) for x in ls) <= _SELECTIVE
        ] or sorted((x for x in lists if x[1]), key=lambda x: sum(len(y) for y in x[1]))[:1]
        for concept, postings in selective:
            for ids in postings:
                for index in ids:
                    weights[index] = weights.get(index, 0.0) + concept.weight
        if len(weights) <= _CANDIDATES:
            return weights
        return sorted(weights, key=weights.__getitem__, reverse=True)[:_CANDIDATES]

    def _score(
        self,
        entry: _Entry,
        concepts: list[_Concept],
        total: float,
        asked: frozenset[str],
    ) -> tuple[float, float]:
        """The entry's score, and the share of the phrase it covers (hints aside)."""
        matched = conflict = hinted = 0.0
        hints = sum(c.weight for c in concepts if c.soft)
        # "heated CPAP tubing" names the accessory; "bedside commode" not the footrest.
        accessory = not entry.head.isdisjoint(asked)
        present = entry.present
        for concept in concepts:
            alternatives = concept.alternatives
            if entry.drug and alternatives <= _GIVEN:
                matched += concept.weight
            elif entry.drug and any(a in _ROUTE_OF for a in alternatives):
                route = next(_ROUTE_OF[a] for a in alternatives if a in _ROUTE_OF)
                if route in entry.routes:
                    matched += concept.weight
                elif not entry.routes:
                    matched += _UNSTATED_ROUTE * concept.weight
                else:
                    conflict += _OTHER_ROUTE * concept.weight
            elif concept.negated:
                bare = {a.lstrip("~") for a in alternatives}
                if bare & entry.negated:
                    matched += concept.weight
                elif bare & present:
                    conflict += concept.weight
                else:
                    matched += _ABSENT * concept.weight
            elif hit := alternatives & present:
                if concept.indication or accessory or not hit <= entry.context:
                    matched += concept.weight
                else:
                    matched += _CONTEXT * concept.weight
                if concept.soft:
                    hinted += concept.weight
            elif alternatives & entry.negated:
                conflict += concept.weight
            elif any(_NUMBER.match(a) for a in alternatives) and any(
                _NUMBER.match(t) for t in entry.essential
            ):
                # "level 2" against a descriptor's "level 1": another number, not a gap
                conflict += _OTHER_NUMBER * concept.weight
        idf = self.idf
        essential, optional, negated = entry.unasked
        extra = essential - sum(self._essential_cost(entry, t) for t in entry.essential & asked)
        extra += _OPTIONAL_EXTRA * (
            optional - sum(self._optional_cost(entry, t) for t in entry.optional & asked)
        )
        # "without side rails" unasked: the item's usual features are assumed.
        extra += _UNASKED_NEGATION * (negated - sum(idf.get(t, 0.0) for t in entry.negated & asked))
        score = (
            matched / total
            - _EXTRA * extra / (total + _SATURATION * extra)
            - _CONFLICT * conflict / total
        )
        return score, (matched - hinted) / max(total - hints, 1e-9)

    def merge(self, best: dict[Key, Hit], text: str, built: float | None = None) -> None:
        """Join the HCPCS ranking of TEXT into BEST. A code scored here takes this score,
        since the structured reading knows its descriptor better than word overlap; one
        that covers only part of a phrase naming no HCPCS cue ("B12 deficiency", "OSA on
        CPAP") follows the diagnosis, and a procedure the PCS builder read (BUILT: its
        score) keeps the lead ("intrathecal methotrexate")."""
        found = self.rank(text)
        if not found:
            return
        rival = max((hit[0] for key, hit in best.items() if key[0] != HCPCS), default=0.0)
        # "screening colonoscopy" with no word of billing: the encounter's Z code leads.
        encounter = max(
            (hit[0] for key, hit in best.items() if key[1].startswith("Z")), default=0.0
        )
        for key, hit in list(best.items()):
            if key[0] == HCPCS and key not in found:
                best[key] = (hit[0] * _UNREAD, *hit[1:])
        cue = bool(_CUE.search(text))
        for key, (score, rank, title, whole) in found.items():
            if built is not None:
                score = min(score, built - 0.01)
            elif not whole and rival >= _DEFER_FROM:
                score = min(score, rival * _DEFER)
            elif not cue and encounter >= _ENCOUNTER and not self.drugs.get(key[1]):
                score = min(score, encounter - 0.01)
            best[key] = (score, rank, title)


@lru_cache(maxsize=1)
def _hcpcs_terms() -> dict[str, str]:
    data = tomllib.loads(HCPCS_TERMS_FILE.read_text(encoding="utf-8"))
    terms = data["hcpcs"] | data.get("hcpcs_resolver", {})
    return {" ".join(_split(key)): value for key, value in terms.items()}


def _split(text: str) -> list[str]:
    """Words as search.py splits a phrase: "w/", "s/p", "d5ns", "3-in-1" kept whole."""
    words = _PHRASE_WORD.findall(text.lower().replace("\u2019", "'"))
    return [w if w.endswith("w/") else w.rstrip("./") for w in words]


def _current_titles(conn: sqlite3.Connection) -> list[tuple[str, str, bool]]:
    """Each HCPCS code valid in the newest quarter with its descriptor: the long one where
    the HCPCS file has it, else the I/OCE's short one (codes added since that file)."""
    return conn.execute(
        "SELECT v.code, coalesce(c.title, max(v.title)), c.title IS NULL FROM code_validity v"
        " LEFT JOIN codes c ON c.system = v.system AND c.code = v.code"
        " WHERE v.system = ? AND v.valid_to IS NULL GROUP BY v.code"
        " UNION SELECT c.code, c.title, 0 FROM codes c WHERE c.system = ? AND c.billable = 1"
        " AND NOT EXISTS (SELECT 1 FROM code_validity v WHERE v.system = c.system"
        " AND v.code = c.code)",
        (HCPCS, HCPCS),
    ).fetchall()
