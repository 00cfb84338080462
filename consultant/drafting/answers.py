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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType

from consultant.codes.search import SearchHit
from consultant.codes.store import CodeInfo
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    DELETED,
    HCPCS,
    ICD9CM,
    ICD10CM,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    UNVERIFIED,
    compact,
)
from consultant.drafting.cases import encounter_words
from consultant.drafting.extract import (
    LIST_ITEM,
    CodeMention,
    item_of,
    names_clinical_words,
    paragraph_of,
)
from consultant.drafting.findings import Finding, pair_edits
from consultant.drafting.guidelines import (
    COMBINATION,
    SEQUENCING,
    TOGETHER,
    names_conditions,
    settling,
)
from consultant.drafting.guidelines import mentions as finding_mentions
from consultant.drafting.modifier_choice import choose
from consultant.drafting.sequencing import ordered

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
    # a "payment HCC" is a risk-adjustment question, not one for the payer
    ("cc_mcc_hcc", r"\b(?:cc|mcc|hcc|risk adjust\w*|severity|raf|v2[48])\b"),
    (
        "coverage",
        r"\b(?:covered|coverage|cover|reimburs\w*|pay for|pays?\b|paid\b|payment|medical"
        r" necessity|medically necessary|lcd|ncd|prior auth\w*|pre-?auth\w*|allowable|fee schedule"
        # how often a payer allows it, and what the patient pays
        r"|how (?:often|frequently)|frequency|once (?:every|a year|per)|every \d+ (?:years?"
        r"|months?)|co-?pays?|deductible|co-?insurance|cost[- ]?shar\w*|waived?)",
    ),
    ("crosswalk", r"\b(?:icd[- ]?9|cross[- ]?walk|gems?\b|convert|equivalent|old code)"),
    (
        "seventh_character",
        r"\b(?:7th|seventh)\b|\bcharacter\b(?<!(?:4|5|6)th character)"
        r"|\b(?:initial|subsequent) encounter|\bsequela\b"
        # "Is this an A or a D?"
        r"|(?-i:\b(?:an?\s+)?[ADS]\s+(?:or|vs\.?)\s+(?:an?\s+)?[ADS]\b)",
    ),
    (
        "sequencing",
        r"\b(?:sequenc\w*|first[- ]listed|list(?:ed)? first|go(?:es)? first|code first|primary"
        r" (?:dx|diagnosis)|principal|which (?:one )?(?:first|comes first)|comes? first"
        r"|(?:what|which) order\b|order of (?:the )?(?:codes|dx)|put first"
        r"|first dx|^\W*order\b|\bpdx\b|\bmain (?:dx|diagnosis)\b|\bfirst position\b"
        # "should I report the injury or the fall first?", "which goes 1st?"
        r"|\b(?:go(?:es)?|list(?:ed)?|put|report(?:ed)?|code[sd]?|bill(?:ed)?|sequenced?)\s+"
        r"(?:[\w.-]+\s+){0,5}(?:first|1st)\b"
        r"(?!\s+(?:visit|encounter|time|day|appointment|dose|trimester|degree|episode))"
        # "Is the adverse effect code primary?", "which is primary and which secondary?"
        # ("osteoarthritis, primary?" is the condition's type)
        r"|(?<!, )(?<!,)\bprimary(?=\s*(?:\?|$|\s+(?:dx|diagnosis|here|on the claim)\b"
        r"|\s+(?:and|or)\s+(?:which|secondary)\b))"
        r"|\b(?:which|what)\s+(?:one\s+|code\s+|dx\s+)?leads\b|\blead\s+or\b"
        # "Does the N18.32 go before or after the E11.22?", "have to follow the stroke code?"
        r"|\bbefore or after\b|\b(?:go(?:es)?|come?s?|listed) (?:before|after)\b"
        r"|\b(?:follow|precede)s?\s+(?:the|it|them|this|that)\b)",
    ),
    ("modifier", r"\b(?:modifiers?|mods?)\b|-(?:25|59|x[epsu]|rt|lt|50|51)\b"),
    (
        "billed_together",
        r"\b(?:together|same (?:claim|day|session|date)|one claim|bundl\w*|unbundl\w*|ncci|ptp"
        r"|separately|with each other)\b|\bbill\w* \S+ (?:and|with) \S+"
        r"|\bbill\w* (?:an? |the )?\S+ too\b|\balso bill\b",
    ),
    (
        "validity",
        r"\b(?:billable|valid|still (?:good|active|valid)|ok(?:ay)?|right|correct|acceptable"
        r"|deleted|active|allowed|specific enough|can i use|use"
        # "Is E11.6 a real code?", "Does N18.3 need a 5th character?", "a header?"
        r"|invalid|exist|real code|complete code|incomplete|truncated|header|heading"
        r"|retired|terminated|expired|discontinued"
        r"|(?:more|another|an? (?:4|5|6)th) (?:digits?|characters?))\b",
    ),
    (
        "code_for",
        r"\b(?:code for|codes? (?:to use )?for|what(?:'s| is) the (?:\w+ )?code|which code"
        r"|dx code|icd(?:-?10)?(?:-?cm)? code|how (?:do|should|would) (?:i|we|you) code"
        r"|what codes?\b|which codes?\b|(?:codes?|use) instead\b"
        r"|what(?:'s| is| are| would be| should be) the (?:[\w-]+ ){0,3}codes?\b"
        r"|what (?:do|should|would|can) (?:i|we|you) (?:code|use|report|assign)\b"
        r"|how (?:do|should|would|can|to) (?:i |we |you )?(?:code|report)\b"
        r"|\b(?:icd-?10(?:-cm|-pcs)?|pcs|hcpcs|dx|j)[- ]codes? for\b"
        # "Can you tell me the ICD-10 for left knee OA?"
        r"|\b(?:icd-?10(?:-cm|-pcs)?|hcpcs)\s+for\b"
        r"|(?:correct|appropriate|proper|best) (?:[\w-]+ )?codes?\b"
        r"|(?:do|should|can|would|must) (?:i|we|you) (?:also )?(?:code|report|capture|assign)\b"
        r"|\bbe (?:coded|reported|captured)\b"
        r"|what (?:[\w-]+ ){0,2}codes? (?:is|are|do|does|should|would)\b"
        r"|\b(?:list|set) of (?:the )?(?:dx )?codes\b|\bfull (?:dx )?(?:code )?set\b"
        r"|\ball (?:the )?(?:dx )?codes\b"
        r"|how to code|right code)"
        # coders' shorthand: "PCS for the c-section?", "- Dx for screening PSA?", "What
        # HCPCS and how many units?", "MVC passenger - V code?", "Codes?"
        r"|(?:^\W*|[-:)+]\s*|\band\s+|\bwhat(?:'s| is| are)?\s+(?:the\s+)?)"
        r"(?:pcs|hcpcs|dx|icd-?10(?:-cm|-pcs)?)\b(?!\s+(?:is|was)\b)"
        r"|\bcodes?(?:\(s\))?\s*\??\s*$|\bcode\(s\)"
        r"|which (?:[\w-]+ ){1,3}codes?\b|what should (?:it|that|this|they) be\b|\bwhat then\b"
        # "Do I need a separate osteoporosis code too?", "a place of occurrence?"
        r"|(?:need|add|use|include) (?:both |also )?(?:an? |the )?(?:[\w-]+ ){0,4}codes?\b"
        r"|(?:need|add|use|include) (?:an? |the )?(?:place of occurrence|external cause|activity)"
        r"|\bbe on (?:there|the claim)\b|\bwhat(?:'s| is) the icd-?10\b",
    ),
)
_ASK_PATTERNS = [(kind, re.compile(pattern, re.I)) for kind, pattern in _ASKS]
# A sentence ends at ?, ! or a full stop before a space, with the quote or bracket it
# closes ('type unknown." Our system'): the dot inside 'N18.3', after the E of 'E. coli' or
# ending 'incl.', 'approx.' or 'vs.' does not.
_SENTENCE = re.compile(
    r"(?:[^.?!\n]|\.(?![\"')\]]*(?:\s|$))|(?<=\b[A-Z])\.|(?<=\bincl)\.|(?<=\bapprox)\.|(?<=\bvs)\.)*"
    r"(?:[?!]+[\"')\]]*|\.[\"')\]]*(?=\s|$)|\n|$)"
)
# A line break inside a wrapped sentence: the next line goes on in lower case, or the line
# before is as long as mail is wrapped at and not ended
_WRAP = re.compile(r"(?<=[^\s.?!:])\n(?=[ \t]*(?:[a-z(]|\w))")
_WRAPPED = 55  # characters from which a line was cut by the sender's wrapping
_QUESTION_START = re.compile(
    r"^\s*(?:can|could|is|are|was|were|what|what's|which|how|should|shall|do|does|did|may"
    r"|would|will|please|pls|need|looking for|wondering)\b",
    re.I,
)
_NEXT_QUESTION = re.compile(
    r"(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+|\s+-\s+)(?=(?:in what|what|what's|which|how"
    r"|is|are|can|do|does|should|would|will|when|where)\s)",
    re.I,
)
# Words of a question that name no condition ("what are the codes for the ulcer")
_ASKING = frozenset(
    re.findall(
        r"\S+",
        """what which code codes coding this that these those there with from have should would
        could does goes first list full correct right report bill billed""",
    )
)
_ASKING_WORDS = 3  # words from which the part before "and which ..." is a question itself
_LISTED_CODE = re.compile(r"(?:^|, )\s*([A-Z0-9][0-9A-Z.]{2,7}) \(")
_CONFIDENT_SUGGESTION = 0.9  # a search score from which the best hit is offered as the code
_UNSPECIFIED = re.compile(r"\bunspecified\b", re.I)
_ENCOUNTER_TITLE = re.compile(r"\b(?:initial|subsequent) encounter\b|\bsequela\b", re.I)
_NAMED = 4  # codes a "what is the code" answer names at most
_SEQUENCED = 4  # codes a "what goes first" answer orders at most
# T36-T50 with 5 as the 6th character: the adverse effect of a drug properly taken
_ADVERSE_EFFECT = re.compile(r"^T(?:3[6-9]|4\d|50)\.\w{2}5")

# (codes asked about, findings, suggestions, date of service) -> (answer, confidence)
Answerer = Callable[
    [list[CodeInfo], Sequence[Finding], Sequence[SearchHit], str | None], tuple[str, str]
]


_NONE: Mapping = MappingProxyType({})  # no leads or partners


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
    """Spans of the questions TEXT asks: its asking sentences, each cut where "and" or a
    comma starts another question ("What's the dx code for this and which code is listed
    first?" asks two); the whole text when nothing is asked."""
    return [(start, end) for start, end, _ in _questions(text)]


def _questions(text: str) -> list[tuple[int, int, tuple[int, int]]]:
    """QUESTIONS, each with the span of the whole sentence it was cut from."""
    spans = []
    for match in _SENTENCE.finditer(_unwrapped(text)):
        sentence = match.group().strip()
        if sentence and (sentence.endswith("?") or _QUESTION_START.match(sentence)):
            start = match.start()
            for cut in _NEXT_QUESTION.finditer(text, match.start(), match.end()):
                if len(text[start : cut.start()].split()) < _ASKING_WORDS:
                    continue  # "Also, can 29881 and 29877 go together?" is one question
                spans.append((start, cut.start(), match.span()))
                start = cut.end()
            spans.append((start, match.end(), match.span()))
    if not spans and text.strip():
        spans.append((0, len(text), (0, len(text))))
    return spans


def _unwrapped(text: str) -> str:
    """TEXT with the line breaks of hard-wrapped mail read as spaces (same length, so spans
    hold): a break inside a sentence ("which is first - the\nangioedema or the drug
    code?") continues it; a blank line, a list item, or a short line ("Thanks,") ends it."""

    def join(match: re.Match[str]) -> str:
        line = text[text.rfind("\n", 0, match.start()) + 1 : match.start()]
        after = text[match.end() : match.end() + 8].lstrip(" \t")
        wrapped = after[:1].islower() or after[:1] == "(" or len(line) >= _WRAPPED
        return " " if wrapped and not LIST_ITEM.match(text, match.start()) else "\n"

    return _WRAP.sub(join, text)


def kind_of(question: str) -> str:
    return next((kind for kind, pattern in _ASK_PATTERNS if pattern.search(question)), "other")


def question_kind(sentence: str, names_codes: bool) -> str:
    """KIND_OF, except that a question naming no code yet asking for one is `code_for`
    ("What is the PCS code for a TKA, right?", "What codes should we use instead?")."""
    kind = kind_of(sentence)
    if kind == "validity" and not names_codes and _asks_for_a_code(sentence):
        return "code_for"
    return kind


def answer_all(
    text: str,
    mentions: Sequence[CodeMention],
    findings: Sequence[Finding],
    suggestions: Sequence[SearchHit],
    date_of_service: str | None,
    leads: Mapping[tuple[int, int], Sequence[SearchHit]] = _NONE,
    modifiers: Sequence[int] = (),
    partners: Mapping[str, Sequence[SearchHit]] = _NONE,
    modifier_title: Callable[[str], str | None] = lambda _: None,
) -> list[Answer]:
    """One answer per question TEXT asks, in the order asked; LEADS, by the span of the
    question they were found for, each described condition's or procedure's best code,
    answer "what is the code" (default: every question's, else the suggestions), with the
    PARTNERS their notes ask for (by lead code); a question naming one of the MODIFIERS
    (their offsets) asks which, and the modifier chosen is named by MODIFIER_TITLE."""
    spans = _questions(text)
    everyone = every_lead(leads)
    answers = []
    for start, end, whole in spans:
        sentence = " ".join(text[start:end].split())
        # a code is listed once, where first named (often the subject line): a question
        # that names it again asks about it too
        infos = [m.info for m in mentions if start <= m.start < end or _names(sentence, m)]
        if not infos and len(spans) == 1:
            infos = [m.info for m in mentions]
        kind = question_kind(sentence, bool(infos))
        if (kind == "other" or (kind == "code_for" and infos)) and any(
            start <= at < end for at in modifiers
        ):
            # "Should we be using 59 or XU now?", "How do we report the bilateral 64721 -
            # one line w/ 50 or two lines RT/LT?"
            kind = "modifier"
        told = kind in ("other", "validity") and not infos and not sentence.endswith("?")
        if told and len(spans) > 1:
            # "Please handle accordingly.": a request, not a coding question; "Also the
            # patient had a TKA on the right side, do I code that too?": its telling
            continue
        if kind == "other" and not infos and whole != (start, end):
            continue  # "..., or does the biopsy need something too?": the same question
        scoped = findings
        # a question that describes nothing itself reads its paragraph
        context = sentence if names_clinical_words(sentence) else _paragraph(text, start, end)
        if len(spans) > 1 and not names_conditions(context):
            # combination codes for another question's conditions do not answer this one,
            # unless it points at one of them ("the codes for the ulcer")
            words = {w for w in re.findall(r"[a-z]{4,}", context.lower())} - _ASKING
            scoped = [
                f
                for f in findings
                if f.kind != COMBINATION
                or any(finding_mentions(f, i.code) for i in infos)
                or words & set(re.findall(r"[a-z]{4,}", f.message.lower()))
            ]
        if kind in ("other", "code_for") and infos and not _asks_for_a_code(sentence):
            # "R10.9 with K35.80?": whether they go together, when a rule settles it;
            # "E11.9?" or "about E11.9": what the code is
            kind = "billed_together" if _icd_pair_rules(infos, scoped) else "validity"
        if (
            kind == "validity"
            and len(infos) == 1
            and _ADDING.search(sentence)
            and settling(scoped, [infos[0].code], TOGETHER)
        ):
            # "Do I still add Z79.4 for the insulin?" beside gestational diabetes: whether
            # it goes with the case's codes, which a guideline settles (I.C.15.g)
            kind = "billed_together"
        leading = ("code_for", "sequencing", "seventh_character")
        own = leads.get((start, end))
        hits = (own or everyone or suggestions) if kind in leading else suggestions
        if kind == "sequencing" and own and _diagnoses(own) < 2:
            # "which goes first, the diabetes or the T code?": the T code another question led to
            hits = [*own, *(h for h in everyone if _pointed(sentence, h.code) and h not in own)]
        if kind == "seventh_character" and len(_with_seventh(own or ())) > 1:
            infos = []  # case by case ("... for each?"): each case's code, read in its words
        joined = [p for hit in hits for p in partners.get(hit.code, ())]
        if kind == "sequencing":
            hits = [*hits, *joined]  # the codes the leads' notes ask for go in the order too
        text_answer, confidence = _ANSWERERS[kind](infos, scoped, hits, date_of_service)
        if kind == "modifier":
            # "Which modifier goes on which code?" asks about its case's codes ("Case B:
            # ... (64721) on 1/15/26. Modifier?"), else the message's
            item = _item(text, start, end)
            billed = infos or [m.info for m in mentions]
            if choices := choose(text[slice(*item)], billed, scoped, text) or choose(
                text, billed, scoped
            ):
                pairs = text_answer if pair_edits(scoped, [i.code for i in billed]) else ""
                chosen = " ".join(c.sentence(modifier_title(c.modifier)) for c in choices)
                text_answer = f"{pairs} {chosen}".strip()
                confidence, infos = "medium", billed
        codes = [info.code for info in infos]
        if kind == "seventh_character" and (completed := _completions(infos, hits)):
            codes = [hit.code for hit in completed]
        elif kind == "seventh_character" and not codes:
            codes = [hit.code for hit in _with_seventh(hits)]
        if kind == "sequencing" and (combined := _ordering_combinations(infos, scoped)):
            codes = list(dict.fromkeys(code for f in combined for code in f.codes))
        elif kind == "sequencing" and len(codes) < 2:
            codes = ordered(_to_sequence(infos, hits))[0] or codes
        if kind == "coverage" and not codes:
            # "Will Medicare cover it?": the services the message bills, else the one it
            # describes ("the flu shot admin")
            services = [m.info.code for m in mentions if m.info.system in (CPT, HCPCS)]
            codes = list(dict.fromkeys(services)) or [
                h.code for h in own or () if h.system == HCPCS
            ]
            if codes:
                text_answer = (
                    f"For {_listed(codes, 'and')}: {text_answer[0].lower()}{text_answer[1:]}"
                )
        if kind == "code_for" and not codes:
            combinations = [f for f in scoped if f.kind == COMBINATION]
            combined = [c for f in combinations for c in f.codes]
            combined += [h.code for h in _beside_combination(combinations, hits)]
            codes = list(dict.fromkeys(combined)) or [h.code for h in hits[:_NAMED]]
        if kind == "code_for" and codes and (extra := [p for p in joined if p.code not in codes]):
            # the codes the named ones' notes ask for, which the message names
            codes = [*codes, *(p.code for p in extra)]
            text_answer += " Add " + _listed([f"{p.code} ({p.title})" for p in extra], "and")
            text_answer += ": the notes of the codes above ask for them, and the message says so."
        answers.append(Answer(sentence, kind, text_answer, codes, confidence))
    return answers


def _diagnoses(hits: Sequence[SearchHit]) -> int:
    return sum(hit.system == ICD10CM for hit in hits)


# "the T code", "the Z codes", "the external cause": a kind of code a question points at
_POINTED_LETTER = re.compile(r"\b(?:the|a|an)\s+([A-Z])[\s-]?codes?\b")
_POINTED_CAUSE = re.compile(r"\bexternal\s+causes?\b|\bE[\s-]?codes?\b", re.I)
_CAUSE_CODE = re.compile(r"^(?:[VWX]\d|Y[0-3])")


def _pointed(sentence: str, code: str) -> bool:
    """Whether SENTENCE points at CODE by its kind ("the T code", "the external cause")."""
    letters = {m[1] for m in _POINTED_LETTER.finditer(sentence)}
    return code[0] in letters or bool(_POINTED_CAUSE.search(sentence) and _CAUSE_CODE.match(code))


def every_lead(leads: Mapping[tuple[int, int], Sequence[SearchHit]]) -> list[SearchHit]:
    """Every question's LEADS, each code once, best first."""
    unique = {(hit.system, hit.code): hit for hits in leads.values() for hit in hits}
    return sorted(unique.values(), key=lambda hit: -hit.score)


def _item(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the case a question asks about: its paragraph, or within it the list
    item ("- Dr. Ames bills 93010 twice - what modifier goes on the 2nd one?") up to the
    question's end."""
    item = item_of(text, start, end)
    return (item[0] if item else paragraph_of(text, start, end)[0]), end


def _paragraph(text: str, start: int, end: int) -> str:
    return text[slice(*paragraph_of(text, start, end))]


def _names(sentence: str, mention: CodeMention) -> bool:
    code = mention.info.code
    spellings = {code, code.replace(".", "")}
    return any(re.search(rf"(?<![\w.]){re.escape(c)}(?!\w)", sentence, re.I) for c in spellings)


# "Do I still add Z79.4?", "should we also code Z79.4?": whether it goes beside the rest
_ADDING = re.compile(
    r"\b(?:do|should|can|must|would)\s+(?:i|we|you)\s+(?:still\s+|also\s+)?"
    r"(?:add|include|report|code|use|need|put)\b",
    re.I,
)


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
    # "Is I10 valid here?" with CKD named: valid, yet not the code to report
    parts += [
        f"But: {f.message}"
        for f in findings
        if f.kind == COMBINATION and any(finding_mentions(f, info.code) for info in infos)
    ]
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
    if invalid := _of(findings, "invalid_code", [info.code]):
        # "... not a code in ICD-10-CM FY2026. The nearest existing code above it is K21.9"
        return f"No: {invalid[0].message}"
    return f"No: {info.code} is not a valid {system} code."


def _first_sentence_after(found: list[Finding], marker: str) -> str:
    """The complete codes the not_billable finding lists ('N18.30 (title), N18.31 ...')."""
    if not found or marker not in found[0].message:
        return "a claim needs a complete code below it."
    listed = _LISTED_CODE.findall(found[0].message.split(marker, 1)[1])
    return f"use a complete code below it, such as {', '.join(listed[:4])}."


def _icd_pair_rules(infos: Sequence[CodeInfo], findings: Sequence[Finding]) -> list[Finding]:
    """What settles whether two or more ICD-10-CM codes are reported together, strongest
    first: an Official Guidelines rule (a symptom integral to the diagnosis, a combination
    code) wins over the tabular's Excludes1 and Excludes2 notes about the same codes."""
    icd = [info.code for info in infos if info.system == ICD10CM]
    if len(icd) < 2:
        return []
    ruled = settling(findings, icd, TOGETHER)
    if ruled:
        return ruled
    for kind in ("excludes1", "excludes2"):
        notes = [f for f in findings if f.kind == kind and len(set(f.codes) & set(icd)) >= 2]
        if notes:
            return notes
    return []


def _together(
    infos: list[CodeInfo], findings: Sequence[Finding], _s: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    if len(codes) < 2:
        if ruled := settling(findings, codes, TOGETHER):
            return " ".join(f.message for f in ruled), "high"
        return "Name both codes to check them against the NCCI edits.", "low"
    if ruled := _icd_pair_rules(infos, findings):
        return " ".join(f.message for f in ruled), "high"
    edits = pair_edits(findings, codes)
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
    infos: list[CodeInfo], findings: Sequence[Finding], hits: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    if ruled := settling(findings, [i.code for i in infos if i.system == ICD10CM], SEQUENCING):
        return " ".join(f.message for f in ruled), "high"  # the guidelines' order
    if combined := _ordering_combinations(infos, findings):
        # "CHF, CKD 3b and HTN - what codes and in what order?": the combination code
        # first, then the codes it asks for (I.C.9.a), as the rule says them
        return " ".join(f.message for f in combined), "medium"
    notes = _of(findings, "code_first", codes) + _of(findings, "use_additional_code", codes)
    if notes:
        return " ".join(f.message for f in notes), "high"
    order, why = ordered(_to_sequence(infos, hits))
    if why:
        sure = "high" if len(codes) > 1 else "medium"
        return f"List {order[0]} first, then {_listed(order[1:], 'then')}: {'; '.join(why)}.", sure
    return (
        "The code set gives no sequencing instruction between these codes: list first the "
        "condition chiefly responsible for the encounter (Official Guidelines, Section IV.G).",
        "low",
    )


def _ordering_combinations(infos: list[CodeInfo], findings: Sequence[Finding]) -> list[Finding]:
    """The combination findings, whose codes are in the order their rules give, when a
    sequencing question names no diagnosis code of its own; else []."""
    if any(info.system == ICD10CM for info in infos):
        return []
    return [f for f in findings if f.kind == COMBINATION]


def _to_sequence(infos: list[CodeInfo], hits: Sequence[SearchHit]) -> list[tuple[str, str]]:
    """The ICD-10-CM codes a sequencing question is about: those it names, else each
    described condition's best code (and the codes its notes ask for)."""
    named = [(info.code, info.title) for info in infos if info.system == ICD10CM]
    if len(named) > 1:
        return named
    found = [(hit.code, hit.title) for hit in hits if hit.system == ICD10CM]
    return list(dict.fromkeys([*named, *found]))[:_SEQUENCED]


def _seventh(
    infos: list[CodeInfo], findings: Sequence[Finding], hits: Sequence[SearchHit], _d: str | None
) -> tuple[str, str]:
    codes = [info.code for info in infos]
    found = _completions(infos, hits) if infos else _with_seventh(hits)
    if found:
        return _case_by_case(found)
    if named := _of(findings, "needs_seventh_character", codes):
        return " ".join(f.message for f in named), "high"
    if infos:
        return "The code named is complete; it takes no 7th character.", "high"
    return "Name the injury or its code to find its 7th character.", "low"


def _case_by_case(found: Sequence[SearchHit]) -> tuple[str, str]:
    uses = [
        f"{hit.code} ({hit.title}): its 7th character {hit.code[-1]} is for the "
        f"{hit.title.rsplit(', ', 1)[-1]}"
        for hit in found
    ]
    if len(uses) == 1:
        told = f"Use {uses[0]}"
    else:
        told = "Case by case, as the message lists them: " + "; ".join(uses)
    return (
        f"{told} (ICD-10-CM Official Guidelines, section I.C.19.a); check the record says so.",
        "medium",
    )


def _completions(infos: Sequence[CodeInfo], hits: Sequence[SearchHit]) -> list[SearchHit]:
    """The codes named (INFOS) completed with the 7th character the case's encounter takes,
    as its search found them (HITS): "T22.211" at a dressing change is T22.211D, and
    "S52.521A" named for today's cast check S52.521D."""
    stems = {compact(info.code)[:6] for info in infos if info.system == ICD10CM}
    return [hit for hit in _with_seventh(hits) if compact(hit.code)[:6] in stems]


def _with_seventh(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """The hits whose codes carry a 7th character saying the encounter: the best one, or
    one for each case a question asks about over several."""
    return [
        hit
        for hit in hits
        if hit.system == ICD10CM
        and len(hit.code.replace(".", "")) == 7
        and _ENCOUNTER_TITLE.search(hit.title)
    ]


def _code_for(
    infos: list[CodeInfo],
    findings: Sequence[Finding],
    suggestions: Sequence[SearchHit],
    _d: str | None,
) -> tuple[str, str]:
    combined = [f for f in findings if f.kind == COMBINATION]
    icd = [info.code for info in infos if info.system == ICD10CM]
    if icd:
        combined = settling(combined, icd, TOGETHER) or combined
    if combined:  # the conditions named call for combination codes, each looked up
        message = " ".join(f.message for f in combined)
        if rest := _beside_combination(combined, suggestions):
            # "DM2 with polyneuropathy, chronic systolic HF, s/p BKA": the HF and the
            # amputation status are coded too
            listed = _listed([f"{h.code} ({h.title})" for h in rest], "and")
            message += f" Beside them, for the other conditions described: {listed}."
        return message, "high" if icd else "medium"
    if not suggestions:
        return (
            "No confident match: nothing in the code set fits the description closely enough "
            "to suggest a code. The documented diagnosis or procedure, in the record's own "
            "words, would let us answer.",
            "low",
        )
    # each condition or procedure described has its own best code: the sure ones are
    # named as the answer, the others as likely
    named = suggestions[:_NAMED]
    sure = [hit for hit in named if hit.score >= _CONFIDENT_SUGGESTION]
    likely = [hit for hit in named if hit.score < _CONFIDENT_SUGGESTION]
    sentences = []
    if sure:
        sentences.append(f"Use {_listed([f'{h.code} ({h.title})' for h in sure], 'and')}.")
    if likely:
        lead = "Likely also" if sure else "The closest match is" if len(named) == 1 else "Likely"
        sentences.append(f"{lead} {_listed([f'{h.code} ({h.title})' for h in likely], 'and')}.")
    sentences.append(f"Check {'them' if len(named) > 1 else 'it'} against the record.")
    for hit in named:
        if _ADVERSE_EFFECT.match(hit.code):
            sentences.append(
                f"{hit.code} is an adverse effect: code the effect itself first (the suggestions "
                f"below name the likeliest), then {hit.code} (ICD-10-CM Official Guidelines, "
                "section I.C.19.e.5(a))."
            )
        if hit.open_axes:
            sentences.append(
                f"The question did not state the {_listed(hit.open_axes)}: {hit.code} assumes "
                "the usual value, which the operative note must confirm."
            )
        elif _UNSPECIFIED.search(hit.title):
            sentences.append(
                f"{hit.code} is an unspecified code: documentation of the side, type, stage or "
                "site would allow a more specific one."
            )
    return " ".join(sentences), "medium" if sure else "low"


def _beside_combination(combined: Sequence[Finding], hits: Sequence[SearchHit]) -> list[SearchHit]:
    """Of a code question's best HITS, those for conditions the COMBINED findings do not
    code: not of a combination code's category, nor the single code one replaces (I10)."""
    if not combined:
        return []
    categories = {code[:3] for f in combined for code in f.codes}
    return [
        hit
        for hit in hits[:_NAMED]
        if hit.code[:3] not in categories
        and not any(finding_mentions(f, hit.code) for f in combined)
    ]


def _listed(items: Sequence[str], last: str = "or") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


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
    "seventh_character": _seventh,
    "sequencing": _sequencing,
    "modifier": _modifier,
    "billed_together": _together,
    "validity": _validity,
    "code_for": _code_for,
    "other": _other,
}


# Kinds of question a suggested code can answer, when they name no code of their own.
_WANTS_CODES = frozenset(("code_for", "sequencing", "seventh_character", "cc_mcc_hcc", "other"))


_MORE_SPECIFIC = re.compile(
    r"\bmore specific\b|\bwhat (?:should|do) (?:we|i) use\b|\bwhat (?:code )?instead\b"
    r"|\breplace(?:ment)? code\b|\bcorrect code\b",
    re.I,
)


def code_questions(
    text: str, mentions: Sequence[CodeMention], modifiers: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Spans of the questions in TEXT that a code search answers: "what is the code for",
    or a question about a condition named in words rather than by code. A message that
    only asks about the codes or MODIFIERS (their offsets) it quotes ("Is it 79 plus
    LT?") gets no suggestions at all."""
    wanted = []
    for start, end, (first, last) in _questions(text):
        sentence = text[start:end]
        if (
            (start, end) != (first, last)
            and kind_of(sentence) == "other"
            and not _MORE_SPECIFIC.search(sentence)
        ):
            continue  # a cut-off "or does the biopsy need something too?" asks no code
        # "Is N18.3 billable, or do we have to use the 5th character?": the second question
        # is about the code the first names
        whole = text[first:last]
        named = any(first <= m.start < last or _names(whole, m) for m in mentions) or any(
            first <= at < last for at in modifiers
        )
        kind = question_kind(sentence, named)
        if (
            kind == "code_for"
            or _MORE_SPECIFIC.search(sentence)
            or (kind in _WANTS_CODES and not named)
            # "What 7th character for T22.211?" at a dressing change: the code completed
            or (
                kind == "seventh_character"
                and encounter_words(text[paragraph_of(text, start, end)[0] : end])
            )
        ):
            wanted.append((start, end))
    return wanted
