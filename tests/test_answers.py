"""The direct answer to each question a message asks, on the real code sets."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.drafting.analyze import analyze
from consultant.drafting.answers import KINDS, kind_of, questions
from consultant.templating import template_environment


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore.open(code_db)


@pytest.fixture(scope="module")
def templates() -> jinja2.Environment:
    return template_environment(None)


def ask(store: CodeStore, templates: jinja2.Environment, body: str) -> dict:
    raw = f"Subject: coding question\n\n{body}\n".encode()
    return analyze(raw, store, CodeSearch(store), templates=templates).to_dict()


def answer_of(store: CodeStore, templates: jinja2.Environment, body: str, kind: str) -> dict:
    """The first answer of KIND to BODY."""
    return next(a for a in ask(store, templates, body)["answers"] if a["kind"] == kind)


def test_each_question_is_found_and_a_dotted_code_ends_no_sentence() -> None:
    text = "Hi, quick one. Is N18.3 billable? Also, can 29881 and 29877 go together?\nThanks"
    assert [text[a:b].strip() for a, b in questions(text)] == [
        "Is N18.3 billable?",
        "Also, can 29881 and 29877 go together?",
    ]
    plea = "Please advise on E11.9 for this visit"
    assert questions(plea) == [(0, len(plea))]
    statement = "We billed E11.9 last week. The payer denied it."
    assert questions(statement) == [(0, len(statement))]  # no question: the whole text


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Is E11.6 billable?", "validity"),
        ("Is W19 still valid in 2026?", "validity"),
        ("Can 29881 and 29877 go on one claim?", "billed_together"),
        ("Do I need modifier 25 on 99214 with 20610?", "modifier"),
        ("What's the code for a stage 3 sacral pressure ulcer?", "code_for"),
        ("dx code for a screening colonoscopy?", "code_for"),
        ("Which goes first, E11.22 or N18.31?", "sequencing"),
        ("What 7th character for a healing fracture follow-up?", "seventh_character"),
        ("Is E87.1 a CC or MCC?", "cc_mcc_hcc"),
        ("Does E11.9 map to an HCC in V28?", "cc_mcc_hcc"),
        ("What is ICD-9 250.00 in ICD-10?", "crosswalk"),
        ("Will Medicare cover 97110 for this patient?", "coverage"),
        # how coders ask for codes without saying "code for"
        ("What are the codes?", "code_for"),
        ("What's the appropriate ICD-10-CM code here?", "code_for"),
        ("How should we code the visit?", "code_for"),
        ("Should the dementia be coded too?", "code_for"),
        ("Full list of codes - am I missing anything?", "code_for"),
        ("In what order do these go?", "sequencing"),
        ("What HCPCS code is that?", "code_for"),
        ("And does the external cause code ever go first?", "sequencing"),
        ("Under V28, which of them map to a payment HCC?", "cc_mcc_hcc"),
        ("Can we bill a 99213 too since she talked about soreness?", "billed_together"),
        ("Can we code MI since it was on the order?", "code_for"),  # a physician's order
        # coders' shorthand
        ("PCS for the c-section?", "code_for"),
        ("- Dx for screening PSA?", "code_for"),
        ("What HCPCS and how many units for each drug?", "code_for"),
        ("MVC passenger - V code?", "code_for"),
        ("Codes?", "code_for"),
        ("What PCS code(s) for the colonoscopy - one or two?", "code_for"),
        ("Do I need a separate osteoporosis code too?", "code_for"),
        ("Do I need a place of occurrence for the interstate?", "code_for"),
        ("1) Which AWV code would this be, the initial or subsequent?", "code_for"),
        # what goes first, as coders ask it
        ("Order?", "sequencing"),
        ("Should I report the injury or the fall first?", "sequencing"),
        ("Is the adverse effect code primary?", "sequencing"),
        ("Which is the primary and which is secondary?", "sequencing"),
        ("Does the E11.22 lead or the N18.31?", "sequencing"),
        ("What is the PDx?", "sequencing"),
        ("which goes 1st?", "sequencing"),
        # how often a payer allows it, and what the patient pays, are the payer's
        ("How often can we bill G0438?", "coverage"),
        ("Is G0105 allowed once every 2 years?", "coverage"),
        ("Will the patient owe a copay?", "coverage"),
        ("Is it medically necessary for her dx?", "coverage"),
        # ... and what does not ask it: a primary tumor, a condition named primary, a visit
        ("1) What codes for the primary and receptors?", "code_for"),
        ("What is the code for primary hypertension?", "code_for"),
        ("What code do I report for her first visit?", "code_for"),
        ("If not, what should it be?", "code_for"),
        ("preemie birth record 34 wks - order of codes?", "sequencing"),
        ("Dx is E11.9, right?", "validity"),
        # a code's place before or after another's
        ("Does the N18.32 go before or after the E11.22?", "sequencing"),
        ("Does the NIHSS have to follow the stroke code?", "sequencing"),
        ("I'll follow up with the doc. What's the code for the UTI?", "code_for"),
        # the 7th character by its letters; a code's missing 5th character is its validity
        ("Is this an A or a D?", "seventh_character"),
        ("Does N18.3 need a 5th character?", "validity"),
        ("Is E11.6 a real code?", "validity"),
        ("Does E11.6 need more digits?", "validity"),
        # "primary" after a comma is the condition's type, not the claim's first place
        ("Can you tell me the ICD-10 for left knee osteoarthritis, primary?", "code_for"),
        ("Is the adverse effect code primary?", "sequencing"),
    ],
)
def test_questions_are_classified_by_what_they_ask(question: str, kind: str) -> None:
    assert kind in KINDS
    assert kind_of(question) == kind


def test_a_told_clause_before_a_question_gets_no_answer_of_its_own(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "Also the patient had a TKA on the right side last year, do I code that too?",
    )
    assert [a["kind"] for a in result["answers"]] == ["code_for"]
    assert result["answers"][0]["codes"] == ["Z96.651"]


def test_a_heading_gets_no_first_with_the_codes_to_use(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    [answer] = ask(store, templates, "Is N18.3 billable?")["answers"]
    assert answer["kind"] == "validity" and answer["confidence"] == "high"
    assert answer["answer"].startswith("No: N18.3")
    assert "N18.30, N18.31, N18.32" in answer["answer"]


def test_two_questions_get_two_answers_in_order(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "Can 29881 and 29877 go on one claim? Will Medicare cover it?")
    together, coverage = result["answers"]
    assert together["kind"] == "billed_together" and together["codes"] == ["29881", "29877"]
    assert together["answer"].startswith("No: 29877 is bundled into 29881")
    assert "NCCI hospital outpatient PTP edits" in together["answer"]
    assert coverage["kind"] == "coverage" and "check with the payer" in coverage["answer"]
    # "it" is what the message bills: the answer says which services it speaks of
    assert coverage["codes"] == ["29881", "29877"]
    assert coverage["answer"].startswith("For 29881 and 29877: coverage and payment")


def test_the_date_of_service_is_in_the_answer(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    [answer] = ask(store, templates, "Is Z91.011 billable? DOS 06/15/2025")["answers"]
    assert answer["answer"].startswith("Yes for the date of service 2025-06-15: Z91.011")


def test_what_is_the_code_for_offers_the_best_match(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "What's the code for a stage 3 sacral pressure ulcer?")
    [answer] = result["answers"]
    assert answer["kind"] == "code_for"
    assert "L89.153 (Pressure ulcer of sacral region, stage 3)" in answer["answer"]


def test_the_draft_says_the_answers_first_and_never_quotes_the_question(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    body = "Our made-up patient Zed Quorra: can 29881 and 29877 go on one claim?"
    draft = ask(store, templates, body)["draft"]
    assert draft.index("Your question") < draft.index("Codes in your question")
    assert "No: 29877 is bundled into 29881" in " ".join(draft.split())
    assert "Zed Quorra" not in draft and "can 29881 and 29877 go on one claim" not in draft


def test_no_suggestion_from_a_signature_or_a_weak_match(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    signed = ask(store, templates, "Is E11.9 ok?\n\nThanks,\nJane Doe, CCS, CPC")
    assert signed["suggestions"] == []
    clear = ask(store, templates, "pt with essential hypertension, what code?")
    assert [s["code"] for s in clear["suggestions"]] == ["I10"]  # the tail behind it dropped


def _code_answer(result: dict) -> dict:
    return next(a for a in result["answers"] if a["kind"] == "code_for")


def test_a_code_answer_names_the_code_first(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = _code_answer(
        ask(store, templates, "What is the PCS code for a right total knee replacement, cemented?")
    )
    assert answer["answer"].startswith("Use 0SRC0J9 (") and answer["codes"] == ["0SRC0J9"]


def test_an_open_pcs_axis_is_said(store: CodeStore, templates: jinja2.Environment) -> None:
    result = ask(store, templates, "What is the PCS code for a total knee replacement, right?")
    answer = _code_answer(result)
    first = result["suggestions"][0]
    assert first["system"] == "ICD-10-PCS" and first["open_axes"]
    assert "did not state the" in answer["answer"]
    assert "did not state the" in result["draft"]


def test_an_adverse_effect_says_the_effect_goes_first(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "What is the code for angioedema from lisinopril?")
    answer = _code_answer(result)
    assert answer["codes"] == ["T46.4X5A", "T78.3XXA"]  # the effect itself goes beside it
    assert "I.C.19.e.5(a)" in answer["answer"]
    assert "T78.3XXA" in [s["code"] for s in result["suggestions"]]


def test_an_unspecified_code_asks_for_the_documentation(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = _code_answer(ask(store, templates, "What is the dx code for a heel ulcer?"))
    assert "unspecified code" in answer["answer"]


def test_no_confident_match_is_said_rather_than_guessed(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "What is the code for the thing we discussed on the phone?")
    answer = _code_answer(result)
    assert result["suggestions"] == []
    assert answer["answer"].startswith("No confident match")


def test_a_sentence_asking_two_things_is_two_questions() -> None:
    text = "What's the dx code for this and which code is listed first?"
    assert [text[a:b] for a, b in questions(text)] == [
        "What's the dx code for this",
        "which code is listed first?",
    ]
    text = "What dx codes, and in what order? Dx codes and order - does the anemia go first?"
    assert [kind_of(text[a:b]) for a, b in questions(text)] == [
        "code_for",
        "sequencing",
        "code_for",
        "sequencing",
    ]
    one = "Also, can 29881 and 29877 go together?"
    assert questions(one) == [(0, len(one))]  # "Also" asks nothing on its own


def test_a_7th_character_question_without_a_code_names_the_complete_code(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = answer_of(
        store,
        templates,
        "Pt seen in clinic for f/u of a closed fx of the R distal radius, healing as "
        "expected. What 7th character do we use for this visit?",
        "seventh_character",
    )
    assert answer["codes"] and answer["codes"][0].endswith("D")
    assert "subsequent encounter" in answer["answer"]


def test_a_7th_character_question_over_listed_cases_answers_each(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = answer_of(
        store,
        templates,
        "Three fx pts from clinic today, all subsequent visits:\n\n"
        "1. L humerus shaft fx, displaced transverse, closed, treated in a functional brace. "
        'Ortho: "delayed healing, callus still minimal at 10 wks."\n'
        "2. R scaphoid fx, 5 months out, CT confirms nonunion, planning ORIF.\n"
        "3. L clavicle shaft fx, displaced, closed, healed in poor position.\n"
        "4. Pt seen for S82.202 - xray shows delayed union.\n\n"
        "What's the full code with the 7th character for each?",
        "seventh_character",
    )
    assert answer["codes"] == ["S42.322G", "S62.001K", "S42.022P", "S82.202G"]
    assert answer["answer"].startswith("Case by case")


def test_an_invalid_code_is_answered_with_the_nearest_real_one(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    (answer,) = ask(store, templates, "Is K21.90 a valid code?")["answers"]
    assert answer["kind"] == "validity"
    assert answer["answer"].startswith("No: K21.90 is not a code in ICD-10-CM")
    assert "nearest existing code above it is K21.9 " in answer["answer"]


def test_a_question_for_each_listed_drug_answers_each(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = answer_of(
        store,
        templates,
        "Est pt, 99214. In office she got:\n - Rocephin 1 g IM\n - Toradol 60 mg IM\n"
        " - Zofran 4 mg IM\n\nWhat HCPCS for each drug?",
        "code_for",
    )
    assert sorted(answer["codes"]) == ["J0696", "J1885", "J2405"]


def test_the_drug_code_is_how_the_drug_was_involved(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    # "the drug code" steers no code set: here it is the adverse effect's T-code
    answer = answer_of(
        store,
        templates,
        'ED visit. Provider: "Angioedema due to ACE inhibitor (lisinopril)", taking it as '
        "prescribed. Which goes first - the angioedema or the drug code?",
        "sequencing",
    )
    assert answer["codes"] == ["T78.3XXA", "T46.4X5A"]


def test_an_external_cause_takes_its_injurys_encounter(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "Clinic f/u for a closed fx of the R distal radius, healing as expected. She fell off "
        "a ladder at home last month. What codes do we use?",
    )
    codes = [s["code"] for s in result["suggestions"]]
    assert "S52.501D" in codes and "W11.XXXD" in codes and "W11.XXXA" not in codes


def test_a_question_wrapped_over_lines_is_one_question() -> None:
    text = (
        "Our new coder coded T46.4X1A as primary. I don't think it's a poisoning\n"
        "since he took it right? What should it be and which is first - the\n"
        "angioedema or the drug code?\n\nThanks,\nOwen"
    )
    assert [" ".join(text[a:b].split()) for a, b in questions(text)] == [
        "I don't think it's a poisoning since he took it right?",
        "What should it be",
        "which is first - the angioedema or the drug code?",
    ]
    # a list item is no wrapped line
    listed = "Codes needed:\n- what codes for the ulcer\n- which goes first?"
    assert [listed[a:b].strip() for a, b in questions(listed)] == ["- which goes first?"]


def test_a_quote_or_an_abbreviation_ends_a_sentence_only_where_it_should() -> None:
    text = 'Resident 2 - "Dementia, type unknown." Our system has F03.91 - is that valid?'
    assert [text[a:b].strip() for a, b in questions(text)][-1] == "is that valid?"
    assert 'unknown."' not in " ".join(text[a:b] for a, b in questions(text))
    asked = "What are ALL the dx codes incl. the external cause codes?"
    assert questions(asked) == [(0, len(asked))]


def test_which_goes_first_points_at_the_t_code_another_question_found(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = answer_of(
        store,
        templates,
        'Steroid induced DM. Inpt w/ COPD on chronic prednisone. Attending: "Steroid-induced '
        'diabetes mellitus with hyperglycemia."\n\nHow would you code this? And which goes '
        "first, the diabetes or the T code?",
        "sequencing",
    )
    # the diabetes the message names is the steroid-induced one (E09), not type 2
    assert answer["codes"] == ["E09.65", "T38.0X5A"]
    assert answer["answer"].startswith("List E09.65 first, then T38.0X5A")


def test_a_question_naming_nothing_of_the_case_reads_the_case(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "Pt fell from a ladder at home. Exam: contusion L hip, x-rays negative for fx.\n\n"
        "What are the codes for this - injury plus the external cause? And does the external "
        "cause code ever go first?",
    )
    codes = [s["code"] for s in result["suggestions"]]
    # the injury, its cause once (no W19 "unspecified fall" beside W11), and no fracture
    assert "S70.02XA" in codes and "W11.XXXA" in codes
    assert "W19.XXXA" not in codes and not any(c.startswith("S72") for c in codes)
    order = next(a for a in result["answers"] if a["kind"] == "sequencing")
    assert order["codes"][:2] == ["S70.02XA", "W11.XXXA"]
    assert "external cause codes are never listed first" in order["answer"]


def test_a_side_said_elsewhere_makes_a_phrase_sided(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "ED visit. He cut his L palm on a kitchen knife. What's the dx code for the hand lac?",
    )
    codes = [s["code"] for s in result["suggestions"]]
    assert "S61.412A" in codes and "S61.419A" not in codes


def test_a_question_about_a_named_case_reads_that_case(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    answer = answer_of(
        store,
        templates,
        "Two SNF admits from the hospital:\n\n"
        "Resident A - s/p elective R total hip arthroplasty for primary OA R hip.\n\n"
        "Resident B - s/p L hip hemiarthroplasty for a displaced midcervical L femoral neck "
        "fx (closed) after a fall at home. Here for PT/OT, healing as expected.\n\n"
        "Is Z47.1 right for both? If not, what do we use for Resident B and what's the 7th "
        "character?",
        "seventh_character",
    )
    assert answer["codes"] == ["S72.032D"]


@pytest.mark.parametrize(
    ("question", "codes"),
    [
        # the systemic infection and the localized one it came from (I.C.1.d.4)...
        ("What are the codes for sepsis due to pneumonia?", ["A41.9", "J18.9"]),
        ("sepsis d/t E coli UTI - codes?", ["A41.51", "N39.0"]),
        ("codes for sepsis from MRSA pneumonia?", ["A41.02", "J15.212"]),
        ("codes for severe sepsis from cellulitis of the L leg?", ["A41.9", "R65.20", "L03.116"]),
        # ...and the organ dysfunction told with the infection
        ("Sepsis d/t E coli UTI w/ AKI - codes?", ["A41.51", "N17.9", "N39.0"]),
        # ...where an organism is all that caused it, its sepsis code alone
        ("Code for sepsis due to strep pneumoniae?", ["A40.3"]),
    ],
)
def test_sepsis_from_a_localized_infection_is_two_codes(
    store: CodeStore, templates: jinja2.Environment, question: str, codes: list[str]
) -> None:
    assert [s["code"] for s in ask(store, templates, question)["suggestions"]] == codes


def test_a_genus_initial_ends_no_sentence() -> None:
    text = "Urine cx grew E. coli. What is the code for the UTI due to E. coli?"
    assert [text[a:b].strip() for a, b in questions(text)] == [
        "What is the code for the UTI due to E. coli?"
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # "the SSI" is the surgical site infection the op note describes
        (
            "Op note: superficial incisional surgical site infection R ankle with surrounding "
            "cellulitis of the R lower leg.\n\nWhat are the dx codes for the SSI?",
            "T81.41XA",
        ),
        # a long narrative is read from what the imaging shows
        (
            "89yo F from the nursing home, unwitnessed fall, CT shows displaced midcervical fx"
            " of R femoral neck. What's the code for the fracture?",
            "S72.031A",
        ),
    ],
)
def test_a_question_pointing_back_is_answered_from_the_case_told(
    store: CodeStore, templates: jinja2.Environment, body: str, code: str
) -> None:
    assert _code_answer(ask(store, templates, body))["codes"][0] == code


def test_each_question_names_the_codes_of_what_it_asks_about(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "Dx codes - is there a bilateral carpal tunnel syndrome code, and what's the code "
        "for the trigger finger of the L ring finger?",
    )
    asked = [a for a in result["answers"] if a["kind"] == "code_for"]
    assert [a["codes"] for a in asked] == [["G56.03"], ["M65.342"]]


def test_a_short_question_about_a_code_without_code_words_finds_it(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    (answer,) = ask(store, templates, "Our EHR won't let me pick R05 anymore. Was R05 deleted?")[
        "answers"
    ][-1:]
    assert answer["kind"] == "validity"
    assert answer["codes"] == ["R05"]


def test_everyday_words_of_a_story_are_not_conditions(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    """ "came in" once read as CALME (a labium code) and "the reads" as dyslexia."""
    result = ask(
        store,
        templates,
        "Cardiology group, we read the ED EKGs. Pt came in w/ chest pain, EKGs at 0810, 1015 "
        'and 1400 for serial changes.\n\nFinal dx: "NSTEMI". Our coder put R07.9 + I21.4 on '
        "the reads. Should the chest pain be on there?",
    )
    suggested = {s["code"] for s in result["suggestions"]}
    assert not suggested & {"N90.61", "R48.0", "F81.0"}


def test_a_drug_taken_now_is_named_beside_the_condition(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(
        store,
        templates,
        "Note: persistent AF, rate controlled on metoprolol, anticoagulated with Eliquis 5 bid."
        " What's the AF code + the Eliquis code?",
    )
    assert set(_code_answer(result)["codes"]) == {"I48.19", "Z79.01"}


def test_a_place_of_occurrence_is_suggested_only_when_asked(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    # where the visit was is no place of occurrence (I.C.20.b)
    result = ask(store, templates, "Seen at urgent care today. L wrist sprain - dx codes?")
    assert not [s for s in result["suggestions"] if s["code"].startswith("Y92")]
    result = ask(
        store,
        templates,
        "MVC passenger rear-ended on the interstate. Do I need a place of occurrence code for"
        " the interstate?",
    )
    assert "Y92.411" in _code_answer(result)["codes"]
