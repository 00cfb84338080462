"""What the whole message says of the patient rules suggestions out, with the convention."""

from __future__ import annotations

import pytest

from consultant.codes.systems import HCPCS, ICD10CM, ICD10PCS
from consultant.drafting.patient_context import read_context, rules_out


@pytest.mark.parametrize(
    ("text", "pregnant", "newborn", "sex", "inpatient"),
    [
        ("pt is a 34yo F, no pregnancy, UTI", False, False, "female", False),
        ("28 y/o F G2P1 at 32 wks GA with UTI", True, False, "female", False),
        ("postpartum day 2, mastitis", True, False, None, False),
        ("66yo M admitted for NSTEMI", False, False, "male", True),
        ("3 day old newborn in the NICU, jaundice", False, True, None, False),
        ("Elective TKA, what is the PCS code?", False, False, None, True),
        (
            "her pregnancy test was negative; 40 yo F with pelvic pain",
            False,
            False,
            "female",
            False,
        ),
    ],
)
def test_the_message_is_read_for_the_patient(
    text: str, pregnant: bool, newborn: bool, sex: str | None, inpatient: bool
) -> None:
    context = read_context(text)
    assert (context.pregnant, context.newborn, context.sex, context.inpatient) == (
        pregnant,
        newborn,
        sex,
        inpatient,
    )


def test_pregnancy_and_newborn_codes_need_the_message_to_say_so() -> None:
    adult = read_context("pt is a 34yo F, no pregnancy, UTI due to E. coli")
    reason = rules_out(adult, ICD10CM, "O23.40", "Unspecified infection of urinary tract")
    assert reason is not None and "I.C.15.a" in reason
    reason = rules_out(adult, ICD10CM, "P39.3", "Neonatal urinary tract infection")
    assert reason is not None and "I.C.16.a" in reason
    assert rules_out(adult, ICD10CM, "N39.0", "Urinary tract infection, site not specified") is None
    pregnant = read_context("G1P0 at 20 weeks pregnant with a UTI")
    assert rules_out(pregnant, ICD10CM, "O23.40", "Unspecified infection of urinary tract") is None
    newborn = read_context("2 day old neonate with a UTI")
    assert rules_out(newborn, ICD10CM, "P39.3", "Neonatal urinary tract infection") is None


def test_the_trimester_is_the_pregnant_patients_only() -> None:
    assert read_context("G2P1 at 32w3d, hypothyroid in pregnancy").said.trimester == "third"
    assert read_context("pt is 32 weeks out from her injury").said.trimester is None


def test_a_code_for_the_other_sex_or_side_is_ruled_out() -> None:
    man = read_context("72yo M with pelvic pain")
    assert rules_out(man, ICD10CM, "N94.89", "Other specified conditions of female genital organs")
    assert rules_out(man, ICD10CM, "N40.0", "Benign prostatic hyperplasia without LUTS") is None
    woman = read_context("55 yo F with a mass")
    assert rules_out(
        woman, ICD10CM, "N50.89", "Other specified disorders of the male genital organs"
    )
    knee = read_context("R total knee arthroplasty for primary OA R knee. PCS code for the TKA?")
    assert rules_out(knee, ICD10PCS, "0SRD0JZ", "Replacement of Left Knee Joint with Synthetic")
    assert (
        rules_out(knee, ICD10PCS, "0SRC0JZ", "Replacement of Right Knee Joint with Synthetic")
        is None
    )


def test_pcs_codes_answer_only_inpatient_or_pcs_questions() -> None:
    office = read_context("Cataract surgery R eye in the ASC. Which modifier?")
    reason = rules_out(office, ICD10PCS, "08DJ3ZZ", "Extraction of Right Lens")
    assert reason is not None and "inpatient" in reason
    assert rules_out(office, HCPCS, "V2632", "Posterior chamber intraocular lens") is None


def test_denied_trauma_rules_out_an_injurys_fracture() -> None:
    spine = read_context("osteoporosis, back pain, x-ray shows L1 compression fx, no trauma")
    wedge = "Wedge compression fracture of first lumbar vertebra, initial encounter"
    assert rules_out(spine, ICD10CM, "S32.010A", wedge)
    fragility = "Age-related osteoporosis with current pathological fracture, vertebra(e)"
    assert rules_out(spine, ICD10CM, "M80.08XA", fragility) is None
    assert (
        rules_out(read_context("fell on the ice, L1 compression fx"), ICD10CM, "S32.010A", wedge)
        is None
    )
