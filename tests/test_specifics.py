"""What a question states (side, diabetes type, stage, encounter) is never contradicted."""

from __future__ import annotations

from consultant.codes.specifics import Stated, contradicts, leaves_unspecified, stated


def _axes(said: Stated) -> tuple[str | None, ...]:
    return (said.side, said.diabetes_type, said.stage, said.encounter)


def test_stated_reads_coders_shorthand() -> None:
    assert _axes(stated("R distal radius fx f/u")) == ("right", None, None, "subsequent")
    assert _axes(stated("T2DM with CKD 3a")) == (None, "2", "3a", None)
    assert _axes(stated("type I diabetic, stage IV ulcer of lt heel")) == ("left", "1", "4", None)
    assert stated("L5 radiculopathy").side is None  # a vertebra, not a side
    assert stated("bilateral knee OA").side == "bilateral"


def test_contradictions() -> None:
    left = stated("left ankle sprain, initial")
    assert contradicts(left, "Sprain of right ankle, initial encounter")
    assert not contradicts(left, "Sprain of left ankle, initial encounter")
    assert contradicts(left, "Sprain of left ankle, subsequent encounter")
    assert contradicts(stated("DM2 with neuropathy"), "Type 1 diabetes mellitus with neuropathy")
    # a stated type is no "other specified", drug-induced or secondary diabetes (E13, E09, E08)
    dm2 = stated("hypoglycemia in type 2 diabetic on insulin")
    assert contradicts(dm2, "Other specified diabetes mellitus with hypoglycemia without coma")
    assert contradicts(dm2, "Drug or chemical induced diabetes mellitus with hypoglycemia")
    # diabetes of no written type is type 2 (I.C.4.a.2), unless the words say another kind
    assert stated("DM foot ulcer").diabetes_type == "2"
    assert contradicts(stated("DM foot ulcer"), "Type 1 diabetes mellitus with foot ulcer")
    steroid = stated("steroid induced diabetes")
    assert steroid.diabetes_type is None
    assert not contradicts(steroid, "Drug or chemical induced diabetes mellitus")
    assert stated("screening for diabetes").diabetes_type is None
    assert contradicts(stated("CKD stage 3a"), "Chronic kidney disease, stage 4 (severe)")
    assert not contradicts(stated("CKD stage 3a"), "Chronic kidney disease, stage 3a")
    # a range of stages fits every stage in it
    assert not contradicts(
        stated("HTN with CKD stage 3"),
        "Hypertensive chronic kidney disease with stage 1 through stage 4 chronic kidney disease",
    )


def test_a_stated_side_left_unspecified_ranks_lower() -> None:
    said = stated("ulcer of left heel")
    assert leaves_unspecified(said, "Non-pressure chronic ulcer of unspecified heel and midfoot")
    assert not leaves_unspecified(said, "Non-pressure chronic ulcer of left heel and midfoot")
    assert not leaves_unspecified(stated("heel ulcer"), "Ulcer of unspecified heel")


def test_one_side_for_both_ranks_lower() -> None:
    both = stated("mild NPDR, both eyes")
    assert leaves_unspecified(both, "Type 2 diabetes mellitus with mild NPDR, right eye")
    assert not leaves_unspecified(both, "Type 2 diabetes mellitus with mild NPDR, bilateral")


def test_a_title_without_what_the_question_says_contradicts_it() -> None:
    hf = stated("heart failure with the hypertension")
    assert contradicts(hf, "Hypertensive heart disease without heart failure")
    assert not contradicts(hf, "Hypertensive heart disease with heart failure")
    assert contradicts(
        stated("DM2 with complications"), "Type 2 diabetes mellitus without complications"
    )
    # what the question denies is no contradiction
    migraine = stated("migraine without aura, not intractable, no status migrainosus")
    assert not contradicts(
        migraine, "Migraine without aura, not intractable, without status migrainosus"
    )
    assert contradicts(stated("migraine with aura"), "Migraine without aura, not intractable")


def test_a_pregnancy_code_needs_a_pregnancy() -> None:
    """I.C.15.a.1: chapter 15 is for the pregnant, delivering or puerperal patient; a phrase
    that says nothing of one is never given "... complicating the puerperium"."""
    bypass = stated("s/p gastric bypass")
    assert contradicts(bypass, "Bariatric surgery status complicating the puerperium")
    assert not contradicts(bypass, "Bariatric surgery status")
    assert contradicts(
        stated("observation for suspected MI, ruled out"),
        "Encounter for suspected placental problem ruled out",
    )
    # what coders write of a pregnancy keeps its codes: words, weeks, shorthand
    for text in ("pre-existing HTN", "GDM on insulin", "HTN at 32 wks", "AROM", "G2P1 w/ PPROM"):
        assert not contradicts(stated(text), "Pre-existing hypertension complicating pregnancy")
    # "non-pregnant" in a screening's title is no pregnancy
    assert not contradicts(
        stated("hep B screening high risk"),
        "Hepatitis b screening in non-pregnant, high risk individual",
    )


def test_a_title_saying_not_what_the_question_asserts_is_ruled_out() -> None:
    said = stated("migraine without aura, intractable")
    assert contradicts(said, "Migraine without aura, not intractable, without status migrainosus")
    assert not contradicts(said, "Migraine without aura, intractable, without status migrainosus")
    # "not elsewhere classified" denies nothing
    assert not contradicts(stated("intractable migraine"), "Migraine, not elsewhere classified")


def test_a_stated_billing_unit_rules_out_another() -> None:
    hourly = stated("RN nursing care in the home per hour")
    assert hourly.period == "hour"
    assert contradicts(hourly, "Nursing care, in the home, by registered nurse, per diem")
    assert not contradicts(hourly, "Nursing care, in the home; by registered nurse, per hour")
    quarter = stated("home health aide visit per 15 min")
    assert contradicts(quarter, "Home health aide or certified nurse assistant, per visit")
    assert contradicts(quarter, "Nursing care, in the home, by registered nurse, per diem")
    assert stated("home health aide visit").period is None
    # coders write the unit bare ("..., 15 min"); a range of minutes is no unit
    assert stated("skilled nursing visit by LPN, 15 min").period == "15 minutes"
    assert stated("tobacco cessation counseling 3-10 min").period is None
    assert stated("nursing visit, per visit").period == "visit"
