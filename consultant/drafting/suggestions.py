"""Which codes a draft suggests: the phrases a code search reads, each phrase's hits, and
those hits judged against each other and against the whole message.

Phrases are read question by question where a question asks for a code: its own words,
else the paragraph that tells the case (the provider's quoted words first). A phrase that
only points back ("the stiffness", "the SSI", "the fracture and the dementia") is
searched as the fuller phrases it points to, matched as the search reads words ("fx" is a
fracture); one that tells two things is searched in pieces. Each question's leads (each
phrase's best hit) are what its answer names. Hits are kept when they score well and near the
phrase's best, and dropped when they tie across categories (the phrase says too little),
when the message rules them out (patient_context), when they add what the phrase did not
say or leave open what it said, and when they are abnormal findings beside the diagnosis
that explains them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from consultant.codes.external_cause import names_injury
from consultant.codes.query_cues import drug_column
from consultant.codes.search import MIN_SCORE, CodeSearch, SearchHit
from consultant.codes.search_index import stem, stems
from consultant.codes.specifics import leaves_unspecified, says_less
from consultant.codes.store import CodeInfo
from consultant.codes.systems import HCPCS, ICD10CM, ICD10PCS
from consultant.drafting.answers import code_questions, question_kind, questions
from consultant.drafting.cases import (
    asked_of_each,
    case_phrase,
    case_spans,
    encounter_words,
    named_case,
)
from consultant.drafting.extract import (
    Extraction,
    clinical_phrases,
    item_of,
    paragraph_of,
    phrase_parts,
)
from consultant.drafting.patient_context import PatientContext, rules_out

_NONE: Mapping[str, Sequence[str]] = MappingProxyType({})  # no listings


def search_phrases(
    search: CodeSearch,
    question: str,
    extraction: Extraction,
    blanks: list[tuple[int, int]],
    said: Sequence[str],
) -> tuple[dict[tuple[int, int], list[str]], set[str]]:
    """The clinical phrases a code search should read, by the span of the question they
    answer: those of each question asking for a code, a short one replaced by the fuller
    phrases of SAID it points back at ("the SSI" -> "superficial incisional surgical site
    infection R ankle with surrounding cellulitis"), or, when such a question names no
    condition itself ("What codes do I use?"), those of its paragraph; a 7th-character
    question over listed cases reads each case (cases.py). Questions about quoted codes add
    nothing: their words ("bilateral", "same day") would only find codes nobody asked for.
    Second, the phrases that are a case's whole telling: no other phrase stands in for
    them."""
    wanted = code_questions(question, extraction.codes, [m.start for m in extraction.modifiers])
    asked = {}
    cased: set[str] = set()
    cases = case_spans(question)

    def within(span: tuple[int, int]) -> list[str]:
        return clinical_phrases(extraction, [*blanks, *_outside([span], len(question))])

    for start, end in wanted:
        own = within((start, end))
        sentence = question[start:end]
        kind = question_kind(sentence, any(start <= m.start < end for m in extraction.codes))
        each = asked_of_each(sentence, start, cases)
        seventh = cases and (not own or each) and kind == "seventh_character"
        if seventh or each:
            # "What's the full code with the 7th character for each?", "What HCPCS for
            # each drug?": case by case, each read in its own words
            if seventh:
                found = (case_phrase(search, question, c, extraction.codes, within) for c in cases)
            else:
                # the case's whole telling, one search ("sacrum/coccyx: stage 4")
                found = (" ".join(within(case)) for case in cases)
            if told := [phrase for phrase in found if phrase]:
                asked[start, end] = told
                cased.update(told if seventh else ())
                continue
        if kind == "seventh_character" and (
            told := _case_before(search, question, extraction, blanks, start, end)
        ):
            asked[start, end] = [told]
            cased.add(told)
            continue
        opening = _opening(question, start)
        if (case := named_case(question, opening, end, cases)) is not None:
            # "If not, what do we use for Resident B and what's the 7th character?"
            if kind == "seventh_character" and (
                told := case_phrase(search, question, case, extraction.codes, within)
            ):
                asked[start, end] = [told]
                cased.add(told)
            else:
                asked[start, end] = [p for p in _surely_told(search, within(case)) if " " in p]
            continue
        meant = [fuller for phrase in own for fuller in _meant(search, phrase, said)]
        if all(says_little(phrase) for phrase in meant) and (
            _WHOLE_CASE.search(sentence) or kind in _OF_THE_CASE
        ):
            # "the codes for this - injury plus the external cause": the case told before
            meant = _before(question, extraction, blanks, opening, start) or _surely_told(
                search, *_narrative(question, extraction, blanks, start, end)
            )
        asked[start, end] = list(dict.fromkeys(meant))
    if not any(asked.values()):
        for start, end in wanted:
            asked[start, end] = _narrative(question, extraction, blanks, start, end)[0]
    return asked, cased


def _case_before(
    search: CodeSearch,
    question: str,
    extraction: Extraction,
    blanks: list[tuple[int, int]],
    start: int,
    end: int,
) -> str | None:
    """The one case told before a 7th-character question at START:END ("... 8 weeks after
    injury, xray shows nonunion. Which 7th character?"): its injury, with the encounter's
    words it or the question says ("... on the initial encounter?"); None when it tells no
    encounter or no injury."""
    first = _told(question, extraction, blanks, start, end)[0]

    def before(span: tuple[int, int]) -> list[str]:
        told = (span[0], min(span[1], start))
        return clinical_phrases(extraction, [*blanks, *_outside([told], len(question))])

    found = case_phrase(search, question, (first, end), extraction.codes, before)
    item = item_of(question, start, end)
    if found is None and first > 0 and item is not None:
        # "- He comes back 9/14 for recheck. Same code w/ what 7th character?": the list
        # item tells the encounter, the case told before the list the injury
        told = encounter_words(question[item[0] : end])
        quoted = [m.span() for m in _QUOTED.finditer(question, 0, item[0])]
        phrases = clinical_phrases(
            extraction, [*blanks, *_outside(quoted or [(0, item[0])], len(question))]
        )
        found = told and case_phrase(
            search, question, (0, end), extraction.codes, lambda _: phrases, encounter=told
        )
    return found or None


def _meant(search: CodeSearch, phrase: str, said: Sequence[str]) -> list[str]:
    """What a question's PHRASE speaks of: the fuller phrases of SAID a short one points
    back at, each of "the fracture and the dementia" alone; else PHRASE itself, as when it
    finds a specific code on its own ("the Kenalog")."""
    if _DRUG_POINTER.fullmatch(phrase):
        # "the drug code" beside "angioedema due to ACE inhibitor": how the drug was
        # involved, which the phrases naming a drug and its column tell
        involved = [o for o in said if drug_column(o) is not None and search.names_drug(o)]
        if involved:
            return involved
    parts = [part for part in _AND.split(phrase) if part.strip()]
    if any(len(part.split()) > _POINTING for part in parts) or _specific(search, phrase):
        return [phrase]
    meant = [_antecedents(search, part, said) for part in parts]
    if len(parts) > 1 and not all(meant):
        return [phrase]
    return [fuller for found in meant for fuller in found] or [phrase]


def _specific(search: CodeSearch, phrase: str) -> bool:
    """Whether PHRASE finds a good, specific code itself: then it points at nothing."""
    hits = search.search(phrase, limit=1)
    if hits and _DRUG_INVOLVED.match(hits[0].code) and drug_column(phrase) is None:
        return False  # "the Eliquis": how the drug was involved, the message tells elsewhere
    return bool(hits) and hits[0].score >= SUGGESTION_FLOOR and not _open(hits[0].title)


def _narrative(
    question: str, extraction: Extraction, blanks: list[tuple[int, int]], start: int, end: int
) -> tuple[list[str], bool]:
    """The phrases of the case a question asks about without naming it: its paragraph, and
    the ones before it when it tells nothing itself ("1. L humerus shaft fx ... 2. ...
    What's the full code for each?"), and whether they are the provider's words a coder
    quotes: those are what to code ("migraine without aura, not intractable"); the rest
    tells the story (drugs, the visit)."""
    paragraph = _told(question, extraction, blanks, start, end)
    quoted = [m.span() for m in _QUOTED.finditer(question, *paragraph)]
    if quoted and (
        phrases := clinical_phrases(extraction, [*blanks, *_outside(quoted, len(question))])
    ):
        return phrases, True
    return clinical_phrases(extraction, [*blanks, *_outside([paragraph], len(question))]), False


def _told(
    question: str, extraction: Extraction, blanks: list[tuple[int, int]], start: int, end: int
) -> tuple[int, int]:
    # a question in a list ("- Codes for the 8/31 visit?") reads its own item, not the
    # next items' tellings, which are other questions' cases
    first, last = item_of(question, start, end) or paragraph_of(question, start, end)
    asked = [(a, b) for a, b in questions(question) if first <= a < last]
    told = clinical_phrases(
        extraction, [*blanks, *asked, *_outside([(first, last)], len(question))]
    )
    # "she's done with treatment" tells no case: the paragraphs before do
    return (first, last) if any(not says_little(p) for p in told) else (0, last)


_QUOTED = re.compile(r'"[^"\n]{3,300}"|“[^”\n]{3,300}”')


def _outside(spans: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    gaps, at = [], 0
    for start, end in sorted(spans):
        gaps.append((at, max(at, start)))
        at = max(at, end)
    return [*gaps, (at, length)]


def suggest(
    search: CodeSearch,
    phrases: list[str],
    mentioned: list[CodeInfo],
    limit: int,
    system: str | None = None,
    *,
    said: Sequence[str] = (),
    patient: PatientContext | None = None,
    told: Collection[str] = (),
    listed: Mapping[str, Sequence[str]] = _NONE,
) -> dict[str, list[SearchHit]]:
    """By phrase, the codes a "what is the code" answer names: its best hit (one per piece
    of a phrase telling two things) and what goes beside it, minus codes already named,
    within SYSTEM when the question asks for one ("dx code", "J code"), and judged against
    what the whole message says of the PATIENT.

    A phrase whose best hit is only an "unspecified" or "other" code often points back at
    something the message said in full ("the stiffness" -> "L shoulder stiffness as a
    result of the fracture"): that phrase of SAID is searched instead, unless the phrase is
    one of TOLD, a case's whole telling. A long phrase that finds nothing good is searched
    in pieces: around "and" and "with", and its LISTED parts."""
    if limit <= 0:
        return {}
    named = {(info.system, info.code) for info in mentioned}
    cases = frozenset(told)  # built from a case's injury and its encounter's words
    best: dict[tuple[str, str], SearchHit] = {}
    leads: dict[str, list[SearchHit]] = {}
    queue = [(phrase, phrase, True) for phrase in phrases]
    while queue:
        phrase, origin, whole = queue.pop(0)
        words = phrase.split()
        if len(words) == 1 and not _searchable_word(search, words[0]):
            continue  # "special", "screening", "Dana": one such word is no clinical phrase
        if whole and (pieces := _sepsis_and_its_source(search, phrase)):
            queue[:0] = [(piece, origin, False) for piece in pieces]
            told = {*told, *pieces}  # read as told: "sepsis" points back at nothing
            continue
        hits = _sided(search, phrase, system, limit, patient)
        if phrase not in told and (
            not hits or _VAGUE_TITLE.search(hits[0].title) or len(words) <= _SHORT
        ):
            # "the ulcer" is the "diabetic ulcer L heel" said before
            hits = _fuller(search, phrase, hits, said, system, limit, patient)
        floor = _CASE_FLOOR if phrase in cases else SUGGESTION_FLOOR
        if whole and len(words) > _LONG and (not hits or hits[0].score < floor):
            # "fell off a ladder at home and has a closed fx of the R distal radius" tells
            # two things: each is searched alone
            pieces = [piece for piece in _PIECES.split(phrase) if piece.strip()]
            # "Chronic systolic heart failure, HFrEF EF 30%, stable on Entresto": each
            # listed part that surely names a code in words enough to tell it
            pieces += [part for part in listed.get(phrase, ()) if _tells_alone(search, part)]
            queue[:0] = [(piece, origin, False) for piece in pieces]
            continue
        if not hits or _ambiguous(hits):
            continue
        floor = max(floor, SUGGESTION_RELATIVE * hits[0].score)
        # a Table of Drugs code needs its column: how the drug was involved (I.C.19.e)
        column = drug_column(phrase) is not None
        kept = _pruned(
            [
                h
                for h in hits
                if h.score >= floor
                and ((h.system, h.code) not in named or phrase in told)
                and (h.score >= _NAMED_PLACE or not _BESIDE_INJURY.match(h.code))
                and (column or not _DRUG_INVOLVED.match(h.code))
                # an injury of no named region for a phrase naming no injury ("purple
                # intact skin") is a stray reading
                and not (_NOWHERE.match(h.code) and not names_injury(phrase))
            ],
            phrase,
            patient,
        )
        if kept:
            # its best hit, and what goes beside it ("DM2 on metformin": Z79.84 too)
            beside = [hit for hit in kept[1:] if hit.alongside and not kept[0].alongside]
            leads.setdefault(origin, []).extend([kept[0], *beside])
        for hit in kept:
            key = (hit.system, hit.code)
            if key not in best or hit.score > best[key].score:
                best[key] = hit
    if any(_DIAGNOSIS.match(code) for system_, code in best if system_ == ICD10CM):
        # An abnormal finding the diagnosis explains is not coded beside it (Official
        # Guidelines III.B, IV.D): "urine culture positive for E. coli" with the UTI.
        best, leads = _without(_FINDING.match, best, leads)
    if any(_HYPERTENSIVE_DISEASE.match(code) for _, code in (*best, *named)):
        # I.C.9.a: hypertension with heart or kidney disease is their combination code
        # (I11-I13), never I10 beside it
        best, leads = _without(_ESSENTIAL_HYPERTENSION.match, best, leads)
    if any(_INJURY.match(code) for _, code in best):
        # A fall that hurt the patient is the injury's external cause (W00-W19), not the
        # sign R29.6 "repeated falls" (whose tabular includes "falling")
        best, leads = _without(_FALLING.match, best, leads)
    guessed = {
        code
        for (_, code), hit in best.items()
        if _CAUSE_OF_INJURY.match(code) and hit.score < _NAMED_PLACE
    }
    if (
        guessed
        and len(guessed) < len(best)
        and not any(_HURT.match(code) for _, code in (*best, *named))
    ):
        # I.C.20: an accident, assault or place code tells how an injury happened; with
        # no injury found, one the message does not surely name is a stray reading
        # ("sharp debridement" of a pressure ulcer is no assault with a sharp object).
        best, leads = _without(guessed.__contains__, best, leads)
    if not any(_OBSTETRIC.match(code) for _, code in best):
        # Weeks of gestation are coded beside an obstetric condition or delivery, never
        # alone (Z3A's "code first" note): "20 wks pregnant, wrist sprain" is Z33.1's.
        best, leads = _without(_GESTATION_WEEKS.match, best, leads)
    return _most_specific(best, leads)


def _without(
    dropped: Callable[[str], object],
    best: dict[tuple[str, str], SearchHit],
    leads: dict[str, list[SearchHit]],
) -> tuple[dict[tuple[str, str], SearchHit], dict[str, list[SearchHit]]]:
    """BEST and LEADS without the codes DROPPED is true of (a pattern's match, a set's
    membership)."""
    return (
        {key: hit for key, hit in best.items() if not dropped(key[1])},
        {phrase: [hit for hit in hits if not dropped(hit.code)] for phrase, hits in leads.items()},
    )


def _most_specific(
    best: dict[tuple[str, str], SearchHit], leads: dict[str, list[SearchHit]]
) -> dict[str, list[SearchHit]]:
    """LEADS with a vague code replaced by a specific one of its category that another
    phrase of the message found (among BEST, every phrase's good hits): "hx colon polyps"
    in the subject and "tubular adenomas" in the note are one history (Z86.0101, not
    Z86.0100); "DM2" and "diabetic ulcer L heel" one diabetes (E11.621, not E11.9)."""
    specific: dict[str, SearchHit] = {}
    # another phrase's answer, not a lesser hit of the vague code's own phrase ("neonatal
    # jaundice physiologic" is P59.9, whatever "other specified causes" scored beside it)
    answered = {hit.code for hits in leads.values() for hit in hits}
    for hit in best.values():
        if hit.system == ICD10CM and hit.code in answered and not says_less(hit.title):
            held = specific.get(hit.code[:3])
            if held is None or hit.score > held.score:
                specific[hit.code[:3]] = hit
    instead = {
        hit.code: specific[hit.code[:3]]
        for hit in best.values()
        if hit.system == ICD10CM and says_less(hit.title) and hit.code[:3] in specific
    }
    # "closed fx" beside "R distal radius fx f/u": an injury of no named region (T14) is
    # the one another phrase places
    placed = [hit for hit in best.values() if hit.system == ICD10CM and hit.code[0] == "S"]
    if placed:
        region = max(placed, key=lambda hit: hit.score)
        instead |= {hit.code: region for hit in best.values() if hit.code.startswith("T14.")}
    return {
        phrase: list({h.code: h for h in (instead.get(hit.code, hit) for hit in hits)}.values())
        for phrase, hits in leads.items()
    }


def _fuller(
    search: CodeSearch,
    phrase: str,
    hits: list[SearchHit],
    said: Sequence[str],
    system: str | None,
    limit: int,
    patient: PatientContext | None,
) -> list[SearchHit]:
    """The hits of the phrase of SAID that PHRASE points back at, when one finds a code:
    the best longer phrase holding all its words, else the best other phrase whose code is
    of the vague one's chapter ("the cancer" -> "adenocarcinoma of the RUL")."""
    fuller = _antecedents(search, phrase, said)
    short = len(phrase.split()) <= _SHORT
    if not fuller and hits and short and not _holds(search, phrase, hits[0]):
        # "doc read" -> "Dyslexia and alexia", "came in" -> ...: a few words whose best
        # code's title says none of them, and which point at nothing said, are no phrase
        return []
    words = {w for w in stems(phrase) if len(w) > 3} if fuller or not short else set()
    found = []
    for other in fuller or [other for other in said if other != phrase]:
        other_hits = _fitting(search.search(other, system=system, limit=limit), patient)
        # Still about the same thing: the vague code's chapter (for a short phrase: "the
        # cancer"), or a title holding the phrase's word ("cough" is not answered by the
        # hypertension of its sentence).
        if not other_hits or (not fuller and _VAGUE_TITLE.search(other_hits[0].title)):
            continue  # another phrase stands in for this one only by being specific
        chapter = short and hits and other_hits[0].code[0] == hits[0].code[0]
        if chapter or words & stems(other_hits[0].title):
            found.append(other_hits)
    if not found:
        return hits
    best = max(found, key=lambda hits_: hits_[0].score)
    if best[0].score >= SUGGESTION_FLOOR:
        return best
    if hits and best[0].code[:3] == hits[0].code[:3]:
        # Weak only for its extra words: the fuller code of the same category takes the
        # vague one's place ("M25.612" for "M25.60").
        return [replace(best[0], score=hits[0].score)]
    return hits


def _holds(search: CodeSearch, phrase: str, hit: SearchHit) -> bool:
    """Whether HIT's title says something PHRASE says, as the search reads words; a drug
    named by brand finds its generic ("Neupogen" -> filgrastim), a procedure its root
    operation."""
    if hit.system == ICD10PCS or (hit.system == HCPCS and search.names_drug(phrase)):
        return True
    title = stems(hit.title)
    return any(concept & title for concept in search.concepts(phrase))


def _ambiguous(hits: list[SearchHit]) -> bool:
    """Whether the phrase's best hits tie across categories: "closed fx" finds a fracture
    of every bone alike, and a coder asks which bone rather than guessing. A code that goes
    beside the best ("asthma in pregnancy": J45.909 beside O99.519) ties with none."""
    top = [hit for hit in hits if not hit.alongside][:_TIED]
    return (
        len(top) == _TIED
        and top[-1].score >= _TIE * top[0].score
        and len({hit.code[:3] for hit in top}) == _TIED
    )


def _pruned(kept: list[SearchHit], phrase: str, patient: PatientContext | None) -> list[SearchHit]:
    """KEPT without the siblings a coder would not offer beside the best: one that adds a
    word the phrase did not say ("chronic migraine without aura" beside "migraine without
    aura"), an "other" or "unspecified" code beside a specific one of its category, and one
    that leaves unspecified the side the message states."""
    if not kept:
        return kept
    lead = kept[0]
    asked = stems(phrase)
    lead_words = stems(lead.title)
    side = patient.said if patient is not None and patient.said.side else None
    pruned = [lead]
    for hit in kept[1:]:
        words = stems(hit.title)
        if (lead_words < words or hit.code[:5] == lead.code[:5]) and not (
            words - lead_words
        ) & asked:
            # what it says beyond the lead was not asked: "accidental" beside an adverse
            # effect of the same drug, "chronic" beside "migraine without aura"
            continue
        if hit.code[:3] == lead.code[:3] and _open(hit.title) and not _open(lead.title):
            continue
        if side is not None and leaves_unspecified(side, hit.title):
            continue
        pruned.append(hit)
    return pruned


def _open(title: str) -> bool:
    return bool(_VAGUE_TITLE.search(title) or _RESIDUAL.search(title))


def _surely_told(search: CodeSearch, phrases: list[str], quoted: bool = False) -> list[str]:
    """Of PHRASES, a case's telling, what surely names a code: the provider's words a coder
    QUOTED all, else those whose best hit is sure (its story, "seen at urgent care", is
    not); never a phrase of vague words alone."""
    return [p for p in phrases if not says_little(p) and (quoted or _sure(search, p))]


def _tells_alone(search: CodeSearch, part: str) -> bool:
    """Whether PART of a listing surely names a code in two words or more of its own: "the
    L breast" of "carcinoma of the L breast, upper outer quadrant" does not."""
    return len([w for w in part.split() if len(w) > 3]) >= 2 and _sure(search, part)


def _sure(search: CodeSearch, phrase: str) -> bool:
    hits = search.search(phrase, limit=1)
    return bool(hits) and hits[0].score >= _SURE_OF_CASE


def _before(
    question: str, extraction: Extraction, blanks: list[tuple[int, int]], opening: int, start: int
) -> list[str]:
    """The clinical phrases of the sentence a question was cut from, from its OPENING to the
    question: "At his rehab f/u he still has R hemiparesis - what code then?"."""
    return clinical_phrases(extraction, [*blanks, *_outside([(opening, start)], len(question))])


def _opening(question: str, start: int) -> int:
    """Where the sentence a question at START was cut from begins."""
    return max(question.rfind(mark, 0, start) for mark in "\n.?!") + 1


def says_little(phrase: str) -> bool:
    """Whether PHRASE says too little to search ("injury", "activity status")."""
    return all(stem(word) in _VAGUE_STEMS for word in phrase.lower().split())


def _searchable_word(search: CodeSearch, word: str) -> bool:
    if says_little(word):
        return False
    if word[:1].isupper() and not word.isupper():
        return search.names_drug(word)  # "Kenalog" is asked about; "Dana" signed the mail
    return search.knows(word)


def _sided(
    search: CodeSearch, phrase: str, system: str | None, limit: int, patient: PatientContext | None
) -> list[SearchHit]:
    """PHRASE's fitting hits; where the best leaves unspecified the one side or trimester
    the message states elsewhere ("cut his L palm" ... "hand lac", "G2P1 at 32w" ...
    "hypothyroid in pregnancy"), those of PHRASE on that side or in that trimester."""
    hits = _fitting(search.search(phrase, system=system, limit=limit), patient)
    said = patient.said if patient is not None else None
    if said and hits and leaves_unspecified(said, hits[0].title):
        told = f"{said.side} {phrase}" if said.side else f"{phrase} {said.trimester} trimester"
        sided = _fitting(search.search(told, system=system, limit=limit), patient)
        if (
            sided
            and sided[0].score >= hits[0].score * SUGGESTION_RELATIVE
            and _sibling(sided[0].code, hits[0].code)
        ):
            return sided
    return hits


def _sepsis_and_its_source(search: CodeSearch, phrase: str) -> list[str]:
    """ "sepsis due to pneumonia" as two phrases, sepsis and the localized infection it came
    from, each coded (I.C.1.d.4: the systemic infection first, then the localized one); []
    when the phrase names no such pair, or when what caused it is an organism ("sepsis due
    to strep pneumoniae" is A40.3 whole)."""
    found = _SEPSIS_FROM.search(phrase)
    if found is None:
        return []
    sources = [found["source"]]
    hits = search.search(sources[0], system=ICD10CM, limit=_ORGANISM_DEPTH)
    if not hits or hits[0].score < SUGGESTION_FLOOR:
        # "E coli UTI w/ AKI": the infection, and the organ dysfunction beside it
        sources = [piece for piece in _PIECES.split(sources[0]) if piece.strip()]
        hits = search.search(sources[0], system=ICD10CM, limit=_ORGANISM_DEPTH)
        if len(sources) < 2 or not hits or hits[0].score < SUGGESTION_FLOOR:
            return []
    if any(_ORGANISM.match(h.code) and h.score >= _NAMES_ORGANISM for h in hits):
        return []  # "strep pneumoniae", "MRSA": an organism's sepsis
    # "sepsis d/t E coli UTI": the organism's sepsis (A41.51) and the UTI
    words = found["source"].split()
    grams = (" ".join(words[i : i + n]) for n in (2, 1) for i in range(len(words) - n + 1))
    organism = next((gram for gram in grams if _names_organism(search, gram)), None)
    sepsis = f"sepsis due to {organism}" if organism else "sepsis"
    # severe sepsis, septic shock (R65.2-) code first the underlying infection
    severe = [found["sepsis"]] if _SEVERE.search(found["sepsis"]) else []
    return [sepsis, *severe, *sources]


def _names_organism(search: CodeSearch, words: str) -> bool:
    hits = search.search(words, system=ICD10CM, limit=1)
    return bool(hits) and hits[0].score >= _SURE_OF_CASE and _GERM.match(hits[0].code) is not None


def _sibling(code: str, other: str) -> bool:
    """Whether CODE differs from OTHER in one character, as a side does (S61.412A beside
    S61.419A), not in its site (M19.141 is a hand's, M19.10 no site's)."""
    return len(code) == len(other) and sum(a != b for a, b in zip(code, other, strict=True)) == 1


def _fitting(hits: list[SearchHit], patient: PatientContext | None) -> list[SearchHit]:
    """HITS that cover enough of their phrase to suggest, minus those the PATIENT rules out
    (a weak hit is a lead for a coder's search, not a draft's answer)."""
    covering = [h for h in hits if h.score >= MIN_SCORE]
    if patient is None:
        return covering
    return [h for h in covering if rules_out(patient, h.system, h.code, h.title) is None]


def _antecedents(search: CodeSearch, phrase: str, said: Sequence[str]) -> list[str]:
    """The longer phrases of SAID, or parts of them ("lung cancer" of "cycle 3 of chemo for
    lung cancer"), that hold everything PHRASE speaks of, as the search reads words ("the
    fracture" -> "displaced midcervical fx of R femoral neck"). What no phrase of SAID
    speaks of ("complete", "too") is the asking, not the thing asked about."""
    candidates = dict.fromkeys(
        part for other in said if other != phrase for part in (other, *phrase_parts(other))
    )
    held = {other: frozenset().union(*search.concepts(other)) for other in candidates}
    anywhere = frozenset().union(*held.values())
    needed = [concept for concept in search.concepts(phrase) if concept & anywhere]
    size = len(phrase.split())
    return [
        other
        for other in candidates
        if needed and len(other.split()) > size and all(c & held[other] for c in needed)
    ]


# A title that leaves what the condition is open; "stage 1 through 4, or unspecified CKD"
# names it.
_VAGUE_TITLE = re.compile(
    # "..., unspecified trimester" is vague about the week, not about the condition
    r"(?<!or )\bunspecified\b(?! trimester)|^other\b|\bnot elsewhere classified\b"
    r"|\bnot specified\b",
    re.I,
)
_RESIDUAL = re.compile(r"^other\b|\bother specified\b", re.I)
_SHORT = 2  # words up to which a phrase is read as pointing back at a fuller one
_POINTING = 3  # words up to which a question's phrase may stand for the case told before
_LONG = 6  # words from which a phrase that finds nothing good is searched in pieces
_DRUG_POINTER = re.compile(r"(?:the\s+)?(?:drug|med|meds|medication|medicine)s?", re.I)
_AND = re.compile(r"\s+and\s+", re.I)
_SURE_OF_CASE = 0.8  # a phrase of the case a question names nothing of is read from
# asked of the case told when naming nothing
_OF_THE_CASE = ("code_for", "sequencing", "seventh_character")
# A question about the whole case ("codes for this?", "how do I code this visit?")
_WHOLE_CASE = re.compile(
    r"\b(?:this|these|it)\b(?=\s*(?:[-?.,:;!]|$|\s+(?:visit|encounter|case|patient|pt|one"
    r"|scenario|admission|stay|claim|chart)s?\b))",
    re.I,
)
_PIECES = re.compile(
    r"\s+and\s+|\s+w/\s+|\s+with\s+"
    r"|\s+(?:shows?|showed|shown|reveal(?:s|ed)?|confirm(?:s|ed)?|demonstrat\w+|found)\s+",
    re.I,
)
# Place, activity and status of an external cause: coded beside an injury (I.C.20.b, c,
# k), not for a phrase alone ("urgent care" is where the visit was, not the fall)...
_BESIDE_INJURY = re.compile(r"^Y9[239]")
_NAMED_PLACE = 0.9  # ...unless the phrase names one itself ("a place code for the interstate")
_TIED, _TIE = 3, 0.97  # three best hits of three categories within 3%: no answer
# Sepsis and the infection it came from: "sepsis due to UTI", "septic from cellulitis"
_SEPSIS_FROM = re.compile(
    r"(?P<sepsis>\b(?:severe\s+)?(?:sepsis|septic(?:emia)?)(?:\s+shock)?)\s+"
    r"(?:due\s+to|d/t|from|secondary\s+to|2/2|caused\s+by)\s+(?P<source>.+)",
    re.I,
)
# An organism's code (B95-B97) or its sepsis (A40, A41.0-A41.8): the cause, not a site
_ORGANISM = re.compile(r"^(?:B9[5-7]|A40|A41\.[0-8])")
_ORGANISM_DEPTH, _NAMES_ORGANISM = 5, 0.75  # among a source's best hits, this good
_SEVERE = re.compile(r"\bsevere\b|\bshock\b", re.I)
_GERM = re.compile(r"^(?:B9[5-7]|A49)")  # what an organism's own name finds
_DRUG_INVOLVED = re.compile(r"T(?:3[6-9]|4\d|50)\.")  # the Table of Drugs' T-codes
_DIAGNOSIS = re.compile(r"^[A-N]|^O|^P|^Q")  # a disease, not a sign, injury or Z code
_FINDING = re.compile(r"^R(?:[7-8]\d|9[0-4])")  # abnormal findings, R70-R94
# what Z3A's "code first" note names: O09-O60, O80-O82, O94-O9A
_OBSTETRIC = re.compile(r"^O(?:09|[1-5]\d|60|8[0-2]|9[4-9A])")
_GESTATION_WEEKS = re.compile(r"^Z3A")
_INJURY = re.compile(r"^S\d")
_HURT = re.compile(r"^[ST]\d")  # injuries, burns, poisonings, effects of external causes
_NOWHERE = re.compile(r"^T14\.")  # an injury of unspecified body region
# How an injury happened: accidents, assaults, self-harm (V00-X99), place, activity and
# status (Y92, Y93, Y99)
_CAUSE_OF_INJURY = re.compile(r"^(?:[VWX]\d|Y9[239])")
_HYPERTENSIVE_DISEASE = re.compile(r"^I1[1-3]")
_ESSENTIAL_HYPERTENSION = re.compile(r"^I10$")
_FALLING = re.compile(r"^R29\.6")


# Words of the index that say too little on their own to be what a question is about.
_VAGUE = frozenset(
    re.findall(
        r"\S+",
        """screening sequela sequelae injury injuries aftercare bite bites confirm confirmed
        mixed cover covered below above specifically unilateral bilateral history status exam
        examination disease disorder condition syndrome infection pain problem symptom
        symptoms complication complications surgery therapy treatment care followup chronic
        acute encounter administration admin complete full wound injection drug drugs
        medication medications meds check activity rest read ones visit overall two three
        four five both""",
    )
)

_VAGUE_STEMS = frozenset(stem(word) for word in _VAGUE)  # "reads" as "read"

# A phrase's hit is suggested when it scores at least this, and this share of the
# phrase's best: weak matches of words that are no clinical phrase ("Jane Doe, CCS" ->
# R06.00 at 0.33) and the siblings behind a clear best hit (E10.9 behind E11.9 for
# "diabetes") are dropped. Measured on the 160 development emails (bench/search_eval.py):
# at 0.5, 40 drafts with an irrelevant suggestion and 153 of 398 facts; at 0.6, 35 and
# 147; at 0.65, 32 and 144; at 0.75, 27 and 135. 0.6 keeps "UTI due to E. coli" (N39.0
# scores 0.61: the organism is another code's). The right code of a development phrasing
# clears 0.6 (and 0.9 of its best) for 87% of them; 0.5 for 91%.
SUGGESTION_FLOOR = 0.6
SUGGESTION_RELATIVE = 0.9
# A case's telling (cases.case_phrase) was built to find its injury: "Inpatient admit for
# open fracture of R tibial shaft, initial encounter" finds S82.201B at 0.55 for its words
# of the visit, and is not split in pieces that would lose the encounter.
_CASE_FLOOR = 0.45
