"""Which modifier a question's codes and words call for, as a coder decides it.

"Which modifier goes on which code?" has a direct answer more often than not: an E/M
billed with a procedure on the same day takes 25 (57 when it is the decision for major
surgery); a column-two code of an NCCI pair whose modifier indicator is 1 takes 59 or the
X modifier that says why the service was distinct; a procedure in another procedure's
global period takes 79 when unrelated, 58 when staged, 78 when a return to the operating
room; a side takes RT or LT; a screening colonoscopy that became diagnostic takes PT for
Medicare and 33 for other payers. Each choice names the code it goes on and why; the
documentation must still support it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from consultant.codes.store import CodeInfo
from consultant.codes.systems import CPT, HCPCS
from consultant.drafting.findings import Finding, pair_edits


@dataclass(frozen=True)
class Choice:
    modifier: str
    code: str | None  # the code it goes on; None when it depends on the claim line
    why: str

    def sentence(self, title: str | None = None) -> str:
        """The choice said, with the modifier's TITLE as the loaded modifier tables give it."""
        target = f" on {self.code}" if self.code else ""
        named = f" ({title})" if title else ""
        return f"Modifier {self.modifier}{target}{named}: {self.why}"


def choose(
    text: str, infos: Sequence[CodeInfo], findings: Sequence[Finding], story: str = ""
) -> list[Choice]:
    """The modifiers TEXT's billing codes (INFOS) call for, given the NCCI FINDINGS about
    them, first the one the question most likely asks about; STORY (default TEXT) is the
    whole message, which may tell the setting once for several cases ("all within 90-day
    global")."""
    story = story or text
    billing = [info.code for info in infos if info.system in (CPT, HCPCS)]
    visits = [code for code in billing if _is_visit(code)]
    procedures = [code for code in billing if not _is_visit(code)]
    choices: list[Choice] = []
    problem = [code for code in visits if not _is_preventive(code)]
    if problem and (procedures or len(visits) > 1):
        visit = problem[0]
        if _DECISION.search(text):
            choices.append(
                Choice(
                    "57",
                    visit,
                    "the visit where the decision for major surgery "
                    "was made is paid apart from the surgery's global fee.",
                )
            )
        else:
            other = ", ".join(c for c in billing if c != visit)
            choices.append(
                Choice(
                    "25",
                    visit,
                    f"a significant, separately documented E/M "
                    f"beside {other} on the same day; the procedure itself "
                    "takes none for this.",
                )
            )
    for edit in pair_edits(findings, billing):
        column1, column2 = edit.codes
        if "indicator 1" in edit.message:
            choices.append(
                Choice(
                    _distinct(text),
                    column2,
                    f"{column2} is bundled into "
                    f"{column1} (NCCI, modifier indicator 1): the modifier "
                    "says the service was distinct (another site, lesion or "
                    "session), which the note must show.",
                )
            )
    if procedures and _GLOBAL.search(story):
        for modifier, pattern, why in _GLOBAL_RULES:
            if pattern.search(text):
                choices.append(Choice(modifier, procedures[-1], why))
                break
    if procedures:
        side = _side(text)
        if side:
            choices.append(Choice(side, procedures[-1], "the side the procedure was done on."))
    if procedures and _SCREENING.search(text) and _TURNED.search(text):
        modifier = "PT" if _MEDICARE.search(story) else "33"
        choices.append(
            Choice(
                modifier,
                procedures[0],
                "a screening that became diagnostic "
                "keeps the patient's preventive cost-sharing waiver.",
            )
        )
    for modifier, pattern, why in _WORD_RULES:
        if billing and pattern.search(text):
            choices.append(Choice(modifier, None, why))
    return list({choice.modifier: choice for choice in choices}.values())


def _is_visit(code: str) -> bool:
    return (code.isdigit() and 99202 <= int(code) <= 99499) or code in _WELLNESS


def _is_preventive(code: str) -> bool:
    return (code.isdigit() and 99381 <= int(code) <= 99429) or code in _WELLNESS


def _distinct(text: str) -> str:
    """59, or the X modifier the question's words point to (CMS prefers the X modifier)."""
    for modifier, pattern in _X_MODIFIERS:
        if pattern.search(text):
            return modifier
    return "59"


def _side(text: str) -> str | None:
    sides = {side for side, pattern in _SIDES if pattern.search(text)}
    return sides.pop() if len(sides) == 1 else None


_WELLNESS = frozenset(("G0402", "G0438", "G0439"))  # Medicare's preventive visits
_DECISION = re.compile(r"\bdecision for (?:major )?surgery\b|\bdecided (?:on|to do) surgery", re.I)
_GLOBAL = re.compile(r"\bglobals?\b|\bpost-?op(?:erative)? period\b|\b(?:10|90)[- ]day\b", re.I)
_GLOBAL_RULES = (
    (
        "78",
        re.compile(
            r"\breturn(?:ed|s)? to the (?:or|operating room)\b|\bcomplication\b"
            r"|\b(?:taken |went |came )?back to (?:the )?(?:or|operating room)\b",
            re.I,
        ),
        "an unplanned return to the operating room for a complication of the first surgery.",
    ),
    (
        "58",
        re.compile(r"\bstaged\b|\bplanned\b|\bmore extensive\b", re.I),
        "a staged or planned procedure, or one more extensive than the first, in its global.",
    ),
    (
        "79",
        re.compile(
            r"\bunrelated\b|\bother eye\b|\bsecond eye\b|\bcontralateral\b|\bL eye\b"
            r"|\bR eye\b|\bleft eye\b|\bright eye\b",
            re.I,
        ),
        "a procedure unrelated to the first one, done during its global period; it starts a "
        "global period of its own.",
    ),
)
_SIDES = (
    (
        "LT",
        re.compile(r"\b(?:left|lt)\b|\bL (?:eye|knee|shoulder|hip|ankle|wrist|foot|hand)\b", re.I),
    ),
    (
        "RT",
        re.compile(r"\b(?:right|rt)\b|\bR (?:eye|knee|shoulder|hip|ankle|wrist|foot|hand)\b", re.I),
    ),
    ("50", re.compile(r"\bbilateral\b|\bboth (?:sides|knees|eyes|ears|feet|hands)\b", re.I)),
)
_X_MODIFIERS = (
    ("XE", re.compile(r"\bseparate (?:encounter|session)\b|\blater (?:that|the same) day\b", re.I)),
    ("XP", re.compile(r"\bdifferent (?:provider|practitioner|physician)\b", re.I)),
    (
        "XS",
        re.compile(
            r"\bseparate (?:site|structure|organ|lesion)|\bdifferent (?:site|lesion|"
            r"knee|compartment|area)\b",
            re.I,
        ),
    ),
)
_SCREENING = re.compile(r"\bscreening\b", re.I)
_TURNED = re.compile(
    r"\bpolyps?\b|\bbiops\w+|\bpolypectomy\b|\bsnare\b|\bbecame diagnostic\b", re.I
)
_MEDICARE = re.compile(r"\bmedicare\b", re.I)
_WORD_RULES = (
    (
        "26",
        re.compile(
            r"\binterpretation only\b|\bread only\b|\bprofessional component\b"
            r"|\b(?:reads?|reading|interprets?|interpreting)\b (?:the |our |all )?(?:\w+ )?"
            r"(?:cxrs?|x-?rays?|films?|ekgs?|ecgs?|tracings?|studies|scans?|cts?|mris?|echos?)\b"
            r"|\b(?:hospital|facility) owns the equipment\b",
            re.I,
        ),
        "only the interpretation and report were done by this provider.",
    ),
    (
        "TC",
        re.compile(r"\btechnical component\b|\bequipment only\b", re.I),
        "only the technical part (equipment and staff) is billed.",
    ),
    (
        "76",
        re.compile(r"\brepeat(?:ed)? by the same\b|\b(?:bills?|billed|did|read) \w+ twice\b", re.I),
        "the same provider repeated the procedure the same day.",
    ),
    (
        "77",
        re.compile(r"\brepeat(?:ed)? by (?:a |another )?different\b", re.I),
        "another provider repeated the procedure the same day.",
    ),
    (
        "GA",
        re.compile(r"\babn\b", re.I),
        "a signed ABN is on file for a service Medicare is expected to deny.",
    ),
)
