"""A drug the patient takes now, read as its long-term use code (Z79).

Coders write "on Eliquis", "cont Lantus 22u qhs + metformin 500 bid", "chronic prednisone";
the Z79 titles say "long term (current) use of anticoagulants". Neither the words nor the
Table of Drugs lead from one to the other, so the classes are listed in
long_term_use.toml: drug names first (insulin and metformin share a T-code category but
not a Z79 code), then Table of Drugs categories for the substances no name claims.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLASSES_FILE = Path(__file__).with_name("long_term_use.toml")

# The patient takes it: a dose schedule, "on", "taking", "continue", "long-term".
_TAKEN = re.compile(
    r"\b(?:on|taking|takes|take|cont|continues?|continued|long[- ]term|chronic|daily|weekly"
    r"|monthly|maintenance|maintained|anticoagulated|current(?:ly)?|bid|tid|qid"
    r"|qd|qhs|qam|qpm|prn|nightly|started|restarted|resumed|home|use|user|uses"
    r"|x\s*\d+\s*(?:wks?|weeks?|mos?|months?))\b",
    re.I,
)
# A substance use disorder is coded as such (F10-F19), not as a drug taken (I.C.5.b).
_MISUSE = re.compile(
    r"\b(?:abuse|dependen\w*|disorder|addict\w*|withdrawal|intoxicat\w*|misuse|overdose|od)\b"
    # "opioid use" is F11.9-, a use of a substance, not a drug taken as prescribed
    r"|\b(?:opioids?|opiates?|heroin|cocaine|cannabis|marijuana|benzo\w*|amphetamines?|meth)\s+use\b",
    re.I,
)
# ...unless the phrase stops it or denies it right before the drug's name.
_STOPPED = re.compile(
    r"\b(?:no|not|without|off|stopped|stop|discontinued|d/c'?d|dc'?d|held|holding|quit"
    r"|never|denies|former|prior|previously|hx of|history of|allergic to|allergy to)"
    r"(?:\s+\S+){0,2}\s*$",
    re.I,
)
# What is left of "cont Lantus 22u qhs + metformin 500 bid" once the drugs are read.
_DOSING = re.compile(
    r"\b\d+(?:\.\d+)?\s*(?:u|units?|mg|mcg|milligram|ml|g)?\b|\b(?:units?|mg|mcg|milligram|ml)\b"
    r"|(?:/|\bper\s+|\ba\s+)(?:day|d|wk|week)\b"
    r"|\b(?:with|w/|and|no|not|without|off)\s*(?=[,;.+]|$)|\+",
    re.I,
)
# what a question wraps a drug's name in: "(the Z code) for the metformin"
_FILLER = re.compile(r"^(?:(?:for|the|a|an|of|his|her)\b\s*)+$", re.I)
_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")
_LONGEST = 3  # words in the longest name listed


@dataclass(frozen=True)
class Taken:
    codes: list[str]  # Z79 codes, in the order the drugs are named
    rest: str  # the text without the drugs and their dosing: what else it tells


class LongTermUse:
    """The Z79 classes, with the loaded Table of Drugs' substances for their categories."""

    def __init__(self, generic: Callable[[str], str | None], poisonings: dict[str, str]) -> None:
        """GENERIC: the generic a brand stands for; POISONINGS: each Table of Drugs
        substance's accidental-poisoning T-code, whose category may place it in a class."""
        classes = tomllib.loads(CLASSES_FILE.read_text(encoding="utf-8"))["class"]
        self._names = {name: c["code"] for c in classes for name in c["drugs"]}
        categories = {prefix: c["code"] for c in classes for prefix in c.get("table", ())}
        self._generic = generic
        self._by_substance = {
            substance: categories.get(code[:6]) or categories[code[:5]]
            for substance, code in poisonings.items()
            if code[:6] in categories or code[:5] in categories
        }

    def taken(self, text: str, *, diagnosis: bool = False) -> Taken:
        """The Z79 codes of the drugs TEXT says the patient takes now, in its order; none
        when it says nothing of taking them (a drug alone may be a poisoning or a J-code),
        unless a DIAGNOSIS code is asked for the drug alone ("the insulin Z code")."""
        said_taken = _TAKEN.search(text) is not None
        if not (said_taken or diagnosis) or _MISUSE.search(text):
            return Taken([], text)
        lowered = text.lower()
        words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(lowered)]
        found: list[str] = []
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(words):
            for size in range(min(_LONGEST, len(words) - i), 0, -1):
                code = self._class_of(" ".join(w for w, *_ in words[i : i + size]))
                if code is not None:
                    start = words[i][1]
                    if code not in found and not _STOPPED.search(lowered[:start]):
                        found.append(code)
                    spans.append((start, words[i + size - 1][2]))
                    i += size - 1
                    break
            i += 1
        if not found:
            return Taken([], text)
        rest = text
        for start, end in reversed(spans):
            rest = rest[:start] + " " + rest[end:]
        rest = re.sub(r"\s+", " ", _DOSING.sub(" ", _TAKEN.sub(" ", rest))).strip(" ,;+-")
        rest = _FILLER.sub("", rest)
        if not said_taken and rest:
            return Taken([], text)  # the drug beside something else: not asked alone
        return Taken(found, rest)

    def _class_of(self, name: str) -> str | None:
        if name in self._names:
            return self._names[name]
        if " " in name or len(name) < 4:
            return None
        generic = self._generic(name)
        # "Lantus" is "insulin glargine": the generic, or one of its words, is listed
        for reading in (generic, *generic.split()) if generic else ():
            if reading in self._names:
                return self._names[reading]
        return self._by_substance.get(name) or self._by_substance.get(generic or "")
