"""A condition of a pregnant patient, read as the chapter 15 code whose range holds it.

Coders write "asthma in pregnancy", "pregnant pt with hypothyroidism", "depression, 2nd
trimester". A condition during pregnancy is coded from chapter 15 first unless the provider
says it does not affect the pregnancy (Official Guidelines I.C.15.a.1), with the
condition's own code beside it; the O98-O9A titles name chapters ("Endocrine, nutritional
and metabolic diseases complicating pregnancy"), not the conditions coders name. The
tabular ties the two: each category's inclusion note says "Conditions in E00-E89", and a
narrower subcategory's "use additional code" note names its own range (O99.21 obesity,
E66.-). So the condition is found as a search finds it (hypothyroidism -> E03.9), and the
narrowest range holding that code picks the subcategory (O99.28-), whose "complicating
pregnancy" code for the trimester told is the answer (O99.283 at 30 weeks).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from consultant.codes.systems import ICD10CM

# "Conditions in A80-B09, B25-B34, R87.81-", "code(s) from F11-F16 and F18-F19 to ...",
# "code to identify the type of obesity (E66.-)", "code from category F17 to ..."
_RANGE = re.compile(
    r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]+)?)"
    r"(?:\s*-\s*([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]+)?))?(?:\.-|-)?"
)
# What makes a phrase's patient pregnant now, as query_cues leaves the phrase.
_PREGNANT = re.compile(
    r"\b(?:(?:in|during|complicating|of|with)\s+(?:(?:her|the|this|a)\s+)?pregnancy"
    r"|(?:is\s+|currently\s+)?pregnant(?:\s+(?:pt|patient|woman|female|lady))?"
    r"|while\s+pregnant|antepartum|prenatal|g\d+\s*p\d+\w*|iup"
    r"|(?:at\s+)?\d{1,2}\s*(?:w|wks?|weeks?)(?:\s*\d\s*d)?(?:\s+(?:gestation|pregnant|ega|ga))?"
    r"|(?:first|second|third|1st|2nd|3rd)\s+tri(?:mester)?)\b",
    re.I,
)
# Said not to bear on the pregnancy (I.C.15.a.1: Z33.1), or not a pregnancy now.
_NOT_NOW = re.compile(
    r"\b(?:incidental|not\s+pregnant|postpartum|post[- ]partum|puerper\w*|delivered"
    r"|deliver(?:y|ies)|labou?r|childbirth|history)\b",
    re.I,
)


@dataclass(frozen=True)
class _Span:
    category: str  # the O98-O9A category or subcategory whose note holds the range
    low: str  # compact, without the dot: "E00"
    high: str

    def holds(self, code: str) -> bool:
        compact = code.replace(".", "")
        return self.low <= compact[: len(self.low)] and compact[: len(self.high)] <= self.high

    @property
    def width(self) -> tuple[int, int, str]:
        """Narrower first: the deeper category (O99.21 before O99.2), the longer bound."""
        return -len(self.category), -len(self.low), self.low


class InPregnancy:
    """The O98-O9A ranges of the tabular's notes, and the codes under them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._spans: list[_Span] = []
        rows = conn.execute(
            "SELECT code, kind, text FROM notes WHERE system = ? AND code >= 'O98'"
            " AND code < 'O9B' AND (kind = 'use_additional_code' OR (kind = 'inclusion'"
            " AND text LIKE 'Conditions in %'))",
            (ICD10CM,),
        )
        for category, kind, text in rows:
            if kind == "use_additional_code" and len(category) < len("O99.21"):
                continue  # a category's own "identify condition" note names no range
            text = text.split("except", 1)[0]  # "S00-T88, except T74 and T76"
            for low, high in _RANGE.findall(text):
                if low.startswith("O"):
                    continue
                self._spans.append(
                    _Span(category, low.replace(".", ""), (high or low).replace(".", ""))
                )

    def told(self, text: str) -> str | None:
        """What TEXT says a pregnant patient has, without the pregnancy's words; None when
        it says no pregnancy now, or says it does not bear on the condition."""
        if not _PREGNANT.search(text) or _NOT_NOW.search(text):
            return None
        rest = re.sub(r"\s+", " ", _PREGNANT.sub(" ", text)).strip(" ,;-")
        return rest or None

    def of(self, condition: str) -> tuple[str, str] | None:
        """The billable "complicating pregnancy" code (code, title), trimester unspecified,
        of the narrowest category whose range holds the CONDITION code."""
        spans = [span for span in self._spans if span.holds(condition)]
        if not spans:
            return None
        category = min(spans, key=lambda span: span.width).category
        # a sibling range the condition is outside of ("O99.21" obesity for E03.9) is not it
        elsewhere = {s.category for s in self._spans if len(s.category) > len(category)}
        elsewhere -= {s.category for s in spans}
        rows = self._conn.execute(
            "SELECT code, title FROM codes WHERE system = ? AND billable = 1 AND code LIKE ?"
            " ORDER BY code",
            (ICD10CM, f"{category}%"),
        ).fetchall()
        fitting = [
            (code, title)
            for code, title in rows
            if not any(code.startswith(other) for other in elsewhere)
            and "pregnancy" in title.lower()
        ]
        if len({code[:6] for code, _ in fitting}) > 1:
            # O99.8: named conditions' own codes (O99.84 bariatric surgery status...) and
            # the "other specified" one for the rest
            fitting = [row for row in fitting if row[1].lower().startswith("other")]
        for wanted in ("unspecified trimester", "pregnancy"):
            found = [row for row in fitting if wanted in row[1].lower()]
            if len(found) == 1:
                return found[0]
        return None
