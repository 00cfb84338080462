"""Patient identifiers in a question: noticed, named by kind, never repeated.

Coders sometimes paste a patient's details into a question. The answer needs none
of them, so the analysis says what kind it saw and reminds the sender not to email
them; the value itself is never copied into a finding, a log or the draft.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from consultant.drafting.findings import Finding

SOURCE = "CaseConsultant patient-identifier check"

SSN = "social security number"
MRN = "medical record number"
MEMBER_ID = "member or subscriber ID"
DOB = "date of birth"
NAME = "patient name"
PHONE = "patient phone number"

_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2}|\d{8}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?"
    r"\s+\d{4}|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+\d{4})"
)
_ID_VALUE = r"(?=[A-Z0-9-]{4,})[A-Z0-9-]*\d[A-Z0-9-]*"
_NAME = r"[A-Z][a-z'’-]+(?:\s+[A-Z]\.?)?\s+[A-Z][a-z'’-]+"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (SSN, re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")),
    (
        SSN,
        re.compile(
            r"\b(?:ssn|ss#|soc(?:ial)? sec(?:urity)?(?: number| no\.?| #)?)\b\W{0,3}"
            r"(?:\w+\W+){0,3}?\d[\d -]{2,10}\d",
            re.I,
        ),
    ),
    (
        MRN,
        re.compile(
            r"\b(?:mrn|medical record(?: number| no\.?| #)?|med\.? rec(?:ord)?(?: no\.?| #)?"
            rf"|chart (?:number|no\.?|#))\b\s*[:#]?\s*(?:{_ID_VALUE})",
            re.I,
        ),
    ),
    (
        MEMBER_ID,
        re.compile(
            r"\b(?:member|subscriber|insurance|insured|policy|medicare|medicaid|beneficiary"
            r"|patient|pt)\s*(?:id|identifier|number|no\.?|#)\s*[:#]?\s*"
            rf"(?:{_ID_VALUE})|\b(?:mbi|hicn)\s*[:#]?\s*(?:{_ID_VALUE})",
            re.I,
        ),
    ),
    (
        DOB,
        re.compile(
            rf"\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|born(?: on)?)\s*[:#-]?\s*{_DATE}",
            re.I,
        ),
    ),
    (
        NAME,
        re.compile(
            rf"\b(?:[Pp]atient|[Pp]t|PATIENT|PT)(?:'s)?(?:\s+[Nn]ame)?\s*[:,-]?\s+{_NAME}"
            rf"|\b(?:[Pp]atient|[Pp]t)\s+[Nn]ame\s*[:,-]?\s*{_NAME}"
        ),
    ),
]
_LONG_RUN = re.compile(r"\S{30,}")  # encoded data, not prose
_PHONE = re.compile(
    r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
)
_PATIENT_PHONE = re.compile(
    r"\b(?:patient|pt)(?:'s)?\s+(?:phone|cell|mobile|home phone|telephone|number)\b", re.I
)
# Words that follow "Patient" in a sentence without being a name ("Patient Has Diabetes").
_NOT_A_NAME = re.compile(
    r"\b(?:has|had|have|is|was|with|presented|presents|came|comes|states|reports|denies"
    r"|needs|received|underwent|care|portal)\b",
    re.I,
)


@dataclass(frozen=True)
class PhiHit:
    kind: str
    start: int
    end: int


def find_phi(text: str) -> list[PhiHit]:
    """Patient identifiers in TEXT, by kind and position (for masking), in text order.

    Encoded data (base64 lines, signatures) is not prose and is passed over.
    """
    encoded = [m.span() for m in _LONG_RUN.finditer(text)]
    hits: list[PhiHit] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if kind == NAME and _NOT_A_NAME.search(match.group()):
                continue
            if any(start < match.end() and match.start() < end for start, end in encoded):
                continue
            hits.append(PhiHit(kind, match.start(), match.end()))
    named = any(hit.kind == NAME for hit in hits)
    if named or _PATIENT_PHONE.search(text):
        hits.extend(PhiHit(PHONE, m.start(), m.end()) for m in _PHONE.finditer(text))
    return sorted(hits, key=lambda hit: (hit.start, hit.kind))


def phi_finding(hits: Sequence[PhiHit]) -> Finding | None:
    """One `phi` finding naming the kinds seen; None when there were none."""
    kinds = list(dict.fromkeys(hit.kind for hit in hits))
    if not kinds:
        return None
    seen = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
    message = (
        f"The message appears to contain patient identifiers ({seen}). Please do not send "
        "names, dates of birth, member IDs, medical record or social security numbers by "
        "email: a coding answer does not need them, and this reply does not repeat them."
    )
    return Finding("phi", [], message, SOURCE)
