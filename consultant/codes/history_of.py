"""A history of a condition, read as the history code whose range holds the condition.

Coders write "fam hx colon ca", "hx of stomach cancer", "h/o pancreatitis"; the history
codes' titles name organ groups ("Family history of malignant neoplasm of digestive
organs"), not the sites coders name. The tabular ties the two: each history code's
inclusion note says "Conditions classifiable to C15-C26". So the condition is found as a
search finds it (colon cancer -> C18.9), and the billable history code whose note holds
that code, the narrowest first, is the answer (Z80.0); family history is Z80-Z84, the
patient's own Z85-Z87.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from consultant.codes.systems import ICD10CM

_CLASSIFIABLE = "Conditions classifiable to "
# "C15-C26", "C50.-", "C7A.022-C7A.025", "C7A.01-"
_RANGE = re.compile(
    r"([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]*)?)-?(?:([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]*)?))?"
)
# The history the cue words say, as query_cues rewrites them.
_FAMILY = re.compile(r"\bfamily history of\b", re.I)
_PERSONAL = re.compile(r"\b(?:personal )?history of\b", re.I)


@dataclass(frozen=True)
class _Span:
    code: str  # the history code
    title: str
    low: str  # compact, without the dot: "C15"
    high: str

    def holds(self, code: str) -> bool:
        compact = code.replace(".", "")
        return self.low <= compact[: len(self.low)] and compact[: len(self.high)] <= self.high

    @property
    def width(self) -> tuple[int, str, str]:
        """Narrower first: the longer bound ("C7A.022"), then the closer pair."""
        return -len(self.low), self.low, self.high


class HistoryCodes:
    """The billable history codes with their inclusion notes' code ranges."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.family: list[_Span] = []
        self.personal: list[_Span] = []
        rows = conn.execute(
            "SELECT n.code, c.title, n.text FROM notes n JOIN codes c ON c.system = n.system"
            " AND c.code = n.code WHERE n.system = ? AND c.billable = 1 AND n.kind = 'inclusion'"
            " AND n.code >= 'Z80' AND n.code < 'Z88' AND n.text LIKE ?",
            (ICD10CM, _CLASSIFIABLE + "%"),
        )
        for code, title, text in rows:
            spans = self.family if code < "Z85" else self.personal
            for part in text[len(_CLASSIFIABLE) :].split(","):
                match = _RANGE.fullmatch(part.strip().rstrip("-").rstrip("."))
                if match is None:
                    continue
                low = match[1].replace(".", "")
                high = (match[2] or match[1]).replace(".", "")
                spans.append(_Span(code, title, low, high))

    def told(self, text: str) -> tuple[str, bool] | None:
        """What TEXT (a phrase as query_cues rewrote it) says a history of, without the
        history words, and whether it is the family's; None when it says no history."""
        if _FAMILY.search(text):
            return _FAMILY.sub(" ", text).strip(), True
        if _PERSONAL.search(text):
            return _PERSONAL.sub(" ", text).strip(), False
        return None

    def of(self, condition: str, family: bool) -> tuple[str, str] | None:
        """The history code (code, title) whose range holds the CONDITION code."""
        spans = [s for s in (self.family if family else self.personal) if s.holds(condition)]
        if not spans:
            return None
        best = min(spans, key=lambda span: span.width)
        return best.code, best.title
