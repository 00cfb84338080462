"""The cases a message lists ("Pt 1 - ...", "1. ...", "Case B: ...") and what each one says
of its encounter, so a question asked over all of them ("What's the full code with the 7th
character for each?") is answered case by case.

A 7th character is chosen from the case's own words (ICD-10-CM I.C.19.a and the fracture
extensions): "healed in poor position" is malunion (P), "CT confirms nonunion" is K,
"delayed union" is G, "cast removal, healing as expected" is routine healing (D), a late
effect is the sequela (S). Each case is read as one search phrase: its injury, as it is
told or as the code it names is titled, followed by those words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from consultant.codes.search import CodeSearch
from consultant.codes.systems import ICD10CM
from consultant.drafting.extract import CodeMention

# A case starts a line: "Pt 1 -", "Patient #2:", "Case B:", "1.", "#3)", "- ".
_CASE = re.compile(
    r"^[ \t]*(?:(?:pt|patient|case|resident)\s*#?\s*(?:\d{1,2}|[a-e])\b\s*[-:.)]?|#?\d{1,2}[.):]"
    r"|[-*\u2022])[ \t]+",
    re.I | re.M,
)
# A case named by its label: "for Resident B", "Pt 2's", "case #3"
_LABEL = re.compile(r"\b(pt|patient|case|resident)\s*#?\s*(\d{1,2}|[a-e])\b", re.I)
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# What a case says of its encounter, in the words the 7th characters' titles use; the
# first that applies decides (a sequela is not healing, a malunion is not routine).
_ENCOUNTERS = (
    (
        # post-concussion syndrome (F07.81) is a sequela of the concussion it follows, as is
        # "stiffness as a result of the fracture" (I.C.19.a: a condition that results)
        re.compile(
            r"\bsequela\w*|\blate effects?\b|\bresidual\b|\bpost-?\s?concussi\w+\s+syndrome"
            r"|\b(?:as\s+a\s+result|a\s+result)\s+of\s+(?:the|an?|his|her|that)?\s*(?:old\s+)?"
            r"(?:fx|fracture|injury|burn|concussion)\b",
            re.I,
        ),
        "sequela",
    ),
    (
        re.compile(
            r"\bmal-?union\b|\bmal-?aligned\b|\bhealed\s+(?:in|with)\s+(?:a\s+)?(?:poor|bad"
            r"|mal\w*)\s+(?:position|alignment)\b",
            re.I,
        ),
        "subsequent encounter malunion",
    ),
    (
        re.compile(
            r"\bnon-?union\b|\bnot\s+(?:healed|united)\b|\bfailed\s+to\s+(?:heal|unite)\b",
            re.I,
        ),
        "subsequent encounter nonunion",
    ),
    (
        re.compile(r"\bdelayed\s+(?:healing|union)\b|\bslow(?:ly)?\s+(?:to\s+)?heal", re.I),
        "subsequent encounter delayed healing",
    ),
    (
        re.compile(
            r"\broutine\s+healing\b|\bhealing\s+(?:as\s+expected|well|normally|appropriately)"
            r"|\bf/u\b|\bfollow[\s-]?up\b|\brecheck\b|\bsubsequent\b"
            # the aftercare I.C.19.a gives D: checks, changes and removals, rehab after repair
            r"|\b(?:cast|wound|dressing|splint|suture|staple)s?\s+(?:check|change|removal)\b"
            r"|\bremoval\s+of\s+(?:the\s+)?(?:sutures|staples)\b|\brehab\b|\brehabilitation\b"
            r"|\bpost-?op\b",
            re.I,
        ),
        "subsequent encounter routine healing",
    ),
    (
        re.compile(r"\binitial\s+(?:visit|encounter|treatment)\b|\bin\s+the\s+(?:ed|er)\b", re.I),
        "initial encounter",
    ),
)
# Where a title's encounter begins: "Colles' fracture of right radius, subsequent ..."
_TITLE_ENCOUNTER = re.compile(r",\s*(?:initial|subsequent) encounter\b.*$|,\s*sequela$", re.I)
_INJURY = re.compile(r"^[ST]\d")
# A question asked of every case ("What codes for each?", "for each drug", "all of these")
_EACH = re.compile(r"\b(?:each|every)\b|\ball\s+(?:of\s+)?(?:these|them|three|four)\b", re.I)
_SEGMENT_END = re.compile(r"[,.;:](?=\s)")
_SEGMENTS = 4  # the opening segments of a case its injury may be told in
_SURE = 0.8  # a longer telling found this surely still tells the injury


def case_spans(text: str) -> list[tuple[int, int]]:
    """The spans of the cases TEXT lists, each to the next case or its paragraph's end;
    [] when it lists fewer than two. A list whose items ask ("1. What codes do I use for
    each of these?") lists questions, not cases; a list of another kind ("- sacrum: stage
    4") may be the cases they ask about."""
    found = list(_CASE.finditer(text))
    lists: dict[str, list[tuple[int, int]]] = {}
    asking: set[str] = set()
    for i, marker in enumerate(found):
        start = marker.start()
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        if (blank := _PARAGRAPH_END.search(text, start, end)) is not None:
            end = blank.start()
        kind = _kind(marker[0])
        lists.setdefault(kind, []).append((start, end))
        # a case tells, and may ask after it has told
        if _SENTENCE_END.split(text[marker.end() : end].strip(), maxsplit=1)[0].endswith("?"):
            asking.add(kind)
    spans = sorted(span for kind, spans in lists.items() if kind not in asking for span in spans)
    return spans if len(spans) >= 2 else []


def _kind(marker: str) -> str:
    """The kind of list a case marker belongs to: numbered, named ("Pt 1 -") or bulleted."""
    marker = marker.strip().lstrip("#")
    if marker[0].isdigit():
        return "numbered"
    return "named" if marker[0].isalpha() else "bulleted"


def asked_of_each(question: str, start: int, cases: Sequence[tuple[int, int]]) -> bool:
    """Whether QUESTION, at START of the text with CASES, asks about every case: it says
    "each" and is not itself inside one ("Pt 1 - ... codes for each eye?")."""
    return (
        bool(cases) and bool(_EACH.search(question)) and not any(a <= start < b for a, b in cases)
    )


def named_case(
    text: str, start: int, end: int, cases: Sequence[tuple[int, int]]
) -> tuple[int, int] | None:
    """The case among CASES that TEXT[START:END], a question outside them, names by its
    label ("If not, what do we use for Resident B?"), if any."""
    if any(a <= start < b for a, b in cases):
        return None
    named = {_label(m) for m in _LABEL.finditer(text, start, end)}
    for case in cases:
        marker = _LABEL.match(text[slice(*case)].lstrip())
        if marker is not None and _label(marker) in named:
            return case
    return None


def _label(match: re.Match[str]) -> tuple[str, str]:
    word = match[1].lower()
    return ("patient" if word == "pt" else word, match[2].lower())


def encounter_words(text: str) -> str:
    """The words of the 7th character TEXT (one case) describes; "" when it says none."""
    return next((words for pattern, words in _ENCOUNTERS if pattern.search(text)), "")


def case_phrase(
    search: CodeSearch,
    text: str,
    span: tuple[int, int],
    mentions: Sequence[CodeMention],
    phrases_in: Callable[[tuple[int, int]], list[str]],
    encounter: str | None = None,
) -> str | None:
    """The search phrase for the case at SPAN of TEXT: the injury code it names, read as its
    title without the encounter, else the injury its opening words tell, followed by the
    case's encounter words (or ENCOUNTER's, where another part of the message tells it).
    None when the case tells no encounter (a search of its phrases finds its code then) or
    no injury. PHRASES_IN gives the clinical phrases of a span."""
    words = encounter or encounter_words(text[slice(*span)])
    if not words:
        return None
    named = [
        m.info
        for m in mentions
        if span[0] <= m.start < span[1] and m.info.system == ICD10CM and _INJURY.match(m.info.code)
    ]
    if named and named[0].title:
        return f"{_TITLE_ENCOUNTER.sub('', named[0].title)} {words}"
    # "L humerus shaft fx, displaced transverse, closed, treated in a functional brace":
    # the injury is told up to some comma; what follows tells its care, no code's words.
    # Each further segment that still finds the injury surely says more of it ("displaced
    # transverse", "open, Gustilo type II"); the first that does not ends it.
    ends = [m.start() for m in _SEGMENT_END.finditer(text, *span)] + [span[1]]
    chosen = None
    for end in ends[:_SEGMENTS]:
        told = next(
            (
                f"{phrase} {words}"
                for phrase in phrases_in((span[0], end))
                if _finds_injury(search, f"{phrase} {words}", _SURE if chosen else 0.0)
            ),
            None,
        )
        if told is None and chosen:
            break
        chosen = told or chosen
    return chosen


def _finds_injury(search: CodeSearch, phrase: str, floor: float) -> bool:
    hits = search.search(phrase, limit=1)
    return bool(
        hits
        and hits[0].score >= floor
        and _INJURY.match(hits[0].code)
        and _TITLE_ENCOUNTER.search(hits[0].title)
    )
