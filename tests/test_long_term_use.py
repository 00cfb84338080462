"""A drug the patient takes now, read as its long-term use code (Z79, I.C.21.c.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.codes.systems import ICD10CM


@pytest.fixture(scope="module")
def search(code_db: Path) -> CodeSearch:
    return CodeSearch(CodeStore(db.connect(code_db, readonly=True)))


def codes(search: CodeSearch, text: str, limit: int = 5) -> list[str]:
    return [h.code for h in search.search(text, limit=limit)]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # brands read as their generic, the generic as its class
        ("anticoagulated with Eliquis 5 bid", "Z79.01"),
        ("Xarelto 20 daily", "Z79.01"),
        ("Plavix 75 daily", "Z79.02"),
        ("aspirin 81 daily", "Z79.82"),
        ("on Ozempic weekly", "Z79.85"),  # injectable, but not insulin
        ("cont Lantus 22u qhs", "Z79.4"),
        ("methotrexate 15 mg weekly", "Z79.631"),
        ("IV daptomycin x 6 wks", "Z79.2"),
        ("on anastrozole", "Z79.811"),
        # a substance no name lists, by its Table of Drugs category (T38.0)
        ("on chronic cortisone", "Z79.52"),
    ],
)
def test_a_drug_taken_now_is_its_z79_class(search: CodeSearch, text: str, code: str) -> None:
    assert code in codes(search, text, 2)


def test_every_drug_of_a_phrase_is_read(search: CodeSearch) -> None:
    assert codes(search, "cont Lantus 22u qhs + metformin 500 bid")[:2] == ["Z79.4", "Z79.84"]


def test_the_condition_leads_and_the_drug_goes_beside_it(search: CodeSearch) -> None:
    hits = search.search("Persistent atrial fibrillation on Eliquis", limit=3)
    assert [h.code for h in hits[:2]] == ["I48.19", "Z79.01"]
    assert hits[1].alongside and not hits[0].alongside
    # the drug's words and dose cost the condition nothing ("mg" is no myasthenia gravis)
    hits = search.search("COPD on chronic prednisone 20 mg/day", limit=2)
    assert [h.code for h in hits] == ["J44.9", "Z79.52"]
    assert hits[0].score == 1.0
    # "insulin use" is the drug taken now, not an insulin injection's PCS code
    hits = search.search("DM2 with peripheral neuropathy and insulin use", limit=2)
    assert [h.code for h in hits] == ["E11.42", "Z79.4"]


@pytest.mark.parametrize(
    "text",
    [
        "no insulin",  # denied
        "d/c'd warfarin",  # stopped
        "Eliquis",  # a drug alone says nothing of taking it
        "accidental Norco overdose",  # a poisoning, not a use
        "opioid use",  # a use of the substance (F11.9-), not a drug taken as prescribed
        "switched from lisinopril to losartan daily",  # no class but "other" (never given)
    ],
)
def test_no_long_term_code_without_a_drug_taken_now(search: CodeSearch, text: str) -> None:
    assert not [code for code in codes(search, text, 3) if code.startswith("Z79")]


def test_a_denied_drug_beside_a_taken_one(search: CodeSearch) -> None:
    found = codes(search, "on Ozempic weekly, no insulin")
    assert "Z79.85" in found and "Z79.4" not in found


def test_a_diagnosis_code_asked_for_a_drug_alone_is_its_use(search: CodeSearch) -> None:
    # "the insulin Z code": asked for a diagnosis, a drug named alone is taken, not a poisoning
    assert codes(search, "insulin", 1) != ["Z79.4"]  # blind: the J-code is as likely
    assert [h.code for h in search.search("insulin", system=ICD10CM, limit=1)] == ["Z79.4"]
    assert [h.code for h in search.search("Lantus", system=ICD10CM, limit=1)] == ["Z79.4"]
    # the drug beside something else is not asked alone
    hits = search.search("insulin resistance", system=ICD10CM, limit=3)
    assert hits[0].code == "E88.819" and "Z79.4" not in [h.code for h in hits]
