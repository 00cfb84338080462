"""One question in, everything a draft is made from out: codes, modifiers, findings,
suggested codes, whether the mail was automated, and the rendered draft."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import jinja2

from consultant.codes.ncci import ADDON, MUE, PTP
from consultant.codes.search import CodeSearch, SearchHit
from consultant.codes.status import release_status
from consultant.codes.store import SYSTEM_RELEASE, CodeInfo, CodeStore
from consultant.codes.systems import CPT, HCPCS
from consultant.drafting.draft import render_draft
from consultant.drafting.extract import ModifierMention, clinical_phrases, extract
from consultant.drafting.findings import Finding, code_findings
from consultant.drafting.phi import find_phi, phi_finding
from consultant.mail.automated import automated_reason
from consultant.mail.message import read_mail


@dataclass(frozen=True)
class Analysis:
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
            "codes": [
                {"code": c.code, "system": c.system, "status": c.status, "title": c.title}
                for c in self.codes
            ],
            "modifiers": [{"modifier": m.modifier, "title": m.title} for m in self.modifiers],
            "findings": [f.to_dict() for f in self.findings],
            "suggestions": [
                {"code": s.code, "system": s.system, "title": s.title, "score": s.score}
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
    but neither suggestions nor a draft.
    """
    day = on or date.today()
    mail = read_mail(raw)
    reason = automated_reason(mail.message)
    extraction = extract(mail.question, store, day)
    codes = [mention.info for mention in extraction.codes]
    modifier_names = [m.modifier for m in extraction.modifiers]
    findings = code_findings(store, codes, modifier_names, day)
    phi_hits = find_phi("\n\n".join((mail.question, mail.quoted)))
    if (phi := phi_finding(phi_hits)) is not None:
        findings.append(phi)
    if reason is not None:
        return Analysis(codes, extraction.modifiers, findings, [], True, reason, None)
    question_phi = [(h.start, h.end) for h in phi_hits if h.end <= len(mail.question)]
    hits = _suggest(search, clinical_phrases(extraction, question_phi), codes, suggestions)
    draft = render_draft(
        templates,
        codes=codes,
        modifiers=extraction.modifiers,
        findings=findings,
        suggestions=hits,
        unknowns=unknowns(store, codes, day),
        service_name=service_name,
    )
    return Analysis(codes, extraction.modifiers, findings, hits, False, None, draft)


def _suggest(
    search: CodeSearch, phrases: list[str], mentioned: list[CodeInfo], limit: int
) -> list[SearchHit]:
    """Search hits for every phrase merged (best score per code), minus codes already named."""
    if limit <= 0:
        return []
    named = {(info.system, info.code) for info in mentioned}
    best: dict[tuple[str, str], SearchHit] = {}
    for phrase in phrases:
        for hit in search.search(phrase, limit=max(limit * 2, 10)):
            key = (hit.system, hit.code)
            if key in named:
                continue
            if key not in best or hit.score > best[key].score:
                best[key] = hit
    return sorted(best.values(), key=lambda hit: -hit.score)[:limit]


def unknowns(store: CodeStore, codes: list[CodeInfo], on: date) -> list[str]:
    """What the answer could not check, said plainly for the draft."""
    lines: list[str] = []
    if not codes:
        lines.append(
            "We found no code numbers in your question, so there is nothing to verify; any "
            "codes suggested above come from a search of the code titles and index only."
        )
    billing = [info.code for info in codes if info.system in (CPT, HCPCS)]
    if billing:
        missing = [name for code_set, name in _NCCI if not store.has(code_set)]
        if len(missing) == len(_NCCI):
            lines.append(
                "No NCCI edits are loaded, so we could not check bundling (PTP edits), unit "
                "limits (MUEs) or add-on code rules for " + ", ".join(billing) + "."
            )
        elif missing:
            lines.append(
                f"The NCCI {' and '.join(missing)} are not loaded, so those were not checked."
            )
    for code_set in dict.fromkeys(SYSTEM_RELEASE[info.system] for info in codes):
        release = store.releases.get(code_set)
        if release is not None and not release_status(release, on).current:
            lines.append(
                f"Our {store.source(code_set)} release may not be the current one, so a code "
                "added, changed or deleted since then may read differently today."
            )
    lines.append(
        "This answer does not cover individual payer policies or the documentation of the "
        "case, which decide what is finally payable."
    )
    return lines


_NCCI = ((PTP, "PTP edits"), (MUE, "MUE table"), (ADDON, "add-on code edits"))
