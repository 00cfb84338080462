"""The cases a message lists, and the encounter each one tells."""

from __future__ import annotations

import pytest

from consultant.drafting.cases import case_spans, encounter_words, named_case


def test_listed_cases_are_found_each_to_its_end() -> None:
    text = (
        "Can you check these?\n\nPt 1 - Colles fx R wrist, cast removal.\n\n"
        "Pt 2 - L tibial shaft fx, delayed union.\nThanks\n\nCase B: hip fx"
    )
    spans = case_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Pt 1 - Colles fx R wrist, cast removal.",
        "Pt 2 - L tibial shaft fx, delayed union.\nThanks",
        "Case B: hip fx",
    ]
    assert case_spans("1. only one case here") == []


def test_a_list_of_questions_is_no_list_of_cases() -> None:
    text = (
        "Skin assessment:\n\n - sacrum/coccyx: stage 4\n - R heel: unstageable\n"
        " - L hip: stage 2\n\n1. What codes do I use for each of these?\n\n"
        "2. The sacral one is granulating. Can we call it a stage 3 next month?"
    )
    assert [text[a:b].strip() for a, b in case_spans(text)] == [
        "- sacrum/coccyx: stage 4",
        "- R heel: unstageable",
        "- L hip: stage 2",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("healed in poor position", "subsequent encounter malunion"),
        ('x-ray "delayed union" at 14 wks', "subsequent encounter delayed healing"),
        ("CT confirms non-union", "subsequent encounter nonunion"),
        ("cast removal, healing as expected", "subsequent encounter routine healing"),
        ("late effect of an old fracture", "sequela"),
        ("now at neuro f/u with post-concussion syndrome", "sequela"),
        ("referred to PT for L shoulder stiffness as a result of the fracture", "sequela"),
        ("now back for a wound check", "subsequent encounter routine healing"),
        ("in SNF for rehab after ORIF", "subsequent encounter routine healing"),
        # a malunion is not routine healing, though it is a follow-up
        ("f/u, malunion", "subsequent encounter malunion"),
        ("L tibial shaft fx", ""),
    ],
)
def test_a_case_tells_its_encounter(text: str, words: str) -> None:
    assert encounter_words(text) == words


def test_a_question_names_a_case_by_its_label() -> None:
    text = (
        "Resident A - s/p R total hip arthroplasty for OA.\n\n"
        "Resident B - s/p L hip hemiarthroplasty for a femoral neck fx.\n\n"
        "Is that right? If not, what do we use for Resident B?"
    )
    cases = case_spans(text)
    asked = text.index("If not")
    assert named_case(text, asked, len(text), cases) == cases[1]
    assert named_case(text, asked, text.index("for Resident"), cases) is None  # not named yet
    other = "Pt 2 - a fx\n\nPt 3 - a fx\n\nAnd Patient 2?"
    cases = case_spans(other)
    # "Pt" and "Patient" are one label
    assert named_case(other, other.index("And"), len(other), cases) == cases[0]
