"""The side, diabetes type, stage, encounter and trimester a question states, what it says the
patient has, and whether a code's title says otherwise.

A suggestion that contradicts what the customer wrote (a right-ankle code for a left
ankle, type 1 for type 2, stage 4 for stage 3a) is worse than none: search drops it.
One that leaves a stated side or stage unspecified ranks below one that names it. A title
"without" something the question says the patient has ("hypertensive heart disease
without heart failure" for "heart failure with hypertension") contradicts it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from consultant.codes.query_cues import read_cues
from consultant.codes.search_index import stem
from consultant.codes.value_codes import gestation_weeks

_LEFT = re.compile(r"\b(?:left|lt|l)\b(?!\s*\d)", re.I)
_RIGHT = re.compile(r"\b(?:right|rt|r)\b(?!\s*\d)", re.I)
_BOTH = re.compile(r"\b(?:bilateral|bilat|both|b/l)\b", re.I)
_TYPE = re.compile(
    r"\btype\s*(1|2|i|ii|one|two)\b|\bt([12])\s*dm\b|\bdm\s*(?:type\s*)?([12])\b"
    r"|\b(iddm)\b|\b(niddm)\b",
    re.I,
)
_STAGE = re.compile(r"\b(?:stage|ckd)\s*-?\s*(\d[ab]?|iv|iii[ab]?|ii|i)\b", re.I)
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iiia": "3a", "iiib": "3b", "iv": "4"}
_TYPE_WORDS = {"1": "1", "i": "1", "one": "1", "iddm": "1"} | dict.fromkeys(
    ("2", "ii", "two", "niddm"), "2"
)

# The encounter a 7th character states (ICD-10-CM I.C.19.a): "f/u" of an injury or
# poisoning is a subsequent encounter once active treatment is over.
_ENCOUNTERS = (
    ("sequela", re.compile(r"\b(?:sequela\w*|late effects?|residual)\b", re.I)),
    (
        "subsequent",
        re.compile(
            r"\b(?:subsequent|f/u|follow[\s-]?up|recheck|routine healing|delayed healing"
            r"|nonunion|non-union|malunion|cast (?:change|removal|removed|off)|cast check"
            r"|suture removal|sutures? removed|staples? removed|staple removal|healing)\b",
            re.I,
        ),
    ),
    (
        "initial",
        re.compile(r"\b(?:initial|first (?:visit|encounter)|new injury|in the ed)\b", re.I),
    ),
)
# A trimester as coders write it; or the weeks of a pregnancy, which O-code titles say
# as the trimester they fall in (I.C.15.a.3: the first is less than 14 weeks 0 days, the
# second less than 28 weeks 0 days).
_TRIMESTER = re.compile(r"\b(first|second|third|1st|2nd|3rd)\s+tri(?:mester)?\b", re.I)
_TRIMESTER_NAMES = {"1st": "first", "2nd": "second", "3rd": "third"}
_TITLE_TRIMESTER = re.compile(r"\b(first|second|third|unspecified) trimester\b", re.I)
# A chapter 15 title's own words (I.C.15.a.1: its codes are for the pregnant, delivering
# or puerperal patient only)...
_TITLE_OBSTETRIC = re.compile(
    r"(?<!non-)\b(?:pregnancy|childbirth|puerperium|trimester|maternal care|antepartum"
    r"|intrapartum|postpartum|placental|fetal|amniotic|cervical shortening)\b",
    re.I,
)
# ...which a phrase that says nothing of one never asks for ("s/p gastric bypass" is
# Z98.84, not "bariatric surgery status complicating the puerperium").
_OBSTETRIC = re.compile(
    r"\b(?:pregnan\w*|preg|gravid\w*|g\d+\s*p\d+|tri|trimester|ob|obstetric\w*|ante-?partum"
    r"|pre-?natal|ante-?natal|post-?partum|pp|puerper\w*|deliver\w*|labou?r|gestation\w*"
    r"|c-?section|cesarean|caesarean|miscarr\w*|abortion|sab|tab|ectopic|molar|placent\w*"
    r"|previa|abruption|eclampsia|pre-?eclampsia|hellp|hyperemesis|p?prom|breech|fetal|fetus"
    r"|amnio\w*|chorio\w*|oligohydramnios|polyhydramnios|lactat\w*|breast-?feed\w*|nursing"
    r"|gdm|pih|pph|iup|edc|edd|lmp|vbac|tolac|episiotomy|perineal|maternal|mastitis|cervical"
    r"|cerclage|nst|stillbirth|stillborn|multiparous|primigravida|multigravida|twins?"
    r"|triplets?|weeks?|wks?|membranes|rom|arom|srom|svd|nsvd|pre-?existing|vaginal|uterus"
    r"|uterine|cervix)\b",
    re.I,
)
# The unit a service is billed by, as coders write it and as HCPCS titles do: a home
# health visit "per 15 min" is not the "per diem" or "per hour" code beside it.
_PERIOD = (
    ("15 minutes", re.compile(r"(?<![\d-])(?:15|fifteen)\s*-?\s*min", re.I)),
    ("30 minutes", re.compile(r"(?<![\d-])(?:30|thirty)\s*-?\s*min", re.I)),
    ("visit", re.compile(r"\b(?:per|each|a|/)\s*visit\b", re.I)),
    ("hour", re.compile(r"\b(?:per|each|every|an|/)\s*(?:hour|hr)\b|\bhourly\b", re.I)),
    ("day", re.compile(r"\bper\s*(?:diem|day)\b|\bdaily rate\b", re.I)),
    ("month", re.compile(r"\b(?:per|each|a|/)\s*(?:calendar\s+)?month\b|\bmonthly\b", re.I)),
    ("mile", re.compile(r"\b(?:per|each|a|/)\s*(?:statute\s+)?mile\b|\bmileage\b", re.I)),
)
_TITLE_PERIOD = (
    ("15 minutes", re.compile(r"\b(?:per|each)\s+15\s+minutes\b", re.I)),
    ("30 minutes", re.compile(r"\b(?:per|each)\s+30\s+minutes\b", re.I)),
    ("visit", re.compile(r"\bper\s+visit\b", re.I)),
    ("hour", re.compile(r"\b(?:per|each)\s+hour\b", re.I)),
    ("day", re.compile(r"\bper\s+(?:diem|day)\b", re.I)),
    ("month", re.compile(r"\b(?:per|each)\s+(?:calendar\s+)?month\b", re.I)),
    ("mile", re.compile(r"\bper\s+(?:statute\s+)?mile\b", re.I)),
)
_TITLE_ENCOUNTER = re.compile(r"\b(initial encounter|subsequent encounter|sequela)\b", re.I)
_TITLE_LEFT = re.compile(r"\bleft\b", re.I)
_TITLE_RIGHT = re.compile(r"\bright\b", re.I)
_TITLE_BOTH = re.compile(r"\bbilateral\b", re.I)
_TITLE_TYPE = re.compile(r"\btype ([12]) diabetes", re.I)
# E08, E09, E13: diabetes of no type, which a stated type 1 or 2 rules out
_TITLE_UNTYPED_DIABETES = re.compile(
    r"\b(?:other specified|drug or chemical induced) diabetes|\bdiabetes mellitus due to", re.I
)
_TITLE_STAGE = re.compile(r"\bstage (\d[ab]?)\b", re.I)
_UNSPECIFIED = re.compile(r"\bunspecified\b", re.I)
# what a title says is absent: "without aura", "not intractable" (not "not elsewhere classified")
_TITLE_WITHOUT = re.compile(r"\b(?:without|not(?! elsewhere| otherwise))\s+([^,()]+)", re.I)
_DENIED = re.compile(r"\bwithout(?:\s+[a-z0-9'/-]+){1,3}")
_SIDE_WORDS = frozenset(stem(w) for w in ("bilateral", "both", "left", "right"))
_CONTENT_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_NOT_A_CONDITION = frozenset(
    stem(w) for w in ("mention", "other", "specified", "unspecified", "with", "without")
)
_NEGATED_PART = re.compile(r"(?:not|without|no)\b", re.I)
_DIABETES = re.compile(r"\bdiabet|\bdm\s*[12]?\b|\bt[12]dm\b|\biddm\b|\bniddm\b", re.I)
# Diabetes that is not the default type 2 when no type is written: in pregnancy only,
# insipidus, secondary to a drug or a condition (E08, E09, E13), or only feared.
_NOT_TYPE_2 = re.compile(
    r"\b(?:gestational|insipidus|induced|due to|secondary|pancrea\w*|neonatal|other specified"
    r"|pre-?diabet\w*|borderline|screen\w*|risk)\b",
    re.I,
)


@dataclass(frozen=True)
class Stated:
    side: str | None  # "left", "right", "bilateral"
    diabetes_type: str | None  # "1", "2" (type 2 where diabetes is named without a type)
    stage: str | None  # "3a", "4"
    encounter: str | None = None  # "initial", "subsequent", "sequela"
    trimester: str | None = None  # "first", "second", "third": written, or by the weeks
    asserted: frozenset[str] = field(default=frozenset())  # stems of what the patient has
    denied: frozenset[str] = field(default=frozenset())  # stems of what the patient has not
    # whether the text may speak of a pregnancy, a delivery or the puerperium
    obstetric: bool = True
    period: str | None = None  # the unit a service is billed by: "15 minutes", "hour", "day"


def stated(text: str) -> Stated:
    sides = [
        name
        for name, pattern in (("left", _LEFT), ("right", _RIGHT), ("bilateral", _BOTH))
        if pattern.search(text)
    ]
    kind = None
    if _DIABETES.search(text):
        if match := _TYPE.search(text):
            kind = _TYPE_WORDS.get(next(g for g in match.groups() if g).lower())
        elif not _NOT_TYPE_2.search(text):
            kind = "2"  # I.C.4.a.2: diabetes of no documented type is type 2 (E11)
    stage = None
    if match := _STAGE.search(text):
        raw = match.group(1).lower()
        stage = _ROMAN.get(raw, raw)
    encounters = [name for name, pattern in _ENCOUNTERS if pattern.search(text)]
    encounter = encounters[0] if len(encounters) == 1 else None
    # Denials read as "without ..." first ("no CKD" -> "without CKD"), then left out.
    cued = read_cues(text).text.lower()
    asserted = _stems(_DENIED.sub(" ", cued))
    # "without macular edema, bilateral": the side after a denial is no part of it
    denied = _stems(" ".join(_DENIED.findall(cued))) - _SIDE_WORDS
    side = sides[0] if len(sides) == 1 else None
    trimester = _trimester(text)
    obstetric = trimester is not None or _OBSTETRIC.search(text) is not None
    return Stated(
        side,
        kind,
        stage,
        encounter,
        trimester,
        asserted,
        denied - asserted,
        obstetric,
        _period(_PERIOD, text),
    )


def _period(patterns: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> str | None:
    found = {name for name, pattern in patterns if pattern.search(text)}
    return found.pop() if len(found) == 1 else None


def _trimester(text: str) -> str | None:
    if match := _TRIMESTER.search(text):
        word = match[1].lower()
        return _TRIMESTER_NAMES.get(word, word)
    if (weeks := gestation_weeks(text)) is not None:
        return "first" if weeks < 14 else "second" if weeks < 28 else "third"
    return None


@lru_cache(maxsize=65536)
def _title_sayings(title: str) -> tuple[tuple[frozenset[str], ...], tuple[frozenset[str], ...]]:
    """Stems of what TITLE says is absent ("without ...") and present, once per title:
    every search judges hundreds of candidate titles."""
    absent = (_stems(part.lower()) for part in _TITLE_WITHOUT.findall(title))
    present = (_stems(part.lower()) for part in _present_parts(title))
    return tuple(w for w in absent if w), tuple(w for w in present if w)


def _present_parts(title: str) -> list[str]:
    """What TITLE says the patient has: its "with ..." parts, and its parts between commas
    that negate nothing ("Migraine, unspecified, intractable, with status migrainosus")."""
    parts = []
    for part in re.split(r"[,()]", title):
        part = part.strip()
        if not part or _NEGATED_PART.match(part):
            continue
        head, *withs = re.split(r"\bwith\b", part, flags=re.I)
        parts.extend(p for p in (head, *withs) if not _NEGATED_PART.match(p.strip()))
    return parts


def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(word) for word in _CONTENT_WORD.findall(text)) - _NOT_A_CONDITION


def contradicts(said: Stated, title: str) -> bool:
    """Whether TITLE names another side, diabetes type, stage, encounter or billing unit
    than SAID, or a pregnancy it never spoke of, or is "without" something SAID has, or
    has something SAID denies."""
    if said.side == "left" and _TITLE_RIGHT.search(title) and not _TITLE_LEFT.search(title):
        return True
    if said.side == "right" and _TITLE_LEFT.search(title) and not _TITLE_RIGHT.search(title):
        return True
    typed = _TITLE_TYPE.search(title) if said.diabetes_type else None
    if typed and typed.group(1) != said.diabetes_type:
        return True
    if said.diabetes_type and _TITLE_UNTYPED_DIABETES.search(title):
        return True
    if not said.obstetric and _TITLE_OBSTETRIC.search(title):
        return True
    if said.period and (billed := _period(_TITLE_PERIOD, title)) and billed != said.period:
        return True
    term = _TITLE_TRIMESTER.search(title) if said.trimester else None
    if term and term[1].lower() not in (said.trimester, "unspecified"):
        return True
    met = _TITLE_ENCOUNTER.search(title) if said.encounter else None
    if met and not met.group(1).lower().startswith(said.encounter or ""):
        return True
    absent, present = _title_sayings(title) if said.asserted or said.denied else ((), ())
    if any(words <= said.asserted for words in absent):
        return True
    # "intractable" or "with status migrainosus" for "not intractable, no status ..."
    if any(words <= said.denied for words in present):
        return True
    ranged = "through stage" in title.lower()  # "stage 1 through stage 4": all fit
    if said.stage and not ranged and (stages := _TITLE_STAGE.findall(title)):
        wanted = {said.stage, said.stage[0]}
        if not wanted & {s.lower() for s in stages}:
            return True
    return False


def leaves_unspecified(said: Stated, title: str) -> bool:
    """Whether TITLE leaves unspecified a side or trimester the question states, or names
    one side where the question states both."""
    if said.trimester and "unspecified trimester" in title.lower():
        return True
    if said.side == "bilateral" and not _TITLE_BOTH.search(title):
        return bool(_TITLE_LEFT.search(title)) != bool(_TITLE_RIGHT.search(title))
    if said.side is None or not _UNSPECIFIED.search(title):
        return False
    sides = (_TITLE_LEFT, _TITLE_RIGHT, _TITLE_BOTH)
    return not any(side.search(title) for side in sides)


_SAYS_LESS = re.compile(r"(?<!or )\bunspecified\b|\bwithout complications\b", re.I)


def says_less(title: str) -> bool:
    """Whether a code's TITLE says less than a sibling may ("..., unspecified", "without
    complications"): where the message names the specific sibling too, that one is coded."""
    return _SAYS_LESS.search(title) is not None
