"""What the whole message says of the patient and the setting, and which suggested codes
that rules out.

A phrase is searched alone, but a suggestion is judged against the whole message: "UTI due
to E. coli" also finds the pregnancy and newborn UTI codes, and the message's "34yo F, no
pregnancy" rules both out; "cataract surgery" finds ICD-10-PCS codes that an office's
modifier question has no use for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consultant.codes.query_cues import spell_out_pcs
from consultant.codes.specifics import Stated, contradicts, stated
from consultant.codes.systems import ICD10CM, ICD10PCS

_PREGNANCY = re.compile(
    r"\b(?:pregnan\w*|gestation\w*|trimesters?|postpartum|post-partum|puerper\w*|antepartum"
    r"|prenatal|antenatal|obstetric\w*|deliver(?:y|ed)|labor|labour|G\d\s*P\d|\d+\s*wks?\s*ga"
    r"|\d+\s*weeks?\s+(?:pregnant|gestation|ga))",
    re.I,
)
_NOT_PREGNANT = re.compile(
    r"\b(?:no|not|non-?|never|denies)\s*(?:currently\s+)?pregnan\w*"
    r"|\b(?:pregnancy\s+test|hcg|upt)\s+(?:(?:was|is)\s+)?(?:negative|neg)\b"
    r"|\bnegative\s+(?:pregnancy|hcg|upt)\b",
    re.I,
)
_NEWBORN = re.compile(
    r"\b(?:newborns?|neonat\w*|nicu|infants?|preemie|premature|prematurity|perinatal|liveborn"
    r"|birth\s*weight|\d+\s*(?:-\s*)?(?:days?|d|wks?|weeks?)[\s-]+old|dol\s*\d+)\b",
    re.I,
)
_AGED = r"\b\d{1,3}\s*(?:yo|y/o|yr|yrs|y\.o\.|years?[\s-]old)?\s*"  # "67yo F", "4 y/o M"
_FEMALE = re.compile(rf"{_AGED}F\b|\b(?:female|woman|girl)\b")
_MALE = re.compile(rf"{_AGED}M\b|\b(?:male|man|boy)\b")
# An inpatient stay or a PCS question: the only settings where ICD-10-PCS codes a procedure.
_INPATIENT = re.compile(
    r"\b(?:icd-?10-?pcs|pcs|inpatient|in-patient|admit(?:ted)?|admission|discharged?|drg"
    r"|root operation|hospital stay)\b",
    re.I,
)

# Title words that only one sex's codes carry (ICD-10-CM's sex edits are not loaded here).
_FEMALE_TITLE = re.compile(
    r"\b(?:female|ovar\w*|uter\w*|vagin\w*|vulv\w*|cervix|fallopian|endometri\w*|menstru\w*"
    r"|menopaus\w*)\b",
    re.I,
)
_MALE_TITLE = re.compile(
    r"\b(?:male|prostat\w*|testis|testes|testicles?|testicular|scrot\w*|penis|penile"
    r"|epididym\w*|seminal|spermat\w*)\b",
    re.I,
)
_PREGNANCY_Z = re.compile(r"^Z(?:3[3-79]|3A)")  # pregnancy state, supervision, outcome
_NEWBORN_Z = re.compile(r"^Z38")
# "No trauma", "atraumatic": a fracture of disease (M80, M84), never an injury's.
_NO_TRAUMA = re.compile(
    r"\b(?:no|without|w/o|denies)\s+(?:\w+\s+){0,2}(?:trauma|injury|fall)\b|\b(?:non-?|a)traumatic\b",
    re.I,
)
_INJURY_FRACTURE = re.compile(r"\bfracture\b", re.I)


@dataclass(frozen=True)
class PatientContext:
    pregnant: bool  # a pregnancy, delivery or puerperium is said and not denied
    newborn: bool  # the patient is a newborn (the perinatal period is said)
    sex: str | None  # "female" or "male" when the message says one and only one
    inpatient: bool  # an inpatient stay or an ICD-10-PCS question
    said: Stated  # the one side, diabetes type and trimester the whole message states, if any
    atraumatic: bool = False  # the message denies an injury ("no trauma")


def read_context(text: str) -> PatientContext:
    females, males = bool(_FEMALE.search(text)), bool(_MALE.search(text))
    sex = "female" if females and not males else "male" if males and not females else None
    whole = stated(text)
    pregnant = bool(_PREGNANCY.search(text)) and not _NOT_PREGNANT.search(text) and sex != "male"
    return PatientContext(
        pregnant=pregnant,
        newborn=bool(_NEWBORN.search(text)),
        sex=sex,
        inpatient=bool(_INPATIENT.search(spell_out_pcs(text))),
        said=Stated(
            whole.side, whole.diabetes_type, None, trimester=whole.trimester if pregnant else None
        ),
        atraumatic=bool(_NO_TRAUMA.search(text)),
    )


def rules_out(context: PatientContext, system: str, code: str, title: str) -> str | None:
    """Why CONTEXT rules the suggestion out, with the convention it rests on; None if it
    does not."""
    if system == ICD10PCS and not context.inpatient:
        return "ICD-10-PCS codes inpatient hospital procedures; the message is not about one"
    if contradicts(context.said, title):
        return "the message states another side or diabetes type"
    if system != ICD10CM:
        return None
    if (code.startswith("O") or _PREGNANCY_Z.match(code)) and not context.pregnant:
        return "Chapter 15 codes only a documented pregnancy (I.C.15.a)"
    if (code.startswith("P") or _NEWBORN_Z.match(code)) and not context.newborn:
        return "Chapter 16 codes conditions originating in the perinatal period (I.C.16.a)"
    if context.atraumatic and code.startswith("S") and _INJURY_FRACTURE.search(title):
        return "the message denies trauma: a fracture of disease is coded in Chapter 13"
    if context.sex == "male" and _FEMALE_TITLE.search(title):
        return "the code is for a female patient"
    if context.sex == "female" and _MALE_TITLE.search(title):
        return "the code is for a male patient"
    return None
