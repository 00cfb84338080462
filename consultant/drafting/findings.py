"""What the code sets and NCCI say about the codes a question mentions, each fact sourced.

A finding is only as good as its citation: the reviewer checks it against the
named release and note, and the draft repeats the source beside each fact, so every
finding carries the code set, release and note (or edit) it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

from consultant.codes import hcc, msdrg
from consultant.codes.ncci import (
    ADDON_TABLES,
    MUE,
    PTP_TABLES,
    PtpEdit,
    addon_primaries,
    mue_for,
    ptp_edits_between,
    table_source,
)
from consultant.codes.status import release_status
from consultant.codes.store import SYSTEM_RELEASE, CodeInfo, CodeStore, Note
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    DELETED,
    HCPCS,
    ICD9CM,
    ICD10CM,
    INVALID,
    NEEDS_SEVENTH,
    NOT_BILLABLE,
    compact,
    normalize,
)
from consultant.codes.validity import DATED_SET, DATED_SYSTEMS

KINDS = (
    "invalid_code",
    "not_billable",
    "needs_seventh_character",
    "excludes1",
    "excludes2",
    "use_additional_code",
    "code_first",
    "code_also",
    "guideline",
    "combination",
    "ptp_edit",
    "mue",
    "add_on_code",
    "deleted_code",
    "date_of_service",
    "cc_mcc",
    "hcc",
    "crosswalk",
    "phi",
    "attachment_unread",  # added by drafting.ticket_draft: a PDF whose text was not read
)

# What a reviewer reads for each kind (the JSON keeps the kind itself).
LABELS = {
    "invalid_code": "Not a valid code",
    "not_billable": "Heading, not billable",
    "needs_seventh_character": "Needs a 7th character",
    "excludes1": "Excludes1: not coded together",
    "excludes2": "Excludes2: may be coded together",
    "use_additional_code": "Use additional code",
    "code_first": "Code first",
    "code_also": "Code also",
    "guideline": "Coding guideline",
    "combination": "Combination code",
    "ptp_edit": "NCCI pair (bundling)",
    "mue": "Unit limit (MUE)",
    "add_on_code": "Add-on code",
    "deleted_code": "Deleted code",
    "date_of_service": "Date of service",
    "cc_mcc": "MS-DRG CC/MCC",
    "hcc": "Risk adjustment (HCC)",
    "crosswalk": "ICD-9 crosswalk",
    "phi": "Patient identifiers",
    "attachment_unread": "Attachment not read",
}

# Modifiers the NCCI Policy Manual (Chapter I) lists as able to bypass a PTP edit whose
# modifier indicator is 1, when the documentation supports a distinct service.
NCCI_ANATOMIC_MODIFIERS = frozenset(
    [f"E{n}" for n in range(1, 5)]
    + ["FA", *(f"F{n}" for n in range(1, 10)), "TA", *(f"T{n}" for n in range(1, 10))]
    + ["LT", "RT", "LC", "LD", "RC", "LM", "RI"]
)
NCCI_PTP_MODIFIERS = NCCI_ANATOMIC_MODIFIERS | frozenset(
    ["24", "25", "57", "58", "78", "79", "27", "59", "91", "XE", "XP", "XS", "XU"]
)
NCCI_MANUAL = "NCCI Policy Manual for Medicare Services, Chapter I (modifiers and indicators)"

_NOTE_LABEL = {
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "use_additional_code": "Use additional code",
    "code_first": "Code first",
    "code_also": "Code also",
}
_LISTED = 12  # billable codes named in a not_billable finding


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    codes: list[str]
    message: str
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


# --- code references inside note text -------------------------------------------------

_ICD = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_REF = re.compile(rf"\b(?P<first>{_ICD})(?:\s*-\s*(?P<last>{_ICD})\b|\.?-)?")


@dataclass(frozen=True)
class CodeRef:
    """A code, a code and everything below it ('E08.-', 'S72.0-'), or a range ('E08-E13')."""

    first: str  # compact form
    last: str | None = None

    def covers(self, code: str) -> bool:
        key = compact(code)
        if self.last is None:
            return key.startswith(self.first)
        return key[: len(self.first)] >= self.first and key[: len(self.last)] <= self.last


def note_references(text: str) -> list[CodeRef]:
    """The ICD-10-CM codes and ranges a tabular note names: 'transection of abdomen
    (S38.3)', '(E08-E13)', '(S72.0-)', '(N18.1-N18.6)', '(I12.-, I13.-)'."""
    return [
        CodeRef(compact(m.group("first")), compact(m.group("last")) if m.group("last") else None)
        for m in _REF.finditer(text)
    ]


def pair_edits(findings: Sequence[Finding], codes: Sequence[str]) -> list[Finding]:
    """The NCCI PTP edits FINDINGS hold between two of CODES."""
    return [f for f in findings if f.kind == "ptp_edit" and set(f.codes) <= set(codes)]


# --- findings -------------------------------------------------------------------------


def code_findings(
    store: CodeStore,
    codes: Sequence[CodeInfo],
    modifiers: Sequence[str],
    on: date,
    *,
    text: str = "",
) -> list[Finding]:
    """Every finding about CODES (mentioned together) and the MODIFIERS named with them;
    the Official Guidelines' conventions also read TEXT, the question's words."""
    from consultant.drafting.guidelines import guideline_findings  # it imports Finding

    findings: list[Finding] = []
    for info in codes:
        findings.extend(status_findings(store, info))
    for info in codes:
        findings.extend(risk_findings(store, info))
    icd = [info for info in codes if info.system == ICD10CM and info.status != INVALID]
    findings.extend(exclusion_findings(store, icd))
    findings.extend(instruction_findings(store, icd))
    findings.extend(guideline_findings(store, codes, text, on=on))
    findings.extend(ncci_findings(store, codes, modifiers, on))
    return findings


def _release(store: CodeStore, info: CodeInfo) -> str:
    if info.system == CPT and not store.has("cpt"):
        return "CPT section number ranges (no CPT file loaded)"
    return (
        info.source
        or store.source(SYSTEM_RELEASE[info.system])
        or f"{info.system} (no release loaded)"
    )


def status_findings(store: CodeStore, info: CodeInfo) -> list[Finding]:
    """The code's status finding, after its date_of_service finding when the date of
    service changes the answer."""
    dated = (
        [Finding("date_of_service", [info.code], info.date_note, info.date_source or "")]
        if info.date_note
        else []
    )
    if info.system == ICD9CM:
        return dated + _crosswalk_findings(info)
    return dated + _status_finding(store, info)


def _status_finding(store: CodeStore, info: CodeInfo) -> list[Finding]:
    """invalid_code, not_billable, needs_seventh_character or deleted_code for one code."""
    source = _release(store, info)
    if info.status == INVALID and info.date_note:
        return []  # not yet a code on the date of service: the date finding says so
    if info.status == INVALID:
        return [Finding("invalid_code", [info.code], _invalid_message(store, info), source)]
    if info.status == DELETED and info.date_note:
        return []  # ended before the date of service: the date finding says so
    if info.status == DELETED:
        when = f" as of {info.deleted_on}" if info.deleted_on else ""
        title = f" ({info.title})" if info.title else ""
        message = (
            f"{info.code}{title} was deleted from {info.system}{when}; it is not valid for "
            "services after its deletion."
        )
        return [Finding("deleted_code", [info.code], message, source)]
    if info.status == NOT_BILLABLE:
        below = store.billable_descendants(info.system, info.code)
        named = ", ".join(f"{n.code} ({n.title})" for n in below[:_LISTED])
        more = f", and {len(below) - _LISTED} more" if len(below) > _LISTED else ""
        message = (
            f"{info.code} ({info.title}) is a heading, not a billable code; a claim needs a "
            f"complete code below it: {named}{more}."
            if below
            else f"{info.code} ({info.title}) is not a billable code."
        )
        return [Finding("not_billable", [info.code], message, source)]
    if info.status == NEEDS_SEVENTH:
        return [Finding("needs_seventh_character", [info.code], _seventh_message(info), source)]
    return []


def _crosswalk_findings(info: CodeInfo) -> list[Finding]:
    """An ICD-9-CM code: retired, and what the GEMs map it to."""
    if info.crosswalk is None:
        return [
            Finding(
                "invalid_code",
                [info.code],
                f"{info.code} is not an ICD-9-CM diagnosis code in {info.source or 'the GEMs'}.",
                info.source or "GEMs (not loaded)",
            )
        ]
    targets = [target["code"] for target in info.crosswalk["targets"]]
    return [
        Finding("crosswalk", [info.code, *targets], info.crosswalk["summary"], info.source or "")
    ]


def risk_findings(store: CodeStore, info: CodeInfo) -> list[Finding]:
    """MS-DRG CC/MCC and CMS-HCC facts of a billable ICD-10-CM code on its date of service."""
    if info.system != ICD10CM or info.status != BILLABLE or info.on is None:
        return []
    day = date.fromisoformat(info.on)
    findings = []
    version = msdrg.version_on(store.conn, day) if store.has("msdrg") else None
    if version is not None:
        findings.append(
            Finding(
                "cc_mcc",
                [info.code],
                _severity(info, version),
                f"MS-DRG {version} CC/MCC list and CC exclusions",
            )
        )
    if store.has("hcc"):
        if info.hcc:
            named = "; ".join(
                f"{m['model']} HCC {m['hcc']}" + (f" ({m['label']})" if m.get("label") else "")
                for m in info.hcc
            )
            message = f"{info.code} maps to {named} for payment year {info.hcc[0]['payment_year']}."
        else:
            year = min(hcc.payment_year_for(day), max(hcc.loaded_years(store.conn)))
            message = f"{info.code} maps to no CMS-HCC or RxHCC category for payment year {year}."
        findings.append(Finding("hcc", [info.code], message, store.source("hcc") or ""))
    return findings


def _severity(info: CodeInfo, version: str) -> str:
    level = info.cc_mcc
    if level is None:
        return f"{info.code} is neither a CC nor an MCC in MS-DRG {version}."
    excluded = level["excluded_with"]
    count = level.get("excluded_count", len(excluded))
    article = "an" if level["level"] == "MCC" else "a"
    exclusions = (
        f" It does not count as {article} {level['level']} when the principal diagnosis is one "
        f"of the {count} in its CC exclusion list (for example {', '.join(excluded[:5])})."
        if count
        else ""
    )
    if level.get("hac"):
        exclusions += (
            f" It is on the hospital-acquired condition list (HAC category {level['hac']}): if "
            "it was not present on admission (POA indicator N or U), it does not count as "
            f"{article} {level['level']}."
        )
    if level.get("mcc_if_alive"):
        exclusions += " It counts as an MCC only when the patient is discharged alive."
    return (
        f"As a secondary diagnosis, {info.code} is {article} {level['level']} in MS-DRG "
        f"{version}, the grouper in force on {info.on}.{exclusions}"
    )


def _invalid_message(store: CodeStore, info: CodeInfo) -> str:
    if info.system == CPT and not store.has("cpt"):
        if info.section and info.date_source:
            return (
                f"{info.code} falls in the CPT range for {info.section}, but no quarter of "
                f"{info.date_source} holds it, so it has not been a CPT code since "
                f"{store.dated_from}.{_newer_release(store, info)}"
            )
        return f"{info.code} is not in any CPT code range, so it is not a CPT code."
    message = f"{info.code} is not a code in {_release(store, info)}."
    if info.system == ICD10CM:
        raw = compact(info.code)
        for length in range(len(raw) - 1, 2, -1):
            row = store.row(ICD10CM, normalize(ICD10CM, raw[:length]))
            if row is not None:
                kind = "a billable code" if row["billable"] else "a heading"
                message += (
                    f" The nearest existing code above it is {row['code']} ({row['title']}), "
                    f"{kind}."
                )
                break
    return message + _newer_release(store, info)


def _newer_release(store: CodeStore, info: CodeInfo) -> str:
    """A code missing from a release older than its period may be in the current one."""
    sets = [SYSTEM_RELEASE[info.system]]
    if info.system in DATED_SYSTEMS and store.has(DATED_SET):
        sets.append(DATED_SET)
    loaded = [store.releases[code_set] for code_set in sets if code_set in store.releases]
    if not loaded or any(release_status(r, date.today()).current for r in loaded):
        return ""
    newest = max(loaded, key=lambda release: release.effective or "")
    return (
        f" Our newest release, {store.source(newest.code_set)}, is older than the current "
        "one, so a code added since then would not be in it: check the current file before "
        "treating it as invalid."
    )


def _seventh_message(info: CodeInfo) -> str:
    """Name the 7th characters that really complete this code (the tabular's exceptions
    are applied in the materialized children), with what each means."""
    chars = [compact(child.code)[-1] for child in info.children if child.billable]
    chars = [c for c in chars if c in info.seventh_characters] or list(info.seventh_characters)
    meanings = "; ".join(f"{c} = {info.seventh_characters[c]}" for c in chars)
    example = info.children[0].code if info.children else None
    placeholder = (
        " Codes shorter than six characters take the placeholder X before the 7th character."
        if len(compact(info.code)) < 6
        else ""
    )
    return (
        f"{info.code} ({info.title}) is not complete without a 7th character: {meanings}."
        f"{placeholder}" + (f" For example {example}." if example else "")
    )


def exclusion_findings(store: CodeStore, icd: Sequence[CodeInfo]) -> list[Finding]:
    """Excludes1/Excludes2 notes (own or inherited) of one mentioned code that name another.

    A chapter's Excludes2 list only says which other chapters classify whole groups of
    conditions ("endocrine, nutritional and metabolic diseases (E00-E88)"); nearly any
    two codes from different chapters meet one, so those are left out to keep the notes
    that matter visible. Chapter Excludes1 notes still count.
    """
    pairs: dict[tuple[str, frozenset[str]], list[tuple[CodeInfo, Note, CodeInfo]]] = {}
    for subject in icd:
        for note in subject.notes:
            if note.kind not in ("excludes1", "excludes2"):
                continue
            if note.kind == "excludes2" and note.code.startswith("Chapter "):
                continue
            refs = note_references(note.text)
            for other in icd:
                if other.code == subject.code or not any(r.covers(other.code) for r in refs):
                    continue
                key = (note.kind, frozenset((subject.code, other.code)))
                pairs.setdefault(key, []).append((subject, note, other))
    release = store.source("icd10cm") or ICD10CM
    findings = []
    for (kind, _), hits in pairs.items():
        first_subject, _note, first_other = hits[0]
        statements = [
            f"the {_NOTE_LABEL[kind]} note at {note.code} (which applies to {subject.code}) "
            f'lists "{note.text}", and {other.code} falls under it'
            for subject, note, other in hits
        ]
        if kind == "excludes1":
            meaning = (
                f"{first_subject.code} and {first_other.code} should not be reported together: "
                "an Excludes1 note means the two conditions cannot occur together. The "
                "exception is when the two conditions are unrelated to each other (ICD-10-CM "
                "Official Guidelines, Section I.A.12.a)."
            )
        else:
            meaning = (
                f"Excludes2 means the excluded condition is not part of {first_subject.code}; "
                f"when the patient has both, {first_subject.code} and {first_other.code} may "
                "be reported together (ICD-10-CM Official Guidelines, Section I.A.12.b)."
            )
        joined = "; ".join(statements)
        message = f"{joined[0].upper()}{joined[1:]}. {meaning}"
        at = " and ".join(dict.fromkeys(note.code for _, note, _ in hits))
        findings.append(
            Finding(
                kind,
                [first_subject.code, first_other.code],
                message,
                f"{release}, {_NOTE_LABEL[kind]} note at {at}",
            )
        )
    return findings


def instruction_findings(store: CodeStore, icd: Sequence[CodeInfo]) -> list[Finding]:
    """'Use additional code', 'Code first' and 'Code also' notes of the mentioned codes,
    with whether a code satisfying each is among them."""
    groups: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for subject in icd:
        for note in subject.notes:
            if note.kind not in ("use_additional_code", "code_first", "code_also"):
                continue
            lines, subjects = groups.setdefault((note.kind, note.code), ([], []))
            if note.text not in lines:
                lines.append(note.text)
            if subject.code not in subjects:
                subjects.append(subject.code)
    release = store.source("icd10cm") or ICD10CM
    findings = []
    for (kind, at), (lines, subjects) in groups.items():
        refs = [ref for line in lines for ref in note_references(line)]
        satisfied = [
            info.code
            for info in icd
            if info.code not in subjects and any(ref.covers(info.code) for ref in refs)
        ]
        label = _NOTE_LABEL[kind]
        applies = ", ".join(subjects)
        text = " ".join([*(_sentence(line) for line in lines[:-1]), _sentence(lines[-1], ".")])
        if not refs:
            verdict = "The note names no specific code, so it depends on the documentation."
        elif satisfied:
            verdict = f"{', '.join(satisfied)} in the question satisfies it."
        else:
            verdict = "None of the codes in the question satisfies it."
        message = f"{label} (note at {at}, applies to {applies}): {text} {verdict}"
        findings.append(
            Finding(
                kind,
                subjects + satisfied,
                message,
                f"{release}, {label} note at {at}",
            )
        )
    return findings


def _sentence(line: str, end: str = ";") -> str:
    # The tabular splits "Code first, if applicable, postprocedural sepsis" after "first".
    line = line.lstrip(", ")
    return line if line.endswith((":", ".", ";")) else f"{line}{end}"


def ncci_findings(
    store: CodeStore, codes: Sequence[CodeInfo], modifiers: Sequence[str], on: date
) -> list[Finding]:
    """PTP edits between the mentioned CPT/HCPCS codes, their MUEs, and add-on codes
    mentioned without a primary code."""
    billing = [info.code for info in codes if info.system in (CPT, HCPCS)]
    findings: list[Finding] = []
    if not billing:
        return findings
    conn = store.conn
    for table, name in PTP_TABLES.items():
        if not store.has(table):
            continue
        cited = table_source(name, table, store.releases[table].version)
        for edit in ptp_edits_between(conn, billing, on, table):
            findings.append(
                Finding(
                    "ptp_edit",
                    [edit.column1, edit.column2],
                    _ptp_message(edit, modifiers, on, name),
                    f"{cited}, column 1 {edit.column1} / column 2 {edit.column2}",
                )
            )
    if store.has(MUE):
        version = store.releases[MUE].version
        for code in billing:
            if (mue := mue_for(conn, code)) is not None:
                rationale = f"; rationale: {mue.rationale}" if mue.rationale else ""
                findings.append(
                    Finding(
                        "mue",
                        [code],
                        f"MUE for {code}: {mue.value} unit(s) of service; adjudication "
                        f"indicator {mue.indicator}{rationale}.",
                        f"NCCI MUE {version}, {code}",
                    )
                )
    reported: set[str] = set()  # one add-on finding per code, from the first table
    for table, name in ADDON_TABLES.items():
        if not store.has(table):
            continue
        for code in billing:
            addon = addon_primaries(conn, code, on, table)
            if code in reported or addon is None or not addon.primaries:
                continue
            if any(compact(other) in addon.primaries for other in billing):
                continue
            contractor = (
                " The Medicare contractor may accept other primary codes as well."
                if addon.contractor_defined
                else ""
            )
            findings.append(
                Finding(
                    "add_on_code",
                    [code],
                    f"{code} is an add-on code (edit type {addon.addon_type}): it is paid only "
                    f"with one of its primary codes ({', '.join(addon.primaries)}), and none of "
                    f"them is in the question.{contractor}",
                    f"{table_source(name, table, store.releases[table].version)}, {code}",
                )
            )
            reported.add(code)
    return findings


def _ptp_message(edit: PtpEdit, modifiers: Sequence[str], on: date, table: str) -> str:
    message = (
        f"{edit.column1} (column 1) and {edit.column2} (column 2) are a pair in the {table}, "
        f"in force on {on.isoformat()} (effective {edit.effective.isoformat()}): "
        f"{edit.column2} is not paid with {edit.column1} for the same patient on the same day."
    )
    named = ", ".join(modifiers)
    if edit.modifier_indicator == "0":
        verdict = " Modifier indicator 0: no modifier lets both be paid."
        if modifiers:
            verdict += f" The modifier named in the question ({named}) does not change that."
    elif edit.modifier_indicator == "1":
        verdict = (
            " Modifier indicator 1: an NCCI-associated modifier (anatomic, global surgery, "
            "27, 59, 91, XE, XP, XS, XU) lets both be paid when the documentation shows a "
            "distinct service."
        )
        allowed = [m for m in modifiers if m in NCCI_PTP_MODIFIERS]
        other = [m for m in modifiers if m not in NCCI_PTP_MODIFIERS]
        if allowed:
            verdict += f" {', '.join(allowed)} in the question would be allowed."
        if other:
            verdict += f" {', '.join(other)} in the question is not one that bypasses the edit."
        if not modifiers:
            verdict += " The question names no modifier."
    else:
        verdict = " Modifier indicator 9: not applicable to this edit."
    rationale = f" Rationale: {edit.rationale}." if edit.rationale else ""
    return message + verdict + rationale
