"""The ICD-10-CM Official Guidelines' conventions, applied to the codes and words of one
question.

A coder asks about a case, not about the guidelines, so a finding here fires only when
the question meets a convention: a symptom named with the diagnosis it belongs to,
hypertension or diabetes named with a condition the classification links to it, a
poisoning code, an external cause listed first, an uncertain diagnosis. Each finding gives
the codes to use (looked up, and billable on the date of service) and cites the section
of the guidelines from guidelines.toml, where the rules are written in our own words.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from consultant.codes.query_cues import GESTATIONAL_DIABETES
from consultant.codes.store import CodeInfo, CodeStore
from consultant.codes.systems import BILLABLE, ICD10CM, INVALID, compact
from consultant.drafting.findings import Finding, note_references

GUIDELINE = "guideline"
COMBINATION = "combination"
TOGETHER = "together"  # a rule settles whether codes are reported together
SEQUENCING = "sequencing"  # a rule settles which code goes first


# --- the rules and maps of guidelines.toml ---------------------------------------------


@dataclass(frozen=True)
class Rule:
    key: str
    title: str
    rule: str  # our own words
    source: str  # "ICD-10-CM Official Guidelines FY2026, section I.A.12.a"
    answers: tuple[str, ...]  # TOGETHER and/or SEQUENCING


@dataclass(frozen=True)
class Integral:
    """Symptom codes that are part of the diagnoses named beside them (I.B.5)."""

    symptoms: tuple[str, ...]  # compact code prefixes
    sign: str
    diagnoses: dict[str, str]  # compact code prefix -> the diagnosis in words


@dataclass(frozen=True)
class Complication:
    """A condition the index links to diabetes with 'with', and how it is coded."""

    what: str
    codes: tuple[str, ...]  # compact prefixes of a named complication code
    suffixes: tuple[str, ...]  # the diabetes category plus one of these is the combination
    words: re.Pattern[str] | None  # how a question names it without a code
    ckd: bool  # read by the CKD stage reader instead of `words`
    add: str | None  # the code that goes with the combination when read from words
    note: str | None


@dataclass(frozen=True)
class Guidelines:
    version: str
    rules: dict[str, Rule]
    integral: tuple[Integral, ...]
    hypertension: dict[str, Any]
    ckd_stages: dict[str, tuple[str, ...]]
    ckd_late: frozenset[str]
    heart_failure: dict[str, Any]
    diabetes: dict[str, Any]
    complications: tuple[Complication, ...]
    medications: dict[str, tuple[str, re.Pattern[str]]]  # kind -> (Z79 code, words)


def builtin_path() -> Path:
    return Path(str(resources.files("consultant.codes") / "guidelines.toml"))


def load_guidelines(path: Path | None = None) -> Guidelines:
    """The rules and maps of PATH (default: the bundled guidelines.toml), read once."""
    return _load(str(path or builtin_path()))


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b", re.I)


@cache
def _load(path: str) -> Guidelines:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    rules = {
        key: Rule(key, entry["title"], entry["rule"], entry["source"], tuple(entry["answers"]))
        for key, entry in data["rules"].items()
    }
    integral = tuple(
        Integral(
            tuple(compact(s) for s in entry["symptoms"]),
            entry["sign"],
            {compact(code): words for code, words in entry["diagnoses"].items()},
        )
        for entry in data["integral"]
    )
    diabetes = data["diabetes"]
    complications = tuple(
        Complication(
            what=entry["what"],
            codes=tuple(compact(c) for c in entry["codes"]),
            suffixes=tuple(entry["suffixes"]),
            words=_words(entry["words"]) if "words" in entry else None,
            ckd=bool(entry.get("ckd")),
            add=entry.get("add"),
            note=entry.get("note"),
        )
        for entry in diabetes["complications"]
    )
    medications = {
        kind: (entry["code"], _words(entry["words"]))
        for kind, entry in diabetes["medications"].items()
    }
    return Guidelines(
        version=data["version"],
        rules=rules,
        integral=integral,
        hypertension=data["hypertension"],
        ckd_stages={stage: tuple(codes) for stage, codes in data["ckd"]["stages"].items()},
        ckd_late=frozenset(data["ckd"]["late"]),
        heart_failure=data["heart_failure"],
        diabetes=diabetes,
        complications=complications,
        medications=medications,
    )


# --- reading the question's words ------------------------------------------------------

# A mention is left out when its clause says it is absent or uncertain ("no CKD",
# "denies HTN", "r/o CHF"); a clause ends at punctuation or a word that starts a new one.
_NEGATION = re.compile(
    r"\b(?:no|not|denies|denied|without|negative for|free of|ruled out|absence of|never"
    r"|r/o|rule out|probable|possible|suspected|suspect|questionable|likely)(?![\w/])",
    re.I,
)
_CLAUSE_BREAK = re.compile(
    r"[.;:!?,\n()]|\b(?:but|however|although|though|has|have|had|with|presents?|presenting)\b",
    re.I,
)


def affirmed(text: str, start: int) -> bool:
    """Whether the mention at START is asserted: no negation or uncertainty word before it
    in its clause."""
    before = text[max(0, start - 80) : start]
    if re.search(r"\bnon-?$", before, re.I):
        return False  # "non-insulin", "non-diabetic"; "non-insulin Ozempic" names Ozempic
    cut = 0
    for match in _CLAUSE_BREAK.finditer(before):
        cut = match.end()
    return _NEGATION.search(before[cut:]) is None


_HYPERTENSION = re.compile(r"\b(?:hypertension|hypertensive|htn|high blood pressure)\b", re.I)
# hypertension that I10-I13 do not classify
_OTHER_HYPERTENSION = re.compile(
    r"(?:pulmonary|portal|intracranial|ocular|gestational|pregnancy[- ]induced|secondary"
    r"|renovascular|white[- ]coat|pre-?)\s*$",
    re.I,
)
_STAGE = r"(?P<{0}>[1-5]|iv|v|i{{1,3}})(?:\s*(?P<{0}_sub>[ab]))?"
_CKD = re.compile(
    rf"(?:\bstage\s*{_STAGE.format('pre')}\s+)?"
    r"(?:\bckd(?![a-z])|\bchronic\s+(?:kidney|renal)\s+(?:disease|insufficiency|failure)\b)"
    rf"(?:\s*[,-]?\s*(?:stage|stg\.?)?\s*{_STAGE.format('post')}\b)?",
    re.I,
)
_ESRD = re.compile(r"\b(?:esrd|eskd|end[- ]stage\s+(?:renal|kidney)\s+(?:disease|failure))\b", re.I)
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}
_HEART_FAILURE = re.compile(
    r"(?:\b(?P<acuity>acute\s+on\s+chronic|acute|chronic)\s+)?"
    r"(?:\b(?P<kind>(?:combined\s+)?systolic\s+and\s+diastolic|diastolic\s+and\s+systolic"
    r"|combined|systolic|diastolic)\s+)?"
    r"(?:\(?congestive\)?\s+)?"
    r"(?:\bhf(?P<ef>r|p)ef\b|\bheart\s+failure\b|\bcardiac\s+failure\b|\bchf\b|\bhf\b)"
    r"(?:\s+with\s+(?P<ef_words>reduced|preserved)\s+(?:ejection\s+fraction|ef)\b)?",
    re.I,
)
# heart failure whose I50 code the type words above do not give
_OTHER_HEART_FAILURE = re.compile(
    r"(?:right|left|right[- ]sided|left[- ]sided|high[- ]output|biventricular|end[- ]stage)"
    r"(?:\s+(?:ventricular|sided))?\s*$",
    re.I,
)
_DIABETES = re.compile(
    r"\b(?:t(?P<a>[12])dm"
    r"|type\s*(?P<c>1|2|ii|i|one|two)\s*(?:dm|diabetes(?:\s+mellitus)?|diabetic)"
    r"|(?:dm|diabetes(?:\s+mellitus)?)"
    r"(?:\s*,?\s*type\s*(?P<b>1|2|ii|i)|\s*(?P<d>[12]|ii)|(?P<e>i))"
    r"|diabetes(?:\s+mellitus)?|diabetic|dm)\b",
    re.I,
)
# diabetes that E10/E11 do not classify (E08, E09, E13, O24, R73.03, E23.2)
_OTHER_DIABETES = re.compile(
    r"(?:gestational|pre-?|steroid[- ]induced|drug[- ]induced|chemical[- ]induced|secondary"
    r"|pancreatogenic|post-?pancreatectomy|neonatal|type\s*3c?)\s*$",
    re.I,
)
_DIABETES_TYPE = {"1": "1", "i": "1", "one": "1", "2": "2", "ii": "2", "two": "2"}
_UNCERTAIN = re.compile(
    r"\b(?:probable|suspected|questionable|rule[- ]out|r/o|consistent with|compatible with"
    r"|working diagnosis|(?:likely|possible|suspect)(?!\s+(?:to|that|be|is|are|will|the|it"
    r"|for|if|not|i|we|you|they|this|and|or)\b)(?=\s+\w))(?![\w/])",
    re.I,
)
_INPATIENT = re.compile(
    r"\b(?:inpatient|in-patient|admitted|admission|discharged?|hospital stay|ip)\b", re.I
)
_OUTPATIENT = re.compile(
    r"\b(?:outpatient|out-patient|office|clinic|er|ed|emergency (?:room|department)"
    r"|observation|urgent care|pro(?:fessional)? fee)\b",
    re.I,
)
_ENCOUNTER = re.compile(
    r"\b(?:7th|seventh|initial|subsequent|sequelae?|encounter|follow[- ]?up|aftercare)\b", re.I
)
_SEQUELA = re.compile(r"\bsequelae?\b|\blate effects?\b", re.I)
_BILATERAL = re.compile(
    r"\b(?:bilateral(?:ly)?|both (?:sides|eyes|ears|knees|hips|legs|arms|feet|hands|shoulders"
    r"|lungs|breasts|kidneys)|left and right|right and left)\b",
    re.I,
)
_PRESSURE_ULCER = re.compile(
    r"\b(?:pressure (?:ulcer|injury|sore)s?|decubitus|bed ?sores?)\b", re.I
)
_SIDES = ("right", "left", "bilateral", "unspecified")


@dataclass(frozen=True)
class HeartFailure:
    kind: str | None  # systolic, diastolic, combined; None: not said
    acuity: str | None  # acute, chronic, acute_on_chronic; None: not said
    coded: bool = True  # False: a kind the type words do not code (right, high-output...)


@dataclass(frozen=True)
class Conditions:
    """What the question's words say the patient has; negated and uncertain mentions are
    left out."""

    hypertension: bool = False
    ckd: str | None = None  # a key of [ckd.stages]: "1" ... "3a", "3b", "4", "5", "esrd"
    heart_failure: HeartFailure | None = None
    diabetes: str | None = None  # "1", "2" or "unspecified"
    complications: tuple[str, ...] = ()  # `what` of the diabetes complications named
    medications: tuple[str, ...] = ()  # kinds of long-term diabetes drugs: insulin, oral...


def _asserted(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    return [m for m in pattern.finditer(text) if affirmed(text, m.start())]


def hypertension_named(text: str) -> bool:
    """Essential hypertension in words (not pulmonary, portal, gestational...)."""
    return any(
        not _OTHER_HYPERTENSION.search(text[max(0, m.start() - 30) : m.start()])
        for m in _asserted(_HYPERTENSION, text)
    )


def ckd_stage(text: str) -> str | None:
    """The CKD stage the words give ("3a", "esrd"...), "unspecified" for CKD without one,
    None when no chronic kidney disease is asserted."""
    if _asserted(_ESRD, text):
        return "esrd"
    mentions = _asserted(_CKD, text)
    for match in mentions:
        for part in ("pre", "post"):
            if stage := match.group(part):
                stage = _ROMAN.get(stage.lower(), stage)
                sub = (match.group(f"{part}_sub") or "").lower()
                return f"{stage}{sub}" if stage == "3" else stage
    return "unspecified" if mentions else None


def heart_failure(text: str) -> HeartFailure | None:
    """The heart failure the words assert, with its type and acuity when given."""
    for match in _asserted(_HEART_FAILURE, text):
        if _OTHER_HEART_FAILURE.search(text[max(0, match.start() - 30) : match.start()]):
            return HeartFailure(None, None, coded=False)
        kind_words = (match.group("kind") or "").lower()
        ef = (match.group("ef") or match.group("ef_words") or "").lower()[:1]
        if ("systolic" in kind_words and "diastolic" in kind_words) or kind_words == "combined":
            kind: str | None = "combined"
        elif kind_words in ("systolic", "diastolic"):
            kind = kind_words
        else:
            kind = {"r": "systolic", "p": "diastolic"}.get(ef)
        acuity = match.group("acuity")
        acuity = re.sub(r"\s+", "_", acuity.lower()) if acuity else None
        return HeartFailure(kind, acuity)
    return None


def diabetes_type(text: str) -> str | None:
    """'1' or '2' as the words give it, 'unspecified' for diabetes of no stated type, None
    when no type 1 or type 2 (or unqualified) diabetes is asserted. Where the text names
    diabetes E10/E11 do not classify ("steroid-induced DM"), "the diabetes" is that one."""
    found = None
    other = False
    for match in _asserted(_DIABETES, text):
        before = text[max(0, match.start() - 30) : match.start()]
        if _OTHER_DIABETES.search(before):
            other = True
            continue
        if re.match(r"\s*insipidus", text[match.end() :], re.I):
            continue
        number = next((match.group(g) for g in "acbde" if match.group(g)), None)
        if number:
            return _DIABETES_TYPE[number.lower()]
        found = "unspecified"
    return None if other else found


def read_conditions(text: str, guidelines: Guidelines | None = None) -> Conditions:
    """The conditions TEXT names that the hypertension and diabetes conventions combine."""
    rules = guidelines or load_guidelines()
    # read even without diabetes in words: a diabetes code may be named instead
    complications = [
        entry.what
        for entry in rules.complications
        if entry.words is not None and _asserted(entry.words, text)
    ]
    medications = [
        kind for kind, (_code, words) in rules.medications.items() if _asserted(words, text)
    ]
    return Conditions(
        hypertension=hypertension_named(text),
        ckd=ckd_stage(text),
        heart_failure=heart_failure(text),
        diabetes=diabetes_type(text),
        complications=tuple(complications),
        medications=tuple(medications),
    )


# --- the question as the rules see it ---------------------------------------------------


def _starts(code: str, prefixes: Iterable[str]) -> bool:
    key = compact(code)
    return any(key.startswith(compact(prefix)) for prefix in prefixes)


def _covers(notes_of: CodeInfo, kinds: tuple[str, ...], code: str) -> bool:
    """Whether a note of NOTES_OF of one of KINDS names CODE."""
    return any(
        ref.covers(code)
        for note in notes_of.notes
        if note.kind in kinds
        for ref in note_references(note.text)
    )


def _named(info: CodeInfo) -> str:
    return f"{info.code} ({info.title})"


class _Case:
    """The ICD-10-CM codes of one question, its words, and billable lookups on its date."""

    def __init__(
        self, store: CodeStore, codes: Sequence[CodeInfo], text: str, on: date, rules: Guidelines
    ) -> None:
        self.store = store
        self.icd = [c for c in codes if c.system == ICD10CM and c.status != INVALID]
        self.text = text
        self.on = on
        self.rules = rules
        self.words = read_conditions(text, rules)
        self._lookups: dict[str, CodeInfo] = {}

    def lookup(self, code: str) -> CodeInfo:
        if code not in self._lookups:
            self._lookups[code] = self.store.lookup_in(ICD10CM, code, self.on)
        return self._lookups[code]

    def billable(self, *codes: str) -> CodeInfo | None:
        """The first of CODES that is billable on the date of service."""
        for code in codes:
            info = self.lookup(code)
            if info.status == BILLABLE:
                return info
        return None

    def named(self, prefixes: Iterable[str]) -> list[CodeInfo]:
        wanted = tuple(prefixes)
        return [info for info in self.icd if _starts(info.code, wanted)]

    def finding(self, kind: str, rule: str, codes: Sequence[str], message: str) -> Finding:
        return Finding(kind, list(dict.fromkeys(codes)), message, self.rules.rules[rule].source)

    def rule(self, key: str) -> str:
        return self.rules.rules[key].rule


def guideline_findings(
    store: CodeStore, codes: Sequence[CodeInfo], text: str, *, on: date | None = None
) -> list[Finding]:
    """What the Official Guidelines say about CODES (as named, in order) and the conditions
    TEXT names, each finding citing its section; nothing when no convention bears on them.

    ON is the date of service every suggested code must be billable on (default: the date
    the codes were looked up for, else today)."""
    day = on or next((date.fromisoformat(c.on) for c in codes if c.on), None) or date.today()
    case = _Case(store, codes, text, day, load_guidelines())
    found: list[Finding] = []
    for build in (
        _hypertension,
        _diabetes,
        _integral,
        _diabetes_medication,
        _gestational_diabetes,
        _manifestation,
        _poisoning,
        _external_cause,
        _seventh_character,
        _laterality,
        _pressure_ulcer,
        _uncertain,
    ):
        found.extend(build(case))
    unique: dict[tuple[str, tuple[str, ...], str], Finding] = {}
    for finding in found:
        unique.setdefault((finding.kind, tuple(finding.codes), finding.message), finding)
    return list(unique.values())


# --- symptoms integral to a diagnosis (I.B.5) -------------------------------------------


def _integral(case: _Case) -> list[Finding]:
    found = []
    for symptom in case.named(["R"]):
        if "classified elsewhere" in (symptom.title or ""):
            continue  # the classification asks for it beside the disease
        for entry in case.rules.integral:
            if not _starts(symptom.code, entry.symptoms):
                continue
            for diagnosis in case.icd:
                words = next(
                    (
                        w
                        for p, w in entry.diagnoses.items()
                        if compact(diagnosis.code).startswith(p)
                    ),
                    None,
                )
                asked_for = _covers(
                    symptom, ("code_first", "use_additional_code"), diagnosis.code
                ) or _covers(diagnosis, ("use_additional_code",), symptom.code)
                if words is None or asked_for:
                    continue
                message = (
                    f"{symptom.code} is not coded with {diagnosis.code}: {entry.sign} is "
                    f"integral to {words}, so {_named(diagnosis)} is reported without "
                    f"{_named(symptom)}. {case.rule('integral')}"
                )
                found.append(
                    case.finding(GUIDELINE, "integral", [symptom.code, diagnosis.code], message)
                )
    return found


# --- hypertension with heart failure and/or CKD (I.C.9.a) --------------------------------

_STAGE_WORDS = {
    "esrd": "end-stage renal disease",
    "unspecified": "chronic kidney disease of unspecified stage",
}


def _stage_words(stage: str) -> str:
    return _STAGE_WORDS.get(stage, f"chronic kidney disease stage {stage}")


def _ckd_of(case: _Case) -> tuple[list[CodeInfo], str | None, bool]:
    """The CKD codes to report, the stage they stand for, and whether words gave them."""
    named = [info for info in case.named(["N18"]) if info.status == BILLABLE]
    if named:
        stages = [
            next((k for k, codes in case.rules.ckd_stages.items() if info.code in codes), None)
            for info in named
        ]
        late = [stage for stage in stages if stage in case.rules.ckd_late]
        stage = ("esrd" if "esrd" in late else late[0]) if late else stages[0]
        return named, stage or "unspecified", False
    stage = case.words.ckd
    if stage is None:
        return [], None, False
    info = case.billable(*case.rules.ckd_stages[stage])
    return ([info] if info else []), stage, True


def _heart_failure_of(case: _Case) -> tuple[list[CodeInfo], bool, bool]:
    """The I50 codes to report, whether heart failure is present, and whether words gave it."""
    named = [info for info in case.named(["I50"]) if info.status == BILLABLE]
    if named:
        return named, True, False
    failure = case.words.heart_failure
    if failure is None:
        return [], False, False
    if not failure.coded:
        return [], True, True
    table = case.rules.heart_failure
    if failure.kind is None:
        code = table["unspecified"]
    else:
        code = table["types"][failure.kind][failure.acuity or "unspecified"]
    info = case.billable(code)
    return ([info] if info else []), True, True


def _hypertension(case: _Case) -> list[Finding]:
    table = case.rules.hypertension
    named = case.named(table["codes"])
    if not named and not case.words.hypertension:
        return []
    ckd, stage, ckd_words = _ckd_of(case)
    failures, has_failure, failure_words = _heart_failure_of(case)
    implied = {compact(info.code) for info in named}
    has_failure = has_failure or bool(implied & {"I110", "I130", "I132"})
    has_ckd = stage is not None or any(code[:3] in ("I12", "I13") for code in implied)
    if not (has_ckd or has_failure):
        return []
    late = stage in case.rules.ckd_late if stage else False
    heart_disease = any(_starts(info.code, table["heart_disease"]) for info in named)
    if has_ckd and heart_disease and not has_failure:
        rule, code = "hypertension_heart_ckd", table["heart_disease_and_ckd"]
        code = code["late" if late else "early"]
        what = f"heart disease and {_stage_words(stage or 'unspecified')}"
    elif has_ckd and has_failure:
        rule, code = "hypertension_heart_ckd", table["heart_failure_and_ckd"]
        code = code["late" if late else "early"]
        what = f"heart failure and {_stage_words(stage or 'unspecified')}"
    elif has_ckd:
        rule, code = "hypertension_ckd", table["ckd"]["late" if late else "early"]
        what = _stage_words(stage or "unspecified")
    else:
        rule, code, what = "hypertension_heart", table["heart_failure"], "heart failure"
    combined = case.billable(code)
    if combined is None:
        return []
    replaced = [info.code for info in named if info.code != combined.code]
    from_words = not named or ckd_words or failure_words
    if not replaced and not from_words:
        return []  # the question already names the right combination code
    sequence = [combined, *failures, *ckd]
    listed = ", then ".join(_named(info) for info in sequence)
    lead = (
        f"{' and '.join(replaced)} {'is' if len(replaced) == 1 else 'are'} not the code for "
        f"hypertension with {what}"
        if replaced
        else f"Hypertension with {what}"
    )
    message = f"{lead}: report {listed}. {case.rule(rule)}"
    if has_failure and not failures and rule != "hypertension_ckd":
        message += " Add the I50 code for the documented type of heart failure."
    return [case.finding(COMBINATION, rule, [info.code for info in sequence], message)]


# --- diabetes with its complications (I.C.4.a) --------------------------------------------

_DIABETES_WORDS = {
    "E08": "diabetes due to an underlying condition",
    "E09": "drug- or chemical-induced diabetes",
    "E10": "type 1 diabetes",
    "E11": "type 2 diabetes",
    "E13": "other specified diabetes",
}


def _diabetes_codes(case: _Case) -> list[CodeInfo]:
    return case.named(case.rules.diabetes["categories"])


def _category(case: _Case) -> tuple[str | None, bool]:
    """The diabetes category (E10, E11...) and whether it is the default for an unstated type."""
    named = _diabetes_codes(case)
    if named:
        return compact(named[0].code)[:3], False
    if case.words.diabetes is None:
        return None, False
    return case.rules.diabetes["types"][case.words.diabetes], case.words.diabetes == "unspecified"


def _combination(
    case: _Case, category: str, entry: Complication, complication: CodeInfo | None
) -> CodeInfo | None:
    """The category's combination code for ENTRY: with several suffixes, the one whose 'use
    additional code' note names the complication code (E11.621 for a foot ulcer)."""
    for suffix in entry.suffixes:
        info = case.billable(f"{category}{suffix}")
        if info is None:
            continue
        if complication is None or len(entry.suffixes) == 1:
            return info
        if _covers(info, ("use_additional_code",), complication.code):
            return info
    return None


def _diabetes(case: _Case) -> list[Finding]:
    category, default = _category(case)
    if category is None:
        return []
    bare = [
        info
        for info in _diabetes_codes(case)
        if any(compact(info.code) == compact(category + s) for s in case.rules.diabetes["bare"])
    ]
    found: list[Finding] = []
    done: set[str] = set()
    for entry in case.rules.complications:
        for complication in case.named(entry.codes) if entry.codes and bare else []:
            combined = _combination(case, category, entry, complication)
            if combined is None:
                continue
            keep = _covers(combined, ("use_additional_code",), complication.code) or _covers(
                complication, ("code_first",), combined.code
            )
            sequence = [combined, complication] if keep else [combined]
            lead = f"{' and '.join(i.code for i in bare)} is not reported with {complication.code}"
            found.append(_diabetes_finding(case, lead, entry, sequence, category, default))
            done.add(combined.code)
        if entry.ckd and case.words.ckd is None:
            continue
        if not entry.ckd and entry.what not in case.words.complications:
            continue
        combined = _combination(case, category, entry, None)
        if combined is None or combined.code in done:
            continue
        extra: list[CodeInfo] = []
        if entry.ckd:
            extra, _stage, _words = _ckd_of(case)
        elif entry.add and (added := case.billable(entry.add)):
            extra = [added]
        replaced = [i.code for i in bare]
        lead = (
            f"{' and '.join(replaced)} is not the code for {_DIABETES_WORDS[category]} with "
            f"{entry.what}"
            if replaced
            else f"{_DIABETES_WORDS[category].capitalize()} with {entry.what}"
        )
        sequence = [combined, *extra]
        found.append(_diabetes_finding(case, lead, entry, sequence, category, default))
        done.add(combined.code)
    return found


def _diabetes_finding(
    case: _Case,
    lead: str,
    entry: Complication,
    sequence: list[CodeInfo],
    category: str,
    default: bool,
) -> Finding:
    listed = ", then ".join(_named(info) for info in sequence)
    note = f"; {entry.note}" if entry.note else ""
    message = (
        f"{lead}: report {listed}{note}. The index links {_DIABETES_WORDS[category]} and "
        f"{entry.what} with 'with', so the link is presumed unless the record says otherwise "
        f"(section I.A.15). {case.rule('diabetes')}"
    )
    if default:
        message += f" {case.rule('diabetes_type')} (section I.C.4.a.2)"
    return case.finding(COMBINATION, "diabetes", [info.code for info in sequence], message)


def _diabetes_medication(case: _Case) -> list[Finding]:
    category, default = _category(case)
    if category is None:
        return []
    table = case.rules.medications
    kinds = list(case.words.medications)
    for kind, (code, _words) in table.items():
        if case.named([code]) and kind not in kinds:
            kinds.append(kind)
    if not kinds:
        return []
    if category not in case.rules.diabetes["medication_categories"]:
        named = [info.code for info in _diabetes_codes(case)]
        message = (
            f"{_DIABETES_WORDS[category].capitalize()} ({category}) carries no note asking for "
            f"a Z79 code for long-term diabetes drugs; the tabular asks for one under "
            f"{', '.join(case.rules.diabetes['medication_categories'])}, for patients on "
            "insulin, oral or injectable non-insulin drugs."
        )
        return [case.finding(GUIDELINE, "diabetes_medication", named, message)]
    codes = [info for kind in kinds if (info := case.billable(table[kind][0]))]
    if not codes:
        return []
    listed = " and ".join(_named(info) for info in codes)
    message = (
        f"With {_DIABETES_WORDS[category]} treated long term with {' and '.join(kinds)} "
        f"drugs, add {listed} after the diabetes code. {case.rule('diabetes_medication')}"
    )
    if default:
        message += (
            f" {case.rule('diabetes_type')} That holds for a patient on insulin too "
            "(section I.C.4.a.2)."
        )
    return [case.finding(GUIDELINE, "diabetes_medication", [c.code for c in codes], message)]


def _gestational_diabetes(case: _Case) -> list[Finding]:
    """I.C.15.g: gestational diabetes on insulin is O24.414, with no Z79.4 beside it."""
    named = case.named(["O24.4"])
    if not named and not GESTATIONAL_DIABETES.search(case.text):
        return []
    kinds = case.words.medications
    # insulin, with or without other drugs, is the insulin-controlled code (I.C.15.g)
    suffix = "4" if "insulin" in kinds else "5" if kinds else None
    control = [info.code for info in named] or (
        [f"O24.41{suffix}"] if suffix and case.billable(f"O24.41{suffix}") else []
    )
    insulin = bool(case.named(["Z79.4"])) or "insulin" in kinds
    if not control and not insulin:
        return []
    message = case.rule("gestational_diabetes")
    if insulin:
        message = f"No Z79.4 beside gestational diabetes: {message}"
    codes = [*control, *(["Z79.4"] if insulin else [])]
    return [case.finding(GUIDELINE, "gestational_diabetes", codes, message)]


# --- sequencing: manifestations, poisonings, external causes -------------------------------


def _manifestation(case: _Case) -> list[Finding]:
    """A manifestation code named first or alone: the underlying disease goes first."""
    if not case.icd or "in diseases classified elsewhere" not in (case.icd[0].title or ""):
        return []
    first = case.icd[0]
    others = [info.code for info in case.icd[1:]]
    underlying = [code for code in others if _covers(first, ("code_first",), code)]
    after = (
        f"list {', '.join(underlying)} first"
        if underlying
        else "report the underlying disease's code first (see its 'code first' note)"
    )
    message = (
        f"{_named(first)} is a manifestation code and cannot be listed first: {after}, then "
        f"{first.code}. {case.rule('etiology_manifestation')}"
    )
    return [case.finding(GUIDELINE, "etiology_manifestation", [first.code, *underlying], message)]


_INTENT = {
    "1": "poisoning",
    "2": "poisoning",
    "3": "poisoning",
    "4": "poisoning",
    "5": "adverse effect",
    "6": "underdosing",
}


def _poisoning(case: _Case) -> list[Finding]:
    found = []
    for info in case.icd:
        key = compact(info.code)
        if not ("T36" <= key[:3] <= "T50"):
            continue
        intent = _INTENT.get(key[5]) if len(key) >= 6 else None
        others = [other.code for other in case.icd if other.code != info.code]
        if intent == "poisoning":
            order = (
                f"{info.code} is a poisoning code: list it first, then the codes for its effects"
                + (f" ({', '.join(others)})" if others else "")
                + "."
            )
        elif intent in ("adverse effect", "underdosing"):
            what = (
                "the effect itself (such as the rash or the bleeding)"
                if intent == "adverse effect"
                else "the condition that relapsed or worsened"
            )
            first = f"{', '.join(others)}, {what.split(' (')[0]}," if others else what
            order = f"{info.code} is an {intent} code: list {first} first, then {info.code}."
        else:
            order = (
                f"{info.code} covers poisoning, adverse effect and underdosing: the 6th "
                "character picks one, and the order of codes depends on which."
            )
        message = f"{order} {case.rule('poisoning')}"
        found.append(case.finding(GUIDELINE, "poisoning", [info.code, *others], message))
    return found


def _external_cause(case: _Case) -> list[Finding]:
    """An external cause code (V00-Y99) named alone or first."""
    if not case.icd or compact(case.icd[0].code)[0] not in "VWXY":
        return []
    first = case.icd[0]
    others = [info.code for info in case.icd[1:] if compact(info.code)[0] not in "VWXY"]
    order = (
        f"list {others[0]} first, then {first.code}"
        if others
        else f"report the code for the injury or condition first, then {first.code}"
    )
    message = (
        f"{_named(first)} is an external cause code and is never listed first: {order}. "
        f"{case.rule('external_cause')}"
    )
    return [case.finding(GUIDELINE, "external_cause", [first.code, *others], message)]


# --- 7th characters (I.C.19.a, I.C.19.c) ---------------------------------------------------


def _seventh_character(case: _Case) -> list[Finding]:
    """What A, D and S mean, when the question asks about the encounter of an injury code."""
    if not _ENCOUNTER.search(case.text):
        return []
    injuries = [
        info
        for info in case.icd
        if compact(info.code)[0] in "ST" and {"A", "D", "S"} <= set(info.seventh_characters)
    ]
    if not injuries:
        return []
    codes = [info.code for info in injuries]
    said = "".join(
        f"{info.code} ends in {key[6]} ({info.seventh_characters[key[6]]}). "
        if len(key := compact(info.code)) == 7 and key[6] in info.seventh_characters
        else f"{info.code} takes a 7th character. "
        for info in injuries
    )
    sequela = (
        f" {case.rule('sequela')} (section I.B.10)"
        if _SEQUELA.search(case.text) or any(c.endswith("S") for c in codes)
        else ""
    )
    message = f"{said}{case.rule('seventh_character')}{sequela}"
    found = [case.finding(GUIDELINE, "seventh_character", codes, message)]
    fractures = [i.code for i in injuries if {"B", "G", "K", "P"} & set(i.seventh_characters)]
    if fractures:
        message = f"{', '.join(fractures)} is a fracture code. {case.rule('fracture_seventh')}"
        found.append(case.finding(GUIDELINE, "fracture_seventh", fractures, message))
    return found


# --- laterality (I.B.13) ---------------------------------------------------------------------


def _sides(case: _Case, info: CodeInfo) -> tuple[str, dict[str, CodeInfo]] | None:
    """INFO's side and the billable codes for each side of the same condition, found among
    the siblings of the level whose title names the side ('Pain in right knee')."""
    key = compact(info.code)
    for row in case.store.ancestors(ICD10CM, info.code)[:3]:
        if not row["parent"]:
            break
        tail = key[len(compact(row["code"])) :]
        siblings = case.store.children(ICD10CM, row["parent"])
        for match in re.finditer(r"\b(?:right|left|bilateral|unspecified)\b", row["title"], re.I):
            prefix = row["title"][: match.start()].lower()
            family: dict[str, CodeInfo] = {}
            for sibling in siblings:
                title = sibling.title.lower()
                side = next((s for s in _SIDES if title.startswith(prefix + s)), None)
                if side and side not in family:
                    code = case.billable(compact(sibling.code) + tail) if tail else None
                    code = code or (case.billable(sibling.code) if not tail else None)
                    if code is not None:
                        family[side] = code
            if "right" in family and "left" in family:
                return match.group().lower(), family
    return None


def _laterality(case: _Case) -> list[Finding]:
    bilateral = _BILATERAL.search(case.text) is not None
    found = []
    for info in case.icd:
        if compact(info.code)[0] in "VWXY":
            continue
        sides = _sides(case, info)
        if sides is None:
            continue
        side, family = sides
        if bilateral:
            codes = [family["bilateral"]] if "bilateral" in family else [family["right"]]
            codes += [] if "bilateral" in family else [family["left"]]
            message = (
                f"Both sides: report {_named(codes[0])}."
                if len(codes) == 1
                else f"Both sides, and there is no bilateral code: report "
                f"{_named(codes[0])} and {_named(codes[1])}."
            )
        elif side == "unspecified":
            codes = [family["right"], family["left"]]
            message = (
                f"{info.code} is the code for an unspecified side: use it only when the record "
                f"does not say which. Right: {_named(family['right'])}; left: "
                f"{_named(family['left'])}"
                + (f"; both: {_named(family['bilateral'])}." if "bilateral" in family else ".")
            )
        else:
            continue
        message += f" {case.rule('laterality')}"
        found.append(
            case.finding(GUIDELINE, "laterality", [info.code, *(c.code for c in codes)], message)
        )
    return found


# --- pressure ulcers (I.C.12.a) -------------------------------------------------------------


def _pressure_ulcer(case: _Case) -> list[Finding]:
    ulcers = case.named(["L89"])
    if not ulcers and not _asserted(_PRESSURE_ULCER, case.text):
        return []
    notes = []
    for info in ulcers:
        title = (info.title or "").lower()
        if "unspecified stage" in title:
            notes.append(
                f"{info.code} is the unspecified-stage code: use it only when no stage is "
                "documented."
            )
        elif "unstageable" in title:
            notes.append(
                f"{info.code} is for an ulcer whose base cannot be seen, not for a missing stage."
            )
    message = " ".join([*notes, case.rule("pressure_ulcer")])
    return [case.finding(GUIDELINE, "pressure_ulcer", [i.code for i in ulcers], message)]


# --- uncertain diagnoses (IV.H; II.H and III.C) -----------------------------------------------


def _uncertain(case: _Case) -> list[Finding]:
    match = _UNCERTAIN.search(case.text)
    if match is None:
        return []
    codes = [info.code for info in case.icd]
    said = f'The question calls a diagnosis "{match.group().lower()}".'
    inpatient = _INPATIENT.search(case.text) is not None
    outpatient = _OUTPATIENT.search(case.text) is not None
    if inpatient and not outpatient:
        message = (
            f"{said} {case.rule('uncertain_inpatient')} In outpatient care it would not be "
            "coded (section IV.H)."
        )
        return [case.finding(GUIDELINE, "uncertain_inpatient", codes, message)]
    message = f"{said} {case.rule('uncertain_outpatient')}"
    if not outpatient:
        message += f" The inpatient exception: {case.rule('uncertain_inpatient')}"
    return [case.finding(GUIDELINE, "uncertain_outpatient", codes, message)]


# --- for the answers ----------------------------------------------------------------------------


def names_conditions(text: str) -> bool:
    """Whether TEXT names a condition the hypertension or diabetes conventions combine."""
    return read_conditions(text) != Conditions()


def mentions(finding: Finding, code: str) -> bool:
    """Whether FINDING is about CODE: among its codes, or named in its message (the I10 a
    combination finding replaces)."""
    return code in finding.codes or (
        re.search(rf"(?<![\w.]){re.escape(code)}(?!\w|\.\w)", finding.message) is not None
    )


def settling(findings: Sequence[Finding], codes: Sequence[str], question: str) -> list[Finding]:
    """The guideline and combination findings that settle QUESTION (TOGETHER or SEQUENCING)
    about CODES: those of a rule that answers it and about two of them (or the only one)."""
    rules = load_guidelines().rules.values()
    sources = {rule.source for rule in rules if question in rule.answers}
    wanted = min(2, len(codes))
    return [
        finding
        for finding in findings
        if finding.kind in (GUIDELINE, COMBINATION)
        and finding.source in sources
        and sum(mentions(finding, code) for code in dict.fromkeys(codes)) >= max(wanted, 1)
    ]
