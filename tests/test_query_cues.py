"""Reading a coder's cues: the system asked for, denials, history, the drug table column."""

from __future__ import annotations

import pytest

from consultant.codes.query_cues import drug_column, read_cues, system_cue
from consultant.codes.systems import HCPCS, ICD10CM, ICD10PCS


@pytest.mark.parametrize(
    ("text", "system"),
    [
        ("dx code for a screening colonoscopy", ICD10CM),
        ("what's the ICD-10-CM code for sciatica", ICD10CM),
        ("J code for Toradol", HCPCS),
        ("HCPCS for a standard wheelchair", HCPCS),
        ("PCS code for lap chole", ICD10PCS),
        ("dx code and HCPCS code for a nebulizer", None),  # two systems: neither
        ("type 2 diabetes with CKD", None),
        ("the angioedema or the drug code?", None),  # a J-code to some, a T-code to others
        ("Is there a code for the wandering?", None),  # an article, not an A code
        ("which A code for the ostomy supplies?", HCPCS),
        # beside a concussion, "PCS" is the post-concussion syndrome
        ("concussion from ladder - initial, f/u, and later PCS", None),
        ("ICD-10-PCS for the craniotomy after his concussion", ICD10PCS),
    ],
)
def test_system_cue(text: str, system: str | None) -> None:
    assert system_cue(text) == system


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("asthma, no status asthmaticus", "asthma, without status asthmaticus"),
        ("gastric ulcer w/o bleeding", "gastric ulcer without bleeding"),
        ("chest pain, denies SOB", "chest pain, without SOB"),
        ("negative for malignancy", "without malignancy"),
        ("former smoker", "history of smoker"),
        ("h/o DVT", "history of DVT"),
        ("remote MI", "history of MI"),
        # ...but remote monitoring is a service, not a past condition
        ("remote patient monitoring", "remote patient monitoring"),
        # a number and a title's own phrase are not denials
        ("no. 5 pressure area", "no. 5 pressure area"),
        ("anemia not otherwise specified", "anemia not otherwise specified"),
        # a drug stopped is underdosing's, not a past condition; a habit stopped is one
        ("stopped taking his insulin", "stopped taking his insulin"),
        ("stopped smoking", "history of smoking"),
        # a relative's disease is the family's history, someone else's infection an exposure
        ("mother had breast cancer", "family history of breast cancer"),
        ("dad had colon ca at 50", "family history of colon ca"),
        ("coworker tested positive for covid", "contact with and exposure to covid"),
    ],
)
def test_read_cues_rewrites_denials_and_history(text: str, rewritten: str) -> None:
    assert read_cues(text).text == rewritten


def test_a_service_billed_by_the_unit_is_a_hcpcs_one() -> None:
    assert read_cues("behavioral health counseling per 15 min").system == HCPCS
    assert read_cues("ground ambulance mileage per mile").system == HCPCS
    # the quarter and half hours HCPCS counts in, said without "per"
    assert read_cues("annual depression screening 15 min").system == HCPCS
    assert read_cues("DSMT, 30-minute session").system == HCPCS
    # a loss of consciousness counted in minutes is a diagnosis's
    assert read_cues("concussion with LOC for 15 min").system is None
    assert read_cues("concussion, LOC about 30 minutes").system is None
    assert read_cues("unconscious for 15 min after the fall").system is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("concussion w/ LOC 15 min", "loss of consciousness of 30 minutes or less"),
        ("LOC for 45 minutes", "loss of consciousness of 31 minutes to 59 minutes"),
        ("loss of consciousness x 2 hrs", "loss of consciousness of 1 hour to 5 hours 59 minutes"),
        ("LOC about 30 hours", "loss of consciousness greater than 24 hours"),
    ],
)
def test_how_long_a_patient_was_out_is_read_as_the_titles_range(text: str, words: str) -> None:
    assert words in read_cues(text).text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("cough for about 4 weeks", "cough"),  # not "of 4 weeks or less", an infarction's age
        ("fever x 3 days", "fever"),  # not "three-day fever", sandfly fever
        ("DM2 for 10 yrs", "DM2"),
        ("headache for the past 3 days", "headache"),
    ],
)
def test_how_long_a_condition_lasted_names_no_code(text: str, kept: str) -> None:
    assert read_cues(text).text == kept


def test_a_pregnancys_weeks_and_a_ventilations_days_are_kept() -> None:
    assert "32 weeks" in read_cues("GDM at 32 weeks").text
    assert "3 days" in read_cues("on the vent x 3 days").text


def test_a_post_concussion_pcs_is_read_as_the_syndrome() -> None:
    assert "postconcussional syndrome" in read_cues("PCS after a concussion in May").text


def test_a_transplant_told_as_history_is_its_status() -> None:
    # Z94.0 kidney transplant status, not a history of kidney disease (Z87.44-)
    assert read_cues("hx of kidney transplant").text.startswith("kidney transplant status")
    assert read_cues("s/p liver transplant 2019").text.startswith("liver transplant status")
    assert "status" not in read_cues("hx of kidney transplant rejection").text


def test_gestational_diabetes_is_read_by_its_control() -> None:
    # I.C.15.g: the O24.4- code says how it is controlled; insulin is no Z79.4 beside it
    assert "insulin controlled" in read_cues("GDM on insulin").text
    assert "on insulin" not in read_cues("gestational diabetes, on insulin").text
    assert "oral hypoglycemic" in read_cues("GDM, taking metformin").text
    assert read_cues("DM2 on insulin").text == "DM2 on insulin"


def test_the_reason_for_a_visit_is_a_diagnosis() -> None:
    assert read_cues("pt here for flu shot").system == ICD10CM
    assert read_cues("She was seen today for her depo shot").system == ICD10CM
    # a system named outright wins; "here" elsewhere says nothing
    assert read_cues("here for a B12 shot, J code?").system == HCPCS
    assert read_cues("B12 shot given here").system is None


def test_read_cues_drops_the_system_words_and_reads_doses() -> None:
    cues = read_cues("J code for Toradol 30mg")
    assert cues.system == HCPCS
    assert "code" not in cues.text.lower().split()
    assert "30 milligram" in cues.text  # "mg" after a number is a dose, not myasthenia gravis
    # a wound's size and the time since are documentation, not a code's words
    assert read_cues("sacral ulcer 4.2 x 3.0 x 1.8 cm, 5 months out").text == "sacral ulcer ,"
    # a screening that became diagnostic is still the screening's encounter (I.C.21.c.5)
    assert read_cues("screening colo that turned into a diagnostic").text == "screening colo that"


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("accidental Norco overdose", "poisoning accidental"),
        ("Norco OD", "poisoning accidental"),  # no intent documented: accidental (I.C.19.e)
        ("intentional overdose of xanax", "poisoning intentional self-harm"),
        ("suicide attempt with tylenol", "poisoning intentional self-harm"),
        ("coumadin underdosing", "underdosing"),
        ("missed her insulin doses", "underdosing"),
        ("missed 3 days of her seizure meds", "underdosing"),
        ("skipped her Synthroid for a week", "underdosing"),
        ("taking half her Lantus dose", "underdosing"),
        ("angioedema from lisinopril", "adverse effect"),
        ("bleeding due to coumadin", "adverse effect"),
        ("digoxin toxicity", "adverse effect"),
        ("on long-term aspirin", None),
    ],
)
def test_drug_column(text: str, column: str | None) -> None:
    assert drug_column(text) == column
