"""What a coder's phrasing says beyond its clinical words: which code system is wanted,
what is denied, and which column of the Table of Drugs a drug belongs in.

Coders write "dx code for a screening colonoscopy" (the diagnosis, not the service),
"J code for Toradol" (HCPCS), "asthma, no status asthmaticus" (the *without* code),
"former smoker" (history, not dependence), "angioedema from lisinopril" (an adverse
effect: T46.4X5-, not a poisoning). A search reads those cues first and ranks on the
rewritten words; the cue words themselves never have to match a code title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from consultant.codes.systems import HCPCS, ICD10CM, ICD10PCS

# A phrase naming the system the answer should come from. A question that names two
# systems ("dx and HCPCS for a nebulizer") is steered by neither; "the drug code" is a
# J-code to one coder and an adverse effect's T-code to another, and steers nothing.
_SYSTEM_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        ICD10CM,
        re.compile(
            r"\b(?:dx|diagnosis|diagnostic|diag|icd-?10-?cm|icd-?10|icd|z)[\s-]*codes?\b"
            r"|\bicd-?10-?cm\b|\bwhat\s+dx\b|\bdx\s+(?:for|of)\b",
            re.I,
        ),
    ),
    (
        ICD10PCS,
        re.compile(
            r"\b(?:icd-?10-?pcs|pcs)\b|\b(?:inpatient\s+)?procedure\s+code\s+\(?pcs\b", re.I
        ),
    ),
    (
        HCPCS,
        re.compile(
            # "an A code" is HCPCS; "is there a code for ..." is not
            r"\bhcpcs\b|\blevel\s+ii\b|\b(?:[jgqekl]|(?-i:A))[\s-]?codes?\b|\bdme\s+codes?\b"
            r"|\bsupply\s+codes?\b",
            re.I,
        ),
    ),
)

# Negation cues as coders write them, rewritten to the "without" the code titles use.
_NEGATIONS = re.compile(
    r"\b(?:w/o|wo|denies|denied|negative\s+for|neg\s+for|ruled\s+out|r/o'?d|absent|absence"
    r"\s+of|free\s+of|not\s+involv\w*|no\s+evidence\s+of|no|not|nor|none)\b"
    r"(?!\s*\d)(?!\.\s*\d)(?!\s+(?:otherwise|elsewhere)\b)",
    re.I,
)
# "no. 5" is a number and "not otherwise specified" a title's phrase, not negations.

_COMPLICATION = re.compile(
    r"\b(?:infect\w*|malfunction\w*|complicat\w*|bleed\w*|leak\w*|dislodg\w*|displac\w*"
    r"|break\w*|broken|fail\w*|obstruct\w*|replace\w*|chang\w*|remov\w*|adjust\w*)\b",
    re.I,
)
_SIZE = re.compile(
    r"\b\d+(?:\.\d+)?(?:\s*x\s*\d+(?:\.\d+)?)*\s*(?:cm|mm|centimeters?|millimeters?)\b", re.I
)
_DOSE = re.compile(r"(\d)\s*mgs?\b", re.I)
# "dad had colon ca at 50", "at age 62": when, which no history code says
_AGE_AT = re.compile(
    r"\b(?:at|by)\s+(?:age\s+)?\d{1,3}(?:\s*(?:yo|y/o|years?\s+old|yrs?\s+old))?(?![\w.%/])"
    r"(?!\s*(?:weeks?|wks?|w\b|days?|mg|mcg|ml|cm|mm|lbs?|kg|units?|percent|degrees|hours?|hrs?"
    r"|min\w*|am|pm|o'?clock))"
    r"|\bin\s+(?:his|her|their)\s+\d0'?s\b",
    re.I,
)
# "5 months out", "6 wks ago": how long since, which no code says (weeks of gestation and a
# coma's hours are said otherwise).
_ELAPSED = re.compile(
    r"\b\d+\s*(?:d|days?|wks?|weeks?|mos?|months?|yrs?|years?)\s+(?:out|ago|later|prior)\b",
    re.I,
)
# "cough for 4 weeks", "fever x 3 days", "DM2 for 10 years": how long, which no diagnosis
# title says ("of 4 weeks or less" is an infarction's age, "three-day fever" sandfly
# fever); "at 32 weeks" is a pregnancy's week, and a ventilation's days are its duration
# axis (pcs_build.py).
_LASTED = re.compile(
    r"\b(?:(?:for|over|the|past|last|since)\s+)+(?:about\s+|approx\.?\s+|nearly\s+|~\s*)?"
    r"\d+(?:\.\d+)?\s*-?\s*(?:d|days?|wks?|weeks?|mos?|months?|yrs?|years?)\b"
    # "x 6 wks" of a drug is a course taken long term (Z79.2), "x 3 days" a symptom's time
    r"|\bx\s*\d+\s*-?\s*(?:d|days?)\b",
    re.I,
)
_KEPT_DAYS = re.compile(r"\b(?:vent\w*|intubat\w*|ecmo|bipap|cpap|mechanical)\b", re.I)

# Gestational diabetes is coded by how it is controlled, and Z79.4 is not coded beside it
# (Official Guidelines I.C.15.g): "GDM on insulin" is O24.414, no long-term use.
GESTATIONAL_DIABETES = re.compile(r"\bgestational\s+(?:diabetes|dm)\b|\bgdm\b", re.I)
_CONTROLLED_BY = (
    (
        re.compile(
            r"\b(?:on|taking|takes|requires?|requiring|needs?|needing|started\s+on|uses?)?\s*"
            r"(?:insulin|lantus|humalog|novolog|levemir|nph)\b(?:\s+(?:therapy|regimen))?",
            re.I,
        ),
        " insulin controlled ",
    ),
    (
        re.compile(
            r"\b(?:on|taking|takes|started\s+on)?\s*(?:metformin|glyburide|glucophage"
            r"|oral\s+(?:hypoglycemics?|agents?|meds?|medications?))\b",
            re.I,
        ),
        " controlled by oral hypoglycemic drugs ",
    ),
)

# How long a patient was out, in the ranges the S06 titles name ("LOC 15 min" is "loss of
# consciousness of 30 minutes or less").
_OUT_FOR = re.compile(
    r"\b(?P<loc>loc|loss\s+of\s+consciousness)\s*(?:x|for|of|about|approx\.?|~|lasting)?\s*"
    r"(?P<n>\d+)\s*(?P<unit>min(?:ute)?s?|h(?:ou)?rs?)\b",
    re.I,
)
_OUT_RANGES = (  # (longest in minutes, the titles' words)
    (30, "of 30 minutes or less"),
    (59, "of 31 minutes to 59 minutes"),
    (359, "of 1 hour to 5 hours 59 minutes"),
    (1440, "of 6 hours to 24 hours"),
)


def _out_for(match: re.Match[str]) -> str:
    minutes = int(match["n"]) * (1 if match["unit"].lower().startswith("m") else 60)
    words = next((w for most, w in _OUT_RANGES if minutes <= most), "greater than 24 hours")
    return f"loss of consciousness {words}"


# "screening colonoscopy turned diagnostic": the screening is still what the encounter
# was for (Official Guidelines I.C.21.c.5), and the words name no code.
_CONVERTED = re.compile(
    r"\b(?:turned|converted|converts?|became|becomes|went)\s+(?:(?:in)?to\s+)?(?:a\s+)?"
    r"diagnostic\b",
    re.I,
)

# Past conditions: the history code, not the active one.
# "hx of kidney transplant", "s/p liver transplant": the organ's transplant status (Z94),
# not a history of its disease (Z85-Z87)
_TRANSPLANTED = re.compile(
    r"\b(?:h/o|hx(?:\s+of)?|history\s+of|s/p|status\s+post)\s+(?:an?\s+)?((?:[\w-]+\s+){1,2})"
    r"transplant(?:ation|ed)?\b(?!\s+(?:rejection|failure|infection|complication))",
    re.I,
)
_HISTORY = re.compile(
    r"\b(?:former|ex-|quit|stopped(?!\s+(?:taking|using|his|her|their|the|all|it)\b)|past|previous|prior"
    r"|remote(?!\s+(?:patient|physiologic|therapeutic|monitor\w*|access|visit|care)))\s*(?=\w)"
    r"|(?<!fam )(?<!family )(?<!fam\. )\b(?:h/o|hx\s+of|hx|history\s+of)\b",
    re.I,
)
# "Fam hx", "FHx": the family history codes (Z80-Z84), not the patient's own.
_FAMILY = re.compile(r"\b(?:fam(?:ily)?\.?\s*(?:hx|h/o|history)(?:\s+of)?|fhx|fh\s+of)\b", re.I)
# A relative's disease is the patient's family history ("mother had breast cancer",
# "dad died of an MI at 50"); someone else's infection the patient's exposure to it
# ("coworker tested positive for covid").
_WHOSE = r"(?:(?:his|her|their|pt'?s|patient'?s)\s+)?"
_RELATIVES = (
    r"mother|mom|father|dad|parents?|sister|brother|siblings?|grandmother|grandma|grandfather"
    r"|grandpa|aunt|uncle|son|daughter|twin"
)
_RELATIVE_HAD = re.compile(
    _WHOSE + rf"(?:{_RELATIVES})\s+(?:had|has|with|died\s+(?:of|from)"
    r"|passed\s+(?:away\s+)?(?:of|from)|(?:was\s+)?dx'?d\s+with|(?:was\s+)?diagnosed\s+with)\b(?:\s+(?:an?|the)\b)?",
    re.I,
)
_CONTACT = re.compile(
    r"\b" + _WHOSE + r"(?:co-?workers?|roommates?|classmates?|spouse|wife|husband|partner"
    r"|household\s+members?|family\s+members?|friends?|teachers?|daycare\s+\w+|"
    + _RELATIVES
    + r")\s+(?:tested|is|was"
    r"|came\s+back)\s+(?:\+|pos(?:itive)?)\s+(?:for|with)\b",
    re.I,
)
# A device or opening the patient has: its status code (Z93, Z95, Z96), unless a
# complication is named.
_STATUS = re.compile(
    r"\b(?:in place|in situ|has an?|have an?|with an?)\b.{0,40}$|\bstatus\b|^\s*presence of\b",
    re.I,
)
_DEVICE = re.compile(
    r"\b(?:pacemaker|aicd|icd device|defibrillator|colostomy|ileostomy|urostomy|trach\w*"
    r"|gastrostomy|peg|g-tube|j-tube|nephrostomy|cystostomy|stent|insulin pump|port"
    r"|shunt|prosthe\w+|implant\w*|transplant\w*|lvad|cochlear)\b",
    re.I,
)

# Words that put a drug in the poisoning, adverse-effect or underdosing column, and the
# intents of a poisoning, as the Table of Drugs' columns are worded.
_POISONING = re.compile(
    r"\b(?:overdose[sd]?|o\.?d\.?'?d|od|poison\w*|toxic\s+ingestion|ingest\w*|took\s+too\s+m\w+"
    r"|too\s+many|too\s+much|accidental(?:ly)?\s+took|swallowed|double\s+dose|extra\s+dose"
    r"|wrong\s+(?:dose|med\w*|drug|pills?)|by\s+mistake|got\s+into|ate|drank|drugged"
    r"|toxic\s+effect|exposure\s+to)\b",
    re.I,
)
_SELF_HARM = re.compile(
    r"\b(?:suicid\w*|self[\s-]*harm\w*|intentional(?:ly)?|on\s+purpose|si\s+attempt)\b", re.I
)
_ASSAULT = re.compile(r"\b(?:assault\w*|by\s+(?:another|someone|spouse|partner))\b", re.I)
_UNDETERMINED = re.compile(r"\b(?:undetermined|unknown\s+intent|intent\s+unknown)\b", re.I)
_UNDERDOSING = re.compile(
    r"\b(?:underdos\w*|missed\s+(?:\w+\s+){0,2}(?:doses?|days?\s+of|weeks?\s+of)|ran\s+out\s+of"
    r"|run\s+out\s+of|stopped\s+taking|skipp(?:ed|ing)"
    r"|not\s+taking|didn'?t\s+take|did\s+not\s+take|noncomplian\w*|non-complian\w*"
    r"|took\s+less"
    # "taking half her Lantus dose", "only taking half the prescribed dose"
    r"|(?:taking|takes|took|uses|using|used)\s+(?:only\s+)?half\b)\b",
    re.I,
)
_ADVERSE = re.compile(
    r"\b(?:adverse|side\s+effects?|reaction\s+to|reaction\s+from|allergic\s+reaction"
    r"|induced|related|toxicity|intoleran\w+|properly\s+taken|as\s+prescribed"
    r"|correct(?:ly)?\s+(?:dose|taken)|rxn|reaction)\b",
    re.I,
)
# Words that tell a cause: an adverse effect of the drug they lead to ("rash after
# amoxicillin"), not of one named elsewhere ("gastroparesis d/t DM1, on insulin pump").
CAUSED_BY = re.compile(r"\b(?:due\s+to|d/t|from|after|caused\s+by|secondary\s+to)\b", re.I)


@dataclass(frozen=True)
class Cues:
    text: str  # the phrase, cue words rewritten as the code sets word them
    system: str | None  # the one system the phrase asks for, if it names one


def system_cue(text: str) -> str | None:
    """The code system TEXT asks for by name ("dx code", "PCS", "J code"), if exactly one."""
    named = {system for system, pattern in _SYSTEM_CUES if pattern.search(text)}
    if ICD10PCS in named and post_concussion(text):
        named.discard(ICD10PCS)
    return named.pop() if len(named) == 1 else None


# "PCS" beside a concussion is the post-concussion syndrome (F07.81), not ICD-10-PCS.
_BARE_PCS = re.compile(r"(?<![-\w])pcs\b", re.I)
_CONCUSSION = re.compile(r"\b(?:concuss\w*|post[- ]?concuss\w*|tbi|head injur\w*)", re.I)


def post_concussion(text: str) -> bool:
    """Whether TEXT's "PCS" is the post-concussion syndrome: said beside a concussion, and
    never as "ICD-10-PCS"."""
    return bool(_BARE_PCS.search(text) and _CONCUSSION.search(text)) and not re.search(
        r"icd-?10-?pcs", text, re.I
    )


def spell_out_pcs(text: str) -> str:
    """TEXT with a post-concussion "PCS" written as the syndrome, which names no code set."""
    return _BARE_PCS.sub("postconcussional syndrome", text) if post_concussion(text) else text


# A service billed by the unit of time, trip or session ("per 15 min", "each visit",
# "per mile") is a HCPCS service: no diagnosis is counted so ("LOC for 15 min" is not).
_TIMED = re.compile(
    r"\b(?:per|each|every|ea)\s+(?:\d+\s*)?(?:min(?:ute)?s?|hours?|hrs?|sessions?|visits?"
    r"|miles?|trips?)\b|\bper\s+diem\b",
    re.I,
)
# ...and so is one timed in the quarter or half hours HCPCS counts ("brief alcohol
# counseling 15 min"), unless the minutes are how long a patient was out (S06's "loss of
# consciousness of 30 minutes or less").
_QUARTER_HOURS = re.compile(r"\b(?:15|30)\s*-?\s*min(?:ute)?s?\b", re.I)
_UNCONSCIOUS = re.compile(
    r"\b(?:loc|loss of consciousness|unconscious\w*|knocked out|passed out|coma)\b", re.I
)


# "(pt) here for her depo shot": the reason for the encounter, which a diagnosis code
# (often a Z code) tells, not the drug or the service given at it.
_HERE_FOR = re.compile(
    r"^\s*(?:(?:the\s+)?(?:pt|patient|she|he)\s+)?(?:is\s+|was\s+)?(?:here|seen|in|came in"
    r"|comes in|presents|presented)\s+(?:today\s+)?for\b",
    re.I,
)


@lru_cache(maxsize=4096)  # a search reads its phrase's cues, and so do its specifics
def read_cues(text: str) -> Cues:
    text = spell_out_pcs(text)
    system = system_cue(text)
    timed = _TIMED.search(text) or (_QUARTER_HOURS.search(text) and not _UNCONSCIOUS.search(text))
    if system is not None:
        for _, pattern in _SYSTEM_CUES:
            text = pattern.sub(" ", text)
    # "250 mg" is a dose (HCPCS descriptors say "per 250 mg"), never myasthenia gravis.
    text = _DOSE.sub(r"\1 milligram", text)
    # A wound's length is documentation, not a code axis ("3 cm lac L forearm").
    text = _SIZE.sub(" ", text)
    text = _ELAPSED.sub(" ", text)
    if not _KEPT_DAYS.search(text):
        text = _LASTED.sub(" ", text)
    text = _OUT_FOR.sub(_out_for, text)
    text = _AGE_AT.sub(" ", text)
    if GESTATIONAL_DIABETES.search(text) and not re.search(r"\bcontrolled\b", text, re.I):
        for pattern, controlled in _CONTROLLED_BY:
            text = pattern.sub(controlled, text)
    text = _CONVERTED.sub(" ", text)
    text = _TRANSPLANTED.sub(r" \1transplant status ", text)
    rewritten = _NEGATIONS.sub(" without ", text)
    rewritten = _FAMILY.sub(" family history of ", rewritten)
    rewritten = _RELATIVE_HAD.sub(" family history of ", rewritten)
    rewritten = _CONTACT.sub(" contact with and exposure to ", rewritten)
    rewritten = _HISTORY.sub(" history of ", rewritten)
    if _STATUS.search(rewritten) and _DEVICE.search(rewritten) and not _COMPLICATION.search(text):
        rewritten += " (status)"
    if system is None and timed:
        system = HCPCS
    elif system is None and _HERE_FOR.search(text):
        system = ICD10CM
    return Cues(re.sub(r"\s+", " ", rewritten).strip(), system)


def drug_column(text: str) -> str | None:
    """The Table of Drugs column TEXT points a named drug to: its words for the column
    ("poisoning accidental", "adverse effect", "underdosing"), or None when it says
    nothing about how the drug was involved."""
    if _UNDERDOSING.search(text):
        return "underdosing"
    if _SELF_HARM.search(text):
        return "poisoning intentional self-harm"
    if _ASSAULT.search(text):
        return "poisoning assault"
    if _UNDETERMINED.search(text):
        return "poisoning undetermined"
    if _POISONING.search(text):
        # ICD-10-CM I.C.19.e.5(b): a poisoning with no intent documented is accidental.
        return "poisoning accidental"
    if _ADVERSE.search(text) or CAUSED_BY.search(text):
        return "adverse effect"
    return None


def adverse_cue(text: str) -> bool:
    """Whether TEXT says "adverse effect" in words that need no drug after them."""
    return _ADVERSE.search(text) is not None
