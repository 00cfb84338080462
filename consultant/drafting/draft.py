"""The reply draft: database facts with their sources, rendered from a Jinja2 template.

The template sees only what the database says (codes, titles, notes, edits) and code
numbers; nothing from the customer's text reaches it, so no patient identifier can
be repeated back by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import jinja2

from consultant.codes.search import SearchHit
from consultant.codes.store import CodeInfo
from consultant.drafting.answers import Answer
from consultant.drafting.extract import ModifierMention
from consultant.drafting.findings import Finding

TEMPLATE = "draft/reply.txt.j2"


def render_draft(
    templates: jinja2.Environment,
    *,
    answers: Sequence[Answer] = (),
    codes: Sequence[CodeInfo],
    modifiers: Sequence[ModifierMention],
    findings: Sequence[Finding],
    suggestions: Sequence[SearchHit],
    unknowns: Sequence[str],
    service_name: str,
    date_of_service: date | None = None,
) -> str:
    """The reply text; the `phi` finding becomes the closing reminder."""
    phi = next((f.message for f in findings if f.kind == "phi"), None)
    context = {
        # the answers without the customer's sentence: nothing of theirs reaches the draft
        "answers": [{"kind": a.kind, "answer": a.answer} for a in answers],
        "codes": [
            {
                "code": info.code,
                "system": info.system,
                "status": info.status,
                "title": info.title,
                "source": info.source,
                "section": info.section,
            }
            for info in codes
        ],
        "modifiers": [
            {"modifier": m.modifier, "title": m.title, "source": m.source} for m in modifiers
        ],
        "findings": [
            {"kind": f.kind, "codes": f.codes, "message": f.message, "source": f.source}
            for f in findings
            if f.kind != "phi"
        ],
        "phi": phi,
        "suggestions": [s.to_dict() for s in suggestions],
        "unknowns": list(unknowns),
        "service_name": service_name,
        "date_of_service": date_of_service.isoformat() if date_of_service else None,
    }
    return templates.get_template(TEMPLATE).render(context)
