"""HCPCS Level II from coders' plain words, on the real loaded code sets: brand names to
J-codes, the dose and route picking a sibling, Medicare services by their words, DME by
item and feature, and codes the diagnosis fits better left to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.hcpcs_resolve import Amount, dose_fit
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore


@pytest.fixture(scope="module")
def search(code_db: Path) -> CodeSearch:
    return CodeSearch(CodeStore(db.connect(code_db, readonly=True)))


def codes(search: CodeSearch, text: str, limit: int = 5) -> list[str]:
    return [hit.code for hit in search.search(text, limit=limit)]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # brand -> generic -> the descriptor naming it (per 15 mg: the dose is units)
        ("Toradol 60 mg IM J code", "J1885"),
        ("Toradol 60 mg IM", "J1885"),
        ("Rocephin 500 mg", "J0696"),
        ("B12 shot", "J3420"),
        ("demerol 50 mg IM", "J2175"),
        # a brand only the descriptor names
        ("Supartz knee injection", "J7321"),
        # an IV fluid by its abbreviation and volume
        ("NS 1000 cc bag", "J7030"),
    ],
)
def test_drug_names_find_their_j_code(search: CodeSearch, text: str, code: str) -> None:
    assert codes(search, text)[0] == code


def test_dose_picks_the_sibling(search: CodeSearch) -> None:
    assert codes(search, "Rhogam 300 mcg")[0] == "J2790"  # full dose, not the 50 mcg one
    assert codes(search, "MICRhoGAM")[0] == "J2788"
    assert codes(search, "NS 500 mL")[0] == "J7040"


def test_route_picks_the_injection_over_the_tablet(search: CodeSearch) -> None:
    found = codes(search, "zofran 4 mg IV push")
    assert found[0] == "J2405"
    assert "S0119" not in found[:1]  # ondansetron, oral, 4 mg
    # an IV dose is not the intraocular implant (C9034), nor is an intraocular one IV
    assert codes(search, "dexamethasone 10mg IV")[0] == "J1100"
    assert codes(search, "dexamethasone intraocular")[0] == "C9034"


def test_a_code_added_since_the_hcpcs_file_is_found_by_its_short_descriptor(
    search: CodeSearch,
) -> None:
    # J1010 (methylprednisolone acetate, 1 mg) replaced J1020-J1040 in April 2024; the
    # ended codes are never answers.
    found = codes(search, "Depo-Medrol 80 mg", limit=10)
    assert found[0] == "J1010"
    assert not {"J1020", "J1030", "J1040"} & set(found)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # the reference product, whose short descriptor clips its name ("Inj pegfilgrast
        # ex bio 0.5mg"), not a biosimilar the phrase did not name
        ("Neulasta 6 mg", "J2506"),
        ("pegfilgrastim", "J2506"),
        ("Remicade 100 mg", "J1745"),
        # a biosimilar named by its brand or as a biosimilar
        ("Zarxio 300 mcg", "Q5101"),
        ("Inflectra 100 mg", "Q5103"),
    ],
)
def test_a_reference_product_and_its_biosimilars_are_told_apart(
    search: CodeSearch, text: str, code: str
) -> None:
    assert codes(search, text)[0] == code
    if code.startswith("Q"):
        return
    biosimilars = [c for c in codes(search, "biosimilar " + text) if c.startswith("Q5")]
    assert biosimilars, "asked for a biosimilar, the biosimilars' codes are offered"


def test_dose_fit_prefers_the_exact_amount_then_a_multiple() -> None:
    eighty = (80.0, "mg")
    assert dose_fit(eighty, Amount(80, "mg", "fixed")) > dose_fit(eighty, Amount(40, "mg", "fixed"))
    assert dose_fit((1000.0, "mg"), Amount(250, "mg", "per")) > 0  # 1 g is 4 units
    assert dose_fit((4.0, "mg"), Amount(10, "mg", "up to")) > 0
    assert dose_fit((30.0, "mg"), Amount(20, "mg", "per")) < 0
    assert dose_fit((5.0, "ml"), Amount(20, "mg", "per")) == 0  # another unit says nothing


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("flu shot admin G code", "G0008"),
        ("Welcome to Medicare visit", "G0402"),
        ("screening colonoscopy average risk Medicare", "G0121"),
        # the office's collection of a screening Pap, not the laboratory's reading
        ("screening pap smear collection medicare", "Q0091"),
        # a bare "15 min" is the unit: not the "per visit" code
        ("home health aide visit 15 min", "G0156"),
    ],
)
def test_services_by_their_words(search: CodeSearch, text: str, code: str) -> None:
    assert codes(search, text)[0] == code


def test_services_offered_among_the_first(search: CodeSearch) -> None:
    assert "G0438" in codes(search, "initial annual wellness visit")
    assert "A0433" in codes(search, "ALS2 ambulance")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("semi electric hospital bed with mattress", "E0260"),
        ("semi-electric hospital bed without mattress", "E0261"),
        ("full electric hospital bed w/ mattress", "E0265"),
        ("standard nebulizer with compressor", "E0570"),
        ("CPAP machine", "E0601"),
        ("CPAP chin strap", "A7036"),
        ("diabetic test strips", "A4253"),
        ("TENS unit 4 lead", "E0730"),
        ("bariatric w/c for a 400 lb pt", "K0007"),
        ("insulin syringes", "A4206"),  # 1 cc or less
    ],
)
def test_dme_by_item_and_feature(search: CodeSearch, text: str, code: str) -> None:
    assert codes(search, text)[0] == code


def test_a_diagnosis_phrase_keeps_its_diagnosis_first(search: CodeSearch) -> None:
    # J3420 covers "B12" but not "deficiency": the vitamin deficiency leads.
    assert codes(search, "B12 deficiency")[0].startswith("E53")
    # "(for ESRD on dialysis)" says whom a drug is for: the condition names no drug
    assert codes(search, "ESRD on dialysis")[0] == "N18.6"
    assert codes(search, "Retacrit non-ESRD")[0] == "Q5106"  # "(for non-esrd use)" decides
    # the PCS builder read an administration: the procedure leads
    assert codes(search, "intrathecal methotrexate")[0] == "3E0R305"
