"""What a question states (side, diabetes type, stage, encounter) is never contradicted."""

from __future__ import annotations

from consultant.codes.specifics import Stated, contradicts, leaves_unspecified, stated


def test_stated_reads_coders_shorthand() -> None:
    assert stated("R distal radius fx f/u") == Stated("right", None, None, "subsequent")
    assert stated("T2DM with CKD 3a") == Stated(None, "2", "3a", None)
    assert stated("type I diabetic, stage IV ulcer of lt heel") == Stated("left", "1", "4", None)
    assert stated("L5 radiculopathy").side is None  # a vertebra, not a side
    assert stated("bilateral knee OA").side == "bilateral"


def test_contradictions() -> None:
    left = stated("left ankle sprain, initial")
    assert contradicts(left, "Sprain of right ankle, initial encounter")
    assert not contradicts(left, "Sprain of left ankle, initial encounter")
    assert contradicts(left, "Sprain of left ankle, subsequent encounter")
    assert contradicts(stated("DM2 with neuropathy"), "Type 1 diabetes mellitus with neuropathy")
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
