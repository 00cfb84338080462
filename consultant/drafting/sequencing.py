"""The order ICD-10-CM codes are listed in, by the Official Guidelines' sequencing rules.

"Which goes first?" is answered from the tabular's own notes when the codes have them
(findings of kind code_first / use_additional_code); these are the rules a coder applies
otherwise, each with the section it rests on: the chemotherapy encounter before the
cancer (I.C.2.e.2), sepsis before its localized infection (I.C.1.d.4), a poisoning before
its manifestations and a drug's adverse effect after them (I.C.19.e.5), underdosing never
first (I.C.19.e.5(c)), a manifestation or organism after its condition (I.A.13), history,
status and long-term drug use after the condition, and external causes last (I.C.20).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    rank: int  # lower goes first
    pattern: re.Pattern[str]  # on the code
    why: str  # the rule, with its section, said once when it orders the codes


_RULES = (
    Rule(
        0,
        re.compile(r"^Z51\.(?:0|1)"),
        "an encounter solely for chemotherapy, immunotherapy or radiation therapy lists that "
        "encounter first and the malignancy after it (I.C.2.e.2)",
    ),
    Rule(
        0,
        re.compile(r"^Z0[89]"),
        "a follow-up examination after completed treatment lists the follow-up code first, "
        "then the history code (I.C.21.c.8)",
    ),
    Rule(
        1,
        re.compile(r"^A4[01]\.|^A02\.1|^A22\.7|^A26\.7|^A32\.7|^A42\.7|^B37\.7"),
        "sepsis is listed before the localized infection it came from (I.C.1.d.4)",
    ),
    Rule(
        1,
        re.compile(r"^T(?:3[6-9]|4\d|50)\.\w{2}[1-4]|^T(?:5[1-9]|6[0-5])\.\w{2}[1-4]"),
        "a poisoning is listed first, then its manifestations (I.C.19.e.5(b))",
    ),
    Rule(
        4,
        re.compile(r"^T(?:3[6-9]|4\d|50)\.\w{2}5"),
        "a drug's adverse effect is listed after the effect it caused (I.C.19.e.5(a))",
    ),
    Rule(
        4,
        re.compile(r"^T(?:3[6-9]|4\d|50)\.\w{2}6"),
        "underdosing is never listed first: the condition it worsened goes first (I.C.19.e.5(c))",
    ),
    Rule(
        5,
        re.compile(r"^R65\.[12]"),
        "severe sepsis (R65.2-) is never listed first: the underlying infection goes first "
        "(I.C.1.d.4)",
    ),
    Rule(
        6,
        re.compile(r"^Z(?:79|8[5-7]|9[0-9]|68|72|77)"),
        "history, status and long-term drug use codes follow the condition they add to",
    ),
    Rule(
        7,
        re.compile(r"^[VWXY]"),
        "external cause codes are never listed first: they follow the injury or condition (I.C.20)",
    ),
)
# "Diabetic cataract ... in diseases classified elsewhere", "E. coli as the cause of diseases
# classified elsewhere": codes the tabular lets stand only beside another
_MANIFESTATION = re.compile(
    r"\b(?:in|as the cause of) (?:diseases|conditions) classified elsewhere\b", re.I
)
_MANIFESTATION_RULE = Rule(
    3,
    re.compile(r"$^"),
    "a manifestation or infectious-agent code ('classified elsewhere') follows the condition "
    "it adds to (I.A.13)",
)
_USUAL = 2  # a condition no rule places


def ordered(codes: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """CODES (code, title) in the order to list them, and the rules that decided it
    (empty when no rule tells them apart)."""
    ranked = []
    for position, (code, title) in enumerate(codes):
        rule = next((r for r in _RULES if r.pattern.search(code)), None)
        if rule is None and _MANIFESTATION.search(title):
            rule = _MANIFESTATION_RULE
        ranked.append((rule.rank if rule else _USUAL, position, code, rule))
    ranked.sort(key=lambda item: item[:2])
    used = {id(rule): rule.why for rank, _, _, rule in ranked if rule is not None}
    if len({rank for rank, *_ in ranked}) < 2:
        return [code for _, _, code, _ in ranked], []
    return [code for _, _, code, _ in ranked], list(used.values())
