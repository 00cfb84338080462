"""One question in, everything a draft is made from out: codes, modifiers, findings,
suggested codes, whether the mail was automated, and the rendered draft."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import jinja2

from consultant.codes.ncci import ADDON, ADDON_TABLES, IOCE, MUE, PTP, PTP_TABLES
from consultant.codes.query_cues import system_cue
from consultant.codes.search import CodeSearch, SearchHit
from consultant.codes.status import CADENCE, release_status
from consultant.codes.store import SYSTEM_RELEASE, CodeInfo, CodeStore
from consultant.codes.systems import CPT, HCPCS, ICD10CM
from consultant.drafting.answers import Answer, answer_all, code_questions, paragraph_of
from consultant.drafting.dates import date_of_service
from consultant.drafting.draft import render_draft
from consultant.drafting.extract import Extraction, ModifierMention, clinical_phrases, extract
from consultant.drafting.findings import Finding, code_findings
from consultant.drafting.phi import find_phi, phi_finding
from consultant.mail.automated import automated_reason
from consultant.mail.message import read_mail


@dataclass(frozen=True)
class Analysis:
    date_of_service: date | None  # as the question names it; None: judged for today
    answers: list[Answer]  # the direct answer to each question asked, first in the draft
    codes: list[CodeInfo]
    modifiers: list[ModifierMention]
    findings: list[Finding]
    suggestions: list[SearchHit]
    automated: bool
    automated_reason: str | None  # why the mail counts as automated (not in the JSON)
    draft: str | None  # None for automated mail

    def to_dict(self) -> dict:
        """The JSON object of `consultant analyze --json`."""
        return {
            "date_of_service": self.date_of_service.isoformat() if self.date_of_service else None,
            "answers": [answer.to_dict() for answer in self.answers],
            "codes": [
                {
                    "code": c.code,
                    "system": c.system,
                    "status": c.status,
                    "title": c.title,
                    "on": c.on,
                    "valid_from": c.valid_from,
                    "valid_to": c.valid_to,
                    "cc_mcc": c.cc_mcc,
                    "hcc": c.hcc,
                    "crosswalk": c.crosswalk,
                }
                for c in self.codes
            ],
            "modifiers": [{"modifier": m.modifier, "title": m.title} for m in self.modifiers],
            "findings": [f.to_dict() for f in self.findings],
            "suggestions": [
                {
                    "code": s.code,
                    "system": s.system,
                    "title": s.title,
                    "score": s.score,
                    "open_axes": list(s.open_axes),
                }
                for s in self.suggestions
            ],
            "automated": self.automated,
            "draft": self.draft,
        }


def analyze(
    raw: bytes,
    store: CodeStore,
    search: CodeSearch,
    *,
    on: date | None = None,
    suggestions: int = 5,
    templates: jinja2.Environment,
    service_name: str = "CaseConsultant",
) -> Analysis:
    """Analyze RAW (an RFC 5322 message or plain text) against the loaded code sets.

    Only the sender's own new text is read for codes; quoted history and the signature
    (where the sender's phone and address live) are not. Automated mail gets findings
    but neither suggestions nor a draft. Every fact is judged for the date of service
    the question names, else for ON (default today).
    """
    mail = read_mail(raw)
    service_date = date_of_service(mail.question)
    day = service_date or on or date.today()
    reason = automated_reason(mail.message)
    extraction = extract(mail.question, store, day)
    codes = [mention.info for mention in extraction.codes]
    modifier_names = [m.modifier for m in extraction.modifiers]
    findings = code_findings(store, codes, modifier_names, day, text=mail.question)
    phi_hits = find_phi("\n\n".join((mail.question, mail.quoted)))
    if (phi := phi_finding(phi_hits)) is not None:
        findings.append(phi)
    if reason is not None:
        return Analysis(
            service_date, [], codes, extraction.modifiers, findings, [], True, reason, None
        )
    question_phi = [(h.start, h.end) for h in phi_hits if h.end <= len(mail.question)]
    hits, leads = _suggest(
        search,
        _search_phrases(mail.question, extraction, question_phi),
        codes,
        suggestions,
        system_cue(mail.question),
    )
    dos = service_date.isoformat() if service_date else None
    answers = answer_all(mail.question, extraction.codes, findings, hits, dos, leads)
    draft = render_draft(
        templates,
        answers=answers,
        codes=codes,
        modifiers=extraction.modifiers,
        findings=findings,
        suggestions=hits,
        unknowns=unknowns(store, codes, findings, day),
        service_name=service_name,
        date_of_service=service_date,
    )
    return Analysis(
        service_date, answers, codes, extraction.modifiers, findings, hits, False, None, draft
    )


def _search_phrases(
    question: str, extraction: Extraction, blanks: list[tuple[int, int]]
) -> list[str]:
    """The clinical phrases a code search should read: those of the questions asking for
    a code, or, when such a question names no condition itself ("What codes do I use?"),
    those of its paragraph. Questions about quoted codes add nothing: their words
    ("bilateral", "same day") would only find codes nobody asked for."""
    wanted = code_questions(question, extraction.codes)
    if not wanted:
        return []
    own = clinical_phrases(extraction, [*blanks, *_outside(wanted, len(question))])
    if own:
        return own
    paragraphs = [paragraph_of(question, start, end) for start, end in wanted]
    return clinical_phrases(extraction, [*blanks, *_outside(paragraphs, len(question))])


def _outside(spans: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    gaps, at = [], 0
    for start, end in sorted(spans):
        gaps.append((at, max(at, start)))
        at = max(at, end)
    return [*gaps, (at, length)]


def _suggest(
    search: CodeSearch,
    phrases: list[str],
    mentioned: list[CodeInfo],
    limit: int,
    system: str | None = None,
) -> tuple[list[SearchHit], list[SearchHit]]:
    """The good hits of each phrase merged (best score per code), minus codes already
    named, within SYSTEM when the question asks for one ("dx code", "J code"); and each
    phrase's best hit (what a "what is the code" answer names), best first."""
    if limit <= 0:
        return [], []
    named = {(info.system, info.code) for info in mentioned}
    best: dict[tuple[str, str], SearchHit] = {}
    leads: dict[tuple[str, str], SearchHit] = {}
    for phrase in phrases:
        words = phrase.split()
        if len(words) == 1 and (words[0].lower() in _VAGUE or not search.knows(words[0])):
            continue  # "special", "screening": one such word is no clinical phrase
        hits = search.search(phrase, system=system, limit=limit)
        if not hits:
            continue
        floor = max(SUGGESTION_FLOOR, SUGGESTION_RELATIVE * hits[0].score)
        kept = [h for h in hits if h.score >= floor and (h.system, h.code) not in named]
        if kept:
            leads.setdefault((kept[0].system, kept[0].code), kept[0])
        for hit in kept:
            key = (hit.system, hit.code)
            if key not in best or hit.score > best[key].score:
                best[key] = hit
    ranked = sorted(best.values(), key=lambda hit: -hit.score)[:limit]
    return ranked, sorted(leads.values(), key=lambda hit: -hit.score)


# Words of the index that say too little on their own to be what a question is about.
_VAGUE = frozenset(
    re.findall(
        r"\S+",
        """screening sequela sequelae injury injuries aftercare bite bites confirm confirmed
        mixed cover covered below above specifically unilateral bilateral history status exam
        examination disease disorder condition syndrome infection pain problem symptom
        symptoms complication complications surgery therapy treatment care followup chronic
        acute""",
    )
)

# A phrase's hit is suggested when it scores at least this, and this share of the
# phrase's best: weak matches of words that are no clinical phrase ("Jane Doe, CCS" ->
# R06.00 at 0.33) and the siblings behind a clear best hit (E10.9 behind E11.9 for
# "diabetes") are dropped. bench/search_eval.py measures both sides: how often the right
# code is kept for the development set's phrasings, and the labelled emails' noise rate.
SUGGESTION_FLOOR = 0.5
SUGGESTION_RELATIVE = 0.8


def unknowns(
    store: CodeStore, codes: list[CodeInfo], findings: list[Finding], on: date
) -> list[str]:
    """What the answer could not check, said plainly for the draft."""
    lines: list[str] = []
    if not codes:
        lines.append(
            "We found no code numbers in your question, so there is nothing to verify; any "
            "codes suggested above come from a search of the code titles and index only."
        )
    billing = [info.code for info in codes if info.system in (CPT, HCPCS)]
    if billing:
        lines.extend(_ncci_gaps(store, billing))
    if store.dated_from is not None and on < store.dated_from:
        lines.append(
            f"The date of service {on.isoformat()} is before the oldest quarter of our dated "
            f"code tables ({store.dated_from.isoformat()}), so each code's status is the one "
            "in its current release, not necessarily the one in force then."
        )
    for code_set in releases_used(store, codes, findings):
        release = store.releases[code_set]
        if not release_status(release, date.today()).current:
            lines.append(
                f"Our {store.source(code_set)} release is older than the current "
                f"{CADENCE[code_set]}'s, so a code or edit added, changed or deleted since "
                "then may read differently today."
            )
    lines.append(
        "This answer does not cover individual payer policies or the documentation of the "
        "case, which decide what is finally payable."
    )
    return lines


def _ncci_gaps(store: CodeStore, billing: list[str]) -> list[str]:
    codes = ", ".join(billing)
    if store.has(IOCE) and not store.has(PTP):
        outpatient = (
            "The practitioner NCCI PTP edits are not loaded: the pair checks above use the "
            "NCCI hospital outpatient edits from the I/OCE, which apply to hospital outpatient "
            "claims; a physician's claim is edited against the practitioner table."
        )
        return [outpatient] + (
            [f"The NCCI MUE table is not loaded, so unit limits for {codes} were not checked."]
            if not store.has(MUE)
            else []
        )
    missing = [name for code_set, name in _NCCI if not store.has(code_set)]
    if len(missing) == len(_NCCI) and not store.has(IOCE):
        return [
            "No NCCI edits are loaded, so we could not check bundling (PTP edits), unit "
            f"limits (MUEs) or add-on code rules for {codes}."
        ]
    if missing:
        return [f"The NCCI {' and '.join(missing)} are not loaded, so those were not checked."]
    return []


def releases_used(store: CodeStore, codes: list[CodeInfo], findings: list[Finding]) -> list[str]:
    """The loaded releases a draft's facts came from, each once, in a stable order."""
    used: list[str] = []
    for info in codes:
        used.append(SYSTEM_RELEASE[info.system])
        if info.date_source:
            used.append(IOCE)
        if info.cc_mcc is not None or any(
            f.kind == "cc_mcc" and info.code in f.codes for f in findings
        ):
            used.append("msdrg")
        if info.system == ICD10CM and store.has("hcc"):
            used.append("hcc")
    tables = (*PTP_TABLES.items(), *ADDON_TABLES.items(), (MUE, "NCCI MUE"))
    for finding in findings:
        used.extend(code_set for code_set, name in tables if finding.source.startswith(name))
    return [code_set for code_set in dict.fromkeys(used) if code_set in store.releases]


_NCCI = ((PTP, "PTP edits"), (MUE, "MUE table"), (ADDON, "add-on code edits"))
