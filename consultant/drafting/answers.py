"""The direct answer to each question a message asks, before the evidence.

A coder's email asks one to a few questions ("Is N18.3 billable?", "Can 29881 and
29877 go on one claim?", "Is this covered?"). Each is found, classified by what it
asks, and answered in one sentence from the analysis's own facts (statuses and
findings, each already sourced), so the consultant reads the answer first and checks
it against the evidence below. An answer never quotes the customer: `question` is in
the JSON for the reviewer, never in the draft.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from consultant.codes.search import SearchHit
from consultant.codes.store import CodeInfo
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    DELETED,
    HCPCS,
    ICD9CM,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    UNVERIFIED,
)
from consultant.drafting.extract import CodeMention
from consultant.drafting.findings import Finding

# What a question asks, tried in this order (the first that fits wins).
KINDS = (
    "coverage",
    "crosswalk",
    "cc_mcc_hcc",
    "seventh_character",
    "sequencing",
    "modifier",
    "billed_together",
    "validity",
    "code_for",
    "other",
)
# What each kind asks, as the review app labels it.
LABELS = {
    "coverage": "Coverage or payment (the payer's to answer)",
    "crosswalk": "ICD-9 crosswalk",
    "cc_mcc_hcc": "CC/MCC or HCC",
    "seventh_character": "7th character",
    "sequencing": "Which code goes first",
    "modifier": "Which modifier",
    "billed_together": "Billed together?",
    "validity": "Is the code valid and billable?",
    "code_for": "What is the code?",
    "other": "Other",
}
_ASKS = (
    (
        "coverage",
        r"\b(?:covered|coverage|cover|reimburs\w*|pay for|pays?\b|paid\b|payment|medical"
        r" necessity|lcd|ncd|prior auth\w*|pre-?auth\w*|allowable|fee schedule)",
    ),
    ("crosswalk", r"\b(?:icd[- ]?9|cross[- ]?walk|gems?\b|convert|equivalent|old code)"),
    ("cc_mcc_hcc", r"\b(?:cc|mcc|hcc|risk adjust\w*|severity|raf|v2[48])\b"),
    (
        "seventh_character",
        r"\b(?:7th|seventh)\b|\bcharacter\b|\b(?:initial|subsequent) encounter|\bsequela\b",
    ),
    (
        "sequencing",
        r"\b(?:sequenc\w*|first[- ]listed|list(?:ed)? first|goes? first|code first|primary"
        r" (?:dx|diagnosis)|principal|which (?:one )?(?:first|comes first))",
    ),
    ("modifier", r"\b(?:modifiers?|mods?)\b|-(?:25|59|x[epsu]|rt|lt|50|51)\b"),
    (
        "billed_together",
        r"\b(?:together|same (?:claim|day|session|date)|one claim|bundl\w*|unbundl\w*|ncci|ptp"
        r"|separately|with each other)\b|\bbill\w* \S+ (?:and|with) \S+",
    ),
    (
        "validity",
        r"\b(?:billable|valid|still (?:good|active|valid)|ok(?:ay)?|right|correct|acceptable"
        r"|deleted|active|allowed|specific enough|can i use|use)\b",
    ),
    (
        "code_for",
        r"\b(?:code for|codes? (?:to use )?for|what(?:'s| is) the (?:\w+ )?code|which code"
        r"|dx code|icd(?:-?10)?(?:-?cm)? code|how (?:do|should|would) (?:i|we|you) code"
        r"|how to code|right code)",
    ),
)
_ASK_PATTERNS = [(kind, re.compile(pattern, re.I)) for kind, pattern in _ASKS]
# A sentence ends at ?, ! or a full stop before a space: the dot inside 'N18.3' does not.
_SENTENCE = re.compile(r"(?:[^.?!\n]|\.(?=\S))*(?:[?!]+|\.(?=\s|$)|\n|$)")
_QUESTION_START = re.compile(
    r"^\s*(?:can|could|is|are|was|were|what|what's|which|how|should|shall|do|does|did|may"
    r"|would|will|please|pls|need|looking for|wondering)\b",
    re.I,
)
_LISTED_CODE = re.compile(r"(?:^|, )\s*([A-Z0-9][0-9A-Z.]{2,7}) \(")
_CONFIDENT_SUGGESTION = 1.0  # a search score from which the best hit is offered as the code

# (codes asked about, findings, suggestions, date of service) -> (answer, confidence)
Answerer = Callable[
    [list[CodeInfo], Sequence[Finding], Sequence[SearchHit], str | None], tuple[str, str]
]


@dataclass(frozen=True)
class Answer:
    question: str  # the customer's sentence: for the reviewer, never put in the draft
    kind: str  # one of KINDS
    answer: str
    codes: list[str]
    confidence: str  # 'high' (from a code set's own facts), 'medium', 'low'

    def to_dict(self) -> dict:
        return asdict(self)


def questions(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of TEXT that ask something; the whole text when none does."""
    spans = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        if sentence and (sentence.endswith("?") or _QUESTION_START.match(sentence)):
            spans.append((match.start(), match.end()))
    if not spans and text.strip():
        spans.append((0, len(text)))
    return spans


def kind_of(question: str) -> str:
    return next((kind for kind, pattern in _ASK_PATTERNS if pattern.search(question)), "other")


def answer_all(
    text: str,
    mentions: Sequence[CodeMention],
    findings: Sequence[Finding],
    suggestions: Sequence[SearchHit],
    date_of_service: str | None,
) -> list[Answer]:
    """One answer per question TEXT asks, in the order asked."""
    spans = questions(text)
    answers = []
    for start, end in spans:
        sentence = " ".join(text[start:end].split())
        infos = [m.info for m in mentions if start <= m.start < end]
        if not infos and len(spans) == 1:
            infos = [m.info for m in mentions]
        kind = kind_of(sentence)
        if kind in ("other", "code_for") and infos and not _asks_for_a_code(sentence):
            kind = "validity"  # "E11.9?" or "about E11.9": what the code is
        text_answer, confidence = _ANSWERERS[kind](infos, findings, suggestions, date_of_service)
        answers.append(
            Answer(sentence, kind, text_answer, [info.code for info in infos], confidence)
        )
    return answers


def _asks_for_a_code(sentence: str) -> bool:
    return dict(_ASK_PATTERNS)["code_for"].search(sentence) is not None


# --- one answerer per kind -------------------------------------------------------------


def _of(findings: Sequence[Finding], kind: str, codes: Sequence[str]) -> list[Finding]:
    wanted = set(codes)
    return [f for f in findings if f.kind == kind and (not wanted or wanted & set(f.codes))]


def _validity(
    infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], dos: str | None
) -> tuple[str, str]:
    if not infos:
        return "We found no code in this question to check; see the suggestions below.", "low"
    when = f" for the date of service {dos}" if dos else ""
    parts = [_status_sentence(info, findings, when) for info in infos]
    confidence = "medium" if any(info.status == UNVERIFIED for info in infos) else "high"
    return " ".join(parts), confidence


def _status_sentence(info: CodeInfo, findings: Sequence[Finding], when: str) -> str:
    system = info.system
    title = f" ({info.title})" if info.title and system != CPT else ""
    if info.status == BILLABLE:
        return f"Yes{when}: {info.code}{title} is a valid, billable {system} code."
    if info.status == UNVERIFIED:
        return (
            f"{info.code} is a CPT number{' in ' + info.section if info.section else ''}; "
            "without a licensed CPT file loaded we cannot confirm its descriptor."
        )
    if info.status == NOT_BILLABLE:
        below = _first_sentence_after(_of(findings, "not_billable", [info.code]), "code below it:")
        return f"No{when}: {info.code}{title} is a heading, not billable; {below}".rstrip()
    if info.status == NEEDS_SEVENTH:
        return f"No{when}: {info.code}{title} needs a 7th character to be billable."
    if info.status == DELETED and system == ICD9CM:
        return f"No: {info.code} is ICD-9-CM, retired on October 1, 2015; see the crosswalk."
    dated = _of(findings, "date_of_service", [info.code])
    if dated:
        return f"No{when}: {dated[0].message}"
    if info.status == DELETED:
        gone = f" on {info.deleted_on}" if info.deleted_on else ""
        return f"No{when}: {info.code}{title} was deleted{gone}."
    return f"No: {info.code} is not a valid {system} code."


def _first_sentence_after(found: list[Finding], marker: str) -> str:
    """The complete codes the not_billable finding lists ('N18.30 (title), N18.31 ...')."""
    if not found or marker not in found[0].message:
        return "a claim needs a complete code below it."
    listed = _LISTED_CODE.findall(found[0].message.split(marker, 1)[1])
    return f"use a complete code below it, such as {', '.join(listed[:4])}."


def _together(
    infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    if len(codes) < 2:
        return "Name both codes to check them against the NCCI edits.", "low"
    edits = [f for f in _of(findings, "ptp_edit", codes) if set(f.codes) <= set(codes)]
    addons = _of(findings, "add_on_code", codes)
    if not edits:
        text = (
            f"No NCCI procedure-to-procedure edit pairs {', '.join(codes)} in the tables we "
            "hold, so the edits do not stop billing them together."
        )
        if addons:
            text += " " + addons[0].message
        return text, "medium"
    sentences = []
    for edit in edits:
        column1, column2 = edit.codes
        table = edit.source.split(" (", 1)[0].split(", column", 1)[0]
        if "indicator 0" in edit.message:
            sentences.append(
                f"No: {column2} is bundled into {column1} ({table}) and no modifier lets both "
                "be paid."
            )
        elif "indicator 1" in edit.message:
            sentences.append(
                f"Only with a modifier: {column2} is bundled into {column1} ({table}); an "
                "NCCI-associated modifier (such as 59 or XS) lets both be paid when the "
                "documentation shows a distinct service."
            )
        else:
            sentences.append(f"{column1} and {column2} are an NCCI pair ({table}).")
    return " ".join(dict.fromkeys(sentences)), "high"


def _modifier(
    infos: list[CodeInfo], findings: Sequence[Finding], s: Sequence[SearchHit], d: str | None
) -> tuple[str, str]:
    text, confidence = _together(infos, findings, s, d)
    if len([i for i in infos if i.system in (CPT, HCPCS)]) >= 2:
        return text, confidence
    return (
        "Which modifier applies depends on the service and its documentation; the "
        "modifiers named are explained below.",
        "low",
    )


def _from_findings(kind: str, empty: str) -> Answerer:
    def answer(
        infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
    ) -> tuple[str, str]:
        found = _of(findings, kind, [info.code for info in infos])
        if not found:
            return empty, "low"
        return " ".join(f.message for f in found), "high"

    return answer


def _risk(
    infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    found = _of(findings, "cc_mcc", codes) + _of(findings, "hcc", codes)
    if not found:
        return "Name the ICD-10-CM code to check its CC/MCC and HCC status.", "low"
    return " ".join(f.message for f in found), "high"


def _sequencing(
    infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    notes = _of(findings, "code_first", codes) + _of(findings, "use_additional_code", codes)
    if not notes:
        return (
            "The code set gives no sequencing instruction between these codes: list first the "
            "condition chiefly responsible for the encounter (Official Guidelines, Section IV.G).",
            "low",
        )
    return " ".join(f.message for f in notes), "high"


def _code_for(
    _i: list[CodeInfo], _f: Sequence[Finding], suggestions: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    if not suggestions:
        return "We found no confident match; the record's exact wording is needed.", "low"
    best = suggestions[0]
    confidence = "medium" if best.score >= _CONFIDENT_SUGGESTION else "low"
    return (
        f"The closest match in the code set is {best.code} ({best.title}); confirm it against "
        "the documentation.",
        confidence,
    )


def _coverage(
    _i: list[CodeInfo], _f: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    return (
        "Coverage and payment are decided by the payer's policy (for Medicare, the NCD or "
        "your contractor's LCD), not by the code set: please check with the payer. We can "
        "answer how to code the service.",
        "high",
    )


def _other(
    infos: list[CodeInfo], findings: Sequence[Finding], s: Sequence[SearchHit], d: str | None
) -> tuple[str, str]:
    if infos:
        return _validity(infos, findings, s, d)
    return _code_for(infos, findings, s, d)


_ANSWERERS: dict[str, Answerer] = {
    "coverage": _coverage,
    "crosswalk": _from_findings(
        "crosswalk", "Name the ICD-9-CM code (such as 250.00) to crosswalk it."
    ),
    "cc_mcc_hcc": _risk,
    "seventh_character": _from_findings(
        "needs_seventh_character", "The code named is complete; it takes no 7th character."
    ),
    "sequencing": _sequencing,
    "modifier": _modifier,
    "billed_together": _together,
    "validity": _validity,
    "code_for": _code_for,
    "other": _other,
}
