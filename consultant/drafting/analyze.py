"""One question in, everything a draft is made from out: codes, modifiers, findings,
suggested codes, whether the mail was automated, and the rendered draft."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import jinja2

from consultant.codes.modifiers import modifier_info
from consultant.codes.ncci import ADDON, ADDON_TABLES, IOCE, MUE, PTP, PTP_TABLES
from consultant.codes.query_cues import system_cue
from consultant.codes.search import CodeSearch, SearchHit
from consultant.codes.status import CADENCE, release_status
from consultant.codes.store import SYSTEM_RELEASE, CodeInfo, CodeStore
from consultant.codes.systems import CPT, HCPCS, ICD10CM
from consultant.drafting.answers import Answer, answer_all, every_lead
from consultant.drafting.dates import date_of_service
from consultant.drafting.draft import render_draft
from consultant.drafting.extract import ModifierMention, clinical_phrases, extract, listed_parts
from consultant.drafting.findings import Finding, code_findings
from consultant.drafting.guidelines import COMBINATION
from consultant.drafting.partners import partners, same_encounter
from consultant.drafting.patient_context import read_context
from consultant.drafting.phi import find_phi, phi_finding
from consultant.drafting.suggestions import says_little, search_phrases, suggest
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
    # what the message says of the patient ("activity / status codes" asks, says nothing)
    said = [p for p in clinical_phrases(extraction, question_phi) if not says_little(p)]
    patient = read_context(mail.question)
    asked, told = search_phrases(search, mail.question, extraction, question_phi, said)
    by_phrase = suggest(
        search,
        list(dict.fromkeys(phrase for phrases in asked.values() for phrase in phrases)),
        codes,
        suggestions,
        system_cue(mail.question),
        said=said,
        patient=patient,
        told=told,
        listed=listed_parts(extraction, question_phi),
    )
    # Each question's leads: the best hit of each phrase it was answered from, an external
    # cause with the encounter of the injury it caused.
    leads = {
        span: _caused(
            store, _unique(hit for phrase in phrases for hit in by_phrase.get(phrase, ()))
        )
        for span, phrases in asked.items()
    }
    # What the leads' own notes ask for beside them, where the message names it.
    extra = partners(store, search, every_lead(leads), said, patient)
    # A draft suggests what its answers name: each question's leads and their partners.
    named = [*every_lead(leads), *(h for hs in extra.values() for h in hs)]
    merged = {hit.code: hit for hit in named}
    hits = sorted(merged.values(), key=lambda h: -h.score)[:suggestions]
    # A combination the guidelines call for (I13.0 for heart failure, CKD and hypertension)
    # replaces the single codes of its category a phrase found alone (I12.9).
    combined = [code for f in findings if f.kind == COMBINATION for code in f.codes]
    hits = [hit for hit in hits if not _superseded(hit.code, combined)]
    dos = service_date.isoformat() if service_date else None
    modifier_at = [m.start for m in extraction.modifiers]
    answers = answer_all(
        mail.question,
        extraction.codes,
        findings,
        hits,
        dos,
        leads,
        modifiers=modifier_at,
        partners=extra,
        modifier_title=lambda modifier: _modifier_title(store, modifier),
    )
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


_HYPERTENSIVE = frozenset({"I10", "I11", "I12", "I13"})


def _superseded(code: str, combined: list[str]) -> bool:
    """Whether CODE is a hypertensive code (I10-I13) other than the one the combination
    findings COMBINED call for: hypertension is coded once (I.C.9.a). A diabetes code is
    never superseded so: E11.22 and E11.65 are both coded."""
    return (
        code[:3] in _HYPERTENSIVE
        and code not in combined
        and any(c[:3] in _HYPERTENSIVE for c in combined)
    )


def _unique(hits: Iterable[SearchHit]) -> list[SearchHit]:
    """HITS in order, each code once (a code two phrases lead with is named once)."""
    return list({(hit.system, hit.code): hit for hit in hits}.values())


def _caused(store: CodeStore, hits: list[SearchHit]) -> list[SearchHit]:
    injury = next((hit for hit in hits if hit.code.startswith("S")), None)
    return [same_encounter(store, hit, injury) for hit in hits] if injury else hits


def _modifier_title(store: CodeStore, modifier: str) -> str | None:
    info = modifier_info(store.conn, modifier)
    return info.title if info else None


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
