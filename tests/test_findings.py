"""Every finding kind on real codes: the FY2026 tabular's own notes, real NCCI edit rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from consultant.codes.store import CodeStore
from consultant.codes.systems import HCPCS
from consultant.drafting.findings import CodeRef, Finding, code_findings, note_references

FIXTURES = Path(__file__).parent / "fixtures"
ON = date(2026, 5, 1)
RELEASE = "ICD-10-CM FY2026 (April 1, 2026 update)"


@pytest.fixture(scope="module")
def store(ncci_db: Path) -> CodeStore:
    """The session's full code database with the NCCI fixture files added."""
    return CodeStore.open(ncci_db)


def findings(
    store: CodeStore, codes: list[str], modifiers: list[str] | None = None, on: date = ON
) -> list[Finding]:
    return code_findings(store, [store.lookup(c) for c in codes], modifiers or [], on)


def of_kind(found: list[Finding], kind: str) -> list[Finding]:
    return [f for f in found if f.kind == kind]


# --- note references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("transection of abdomen (S38.3)", [CodeRef("S383")]),
        ("diabetes mellitus due to underlying condition (E08.-)", [CodeRef("E08")]),
        ("fracture of hip NOS (S72.0-)", [CodeRef("S720")]),
        ("stage of chronic kidney disease (N18.1-N18.6)", [CodeRef("N181", "N186")]),
        ("hypertensive chronic kidney disease (I12.-, I13.-)", [CodeRef("I12"), CodeRef("I13")]),
        ("abortion (O00-O07, O08.4)", [CodeRef("O00", "O07"), CodeRef("O084")]),
        ("pregnancy (O00-O9A)", [CodeRef("O00", "O9A")]),
        ("any associated:", []),
    ],
)
def test_note_references(text: str, refs: list[CodeRef]) -> None:
    assert note_references(text) == refs


@pytest.mark.parametrize(
    ("ref", "code", "covered"),
    [
        (CodeRef("S383"), "S38.3XXA", True),
        (CodeRef("S383"), "S38.1XXA", False),
        (CodeRef("E08"), "E08.22", True),
        (CodeRef("N181", "N186"), "N18.31", True),
        (CodeRef("N181", "N186"), "N18.6", True),
        (CodeRef("N181", "N186"), "N18.9", False),
        (CodeRef("N181", "N186"), "N18", False),
        (CodeRef("O00", "O9A"), "O9A.11", True),
        (CodeRef("O00", "O9A"), "P00.0", False),
        (CodeRef("E00", "E88"), "E11.22", True),
        (CodeRef("E00", "E88"), "E89.0", False),
    ],
)
def test_reference_coverage(ref: CodeRef, code: str, covered: bool) -> None:
    assert ref.covers(code) is covered


# --- code status ----------------------------------------------------------------------


def test_invalid_code_names_the_nearest_real_code(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["E11.99"]), "invalid_code")
    assert finding.codes == ["E11.99"]
    assert "E11.99 is not a code in " + RELEASE in finding.message
    assert "nearest existing code above it is E11.9" in finding.message
    assert finding.source == RELEASE


def test_cpt_number_outside_every_range_is_invalid(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["00000"]), "invalid_code")
    assert "not in any CPT code range" in finding.message
    assert finding.source == "CPT section number ranges (no CPT file loaded)"


def test_not_billable_names_the_billable_codes_below(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["N18.3"]), "not_billable")
    assert finding.codes == ["N18.3"]
    for child in ("N18.30", "N18.31", "N18.32"):
        assert child in finding.message
    big = of_kind(findings(store, ["E11"]), "not_billable")[0]
    assert "E11.9 (Type 2 diabetes mellitus without complications)" in big.message
    assert "more." in big.message  # E11 has more than a dozen complete codes


def test_needs_seventh_character_names_characters_and_meanings(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["S32.000"]), "needs_seventh_character")
    assert "A = initial encounter for closed fracture" in finding.message
    assert "B = initial encounter for open fracture" in finding.message
    assert "S32.000A" in finding.message
    assert "placeholder X" not in finding.message  # six characters already


def test_short_code_needing_seventh_character_mentions_placeholder(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["S00.01"]), "needs_seventh_character")
    assert "A = initial encounter; D = subsequent encounter; S = sequela" in finding.message
    assert "placeholder X" in finding.message and "S00.01XA" in finding.message


def test_deleted_code(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["S30.1XXA"]), "deleted_code")
    assert finding.codes == ["S30.1XXA"]
    assert "deleted from ICD-10-CM as of 2025-10-01" in finding.message
    deleted_hcpcs = of_kind(findings(store, ["A4466"]), "deleted_code")[0]
    assert "HCPCS" in deleted_hcpcs.message and "HCPCS Level II 2019" in deleted_hcpcs.source


def test_billable_code_alone_has_no_status_finding(store: CodeStore) -> None:
    kinds = {f.kind for f in findings(store, ["E11.22"])}
    assert not kinds & {"invalid_code", "not_billable", "needs_seventh_character"}


# --- notes between codes --------------------------------------------------------------


def test_excludes1_both_ways_is_one_finding(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["E11.9", "E10.9"]), "excludes1")
    assert finding.codes == ["E11.9", "E10.9"]
    assert '"type 1 diabetes mellitus (E10.-)"' in finding.message
    assert '"type 2 diabetes mellitus (E11.-)"' in finding.message
    assert "should not be reported together" in finding.message
    assert finding.source == f"{RELEASE}, Excludes1 note at E11 and E10"


def test_excludes1_inherited_from_the_category(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["S32.000A", "S38.3XXA"]), "excludes1")
    assert '"transection of abdomen (S38.3)"' in finding.message
    assert finding.source == f"{RELEASE}, Excludes1 note at S32"


def test_excludes2_may_be_reported_together(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["S32.000A", "S72.001A"]), "excludes2")
    assert finding.codes == ["S32.000A", "S72.001A"]
    assert '"fracture of hip NOS (S72.0-)"' in finding.message
    assert "may be reported together" in finding.message
    assert finding.source == f"{RELEASE}, Excludes2 note at S32"


def test_chapter_wide_excludes2_is_not_a_finding(store: CodeStore) -> None:
    """Chapter 10's Excludes2 names all of E00-E88; diabetes with influenza is no news."""
    assert any(
        n.kind == "excludes2" and "(E00-E88)" in n.text for n in store.lookup("J11.00").notes
    )
    found = findings(store, ["E11.9", "J11.00"])
    assert not of_kind(found, "excludes1") and not of_kind(found, "excludes2")


def test_use_additional_code_satisfied_or_not(store: CodeStore) -> None:
    def stage_note(codes: list[str]) -> Finding:
        return next(
            f
            for f in of_kind(findings(store, codes), "use_additional_code")
            if f.source.endswith("note at E11.22")
        )

    alone = stage_note(["E11.22"])
    assert "stage of chronic kidney disease (N18.1-N18.6)" in alone.message
    assert "None of the codes in the question satisfies it." in alone.message
    assert alone.codes == ["E11.22"]
    together = stage_note(["E11.22", "N18.31"])
    assert "N18.31 in the question satisfies it." in together.message
    assert together.codes == ["E11.22", "N18.31"]


def test_inherited_use_additional_code_is_reported_once_for_all_codes(store: CodeStore) -> None:
    found = of_kind(findings(store, ["E11.22", "E11.9"]), "use_additional_code")
    control = [f for f in found if f.source.endswith("note at E11")]
    assert len(control) == 1
    assert control[0].codes == ["E11.22", "E11.9"]
    assert "insulin (Z79.4)" in control[0].message


def test_code_first(store: CodeStore) -> None:
    (alone,) = of_kind(findings(store, ["N18.31"]), "code_first")
    assert "diabetic chronic kidney disease (E08.22, E09.22, E10.22, E11.22, E13.22)" in (
        alone.message
    )
    assert "None of the codes in the question satisfies it." in alone.message
    assert alone.source == f"{RELEASE}, Code first note at N18"
    (together,) = of_kind(findings(store, ["N18.31", "E11.22"]), "code_first")
    assert "E11.22 in the question satisfies it." in together.message


def test_a_note_the_tabular_split_after_its_heading_reads_as_one(store: CodeStore) -> None:
    # A41's "Code first, if applicable, postprocedural sepsis" is stored from its comma.
    (note,) = of_kind(findings(store, ["A41.51"]), "code_first")
    assert "(note at A41, applies to A41.51): if applicable, postprocedural sepsis" in note.message


def test_code_also(store: CodeStore) -> None:
    found = of_kind(findings(store, ["J11.00", "J85.1"]), "code_also")
    abscess = next(f for f in found if f.source.endswith("note at J11.0"))
    assert "associated lung abscess, if applicable (J85.1)" in abscess.message
    assert "J85.1 in the question satisfies it." in abscess.message
    vague = next(f for f in found if f.source.endswith("note at J85.1"))
    assert "names no specific code" in vague.message


# --- NCCI -----------------------------------------------------------------------------


def practitioner(found: list[Finding]) -> list[Finding]:
    """The PTP findings from the practitioner table (the outpatient one is loaded too)."""
    return [f for f in of_kind(found, "ptp_edit") if f.source.startswith("NCCI practitioner PTP")]


def test_ptp_edit_with_an_allowed_modifier(store: CodeStore) -> None:
    (finding,) = practitioner(findings(store, ["29881", "29877"], ["59"]))
    assert finding.codes == ["29881", "29877"]
    assert "Modifier indicator 1" in finding.message
    assert "59 in the question would be allowed." in finding.message
    assert "Rationale: Misuse of column two code with column one code." in finding.message
    assert finding.source == (
        "NCCI practitioner PTP edits 32.1 revision 0, column 1 29881 / column 2 29877"
    )


def test_ptp_edit_with_a_modifier_that_does_not_bypass(store: CodeStore) -> None:
    (finding,) = practitioner(findings(store, ["29877", "29881"], ["GA"]))
    assert "GA in the question is not one that bypasses the edit." in finding.message


def test_ptp_edit_without_a_modifier(store: CodeStore) -> None:
    (finding,) = practitioner(findings(store, ["29881", "29877"]))
    assert "The question names no modifier." in finding.message


def test_ptp_edit_indicator_zero_allows_no_modifier(store: CodeStore) -> None:
    (finding,) = practitioner(findings(store, ["99291", "36000"], ["59"]))
    assert "Modifier indicator 0: no modifier lets both be paid." in finding.message
    assert "(59) does not change that" in finding.message


def test_deleted_ptp_edit_applies_only_before_its_deletion(store: CodeStore) -> None:
    assert not practitioner(findings(store, ["99213", "36415"]))
    (old,) = practitioner(findings(store, ["99213", "36415"], on=date(2002, 5, 1)))
    assert "Modifier indicator 9" in old.message


def test_mue(store: CodeStore) -> None:
    codes = [store.lookup("29881"), store.lookup("J1100", HCPCS)]
    found = of_kind(code_findings(store, codes, [], ON), "mue")
    assert [f.codes for f in found] == [["29881"], ["J1100"]]
    assert found[0].message.startswith("MUE for 29881: 1 unit(s) of service")
    assert "2 Date of Service Edit: Policy" in found[0].message
    assert found[0].source == "NCCI MUE April 1, 2026, 29881"
    assert "150 unit(s)" in found[1].message


def test_add_on_code_without_its_primary(store: CodeStore) -> None:
    (finding,) = of_kind(findings(store, ["99292"]), "add_on_code")
    assert "primary codes (99291)" in finding.message
    assert finding.source == "NCCI add-on code edits 2026 Q2, 99292"
    assert not of_kind(findings(store, ["99292", "99291"]), "add_on_code")


def test_contractor_defined_add_on_cannot_be_judged(store: CodeStore) -> None:
    assert not of_kind(findings(store, ["0054T"]), "add_on_code")


def test_without_the_practitioner_tables_only_the_outpatient_edits_are_cited(
    code_db: Path,
) -> None:
    bare = CodeStore.open(code_db)
    assert not any(bare.has(code_set) for code_set in ("ncci-ptp", "ncci-mue", "ncci-addon"))
    found = findings(bare, ["29881", "29877", "99292"], ["59"])
    assert not of_kind(found, "mue") and not practitioner(found)
    (edit,) = of_kind(found, "ptp_edit")
    assert edit.source.startswith("NCCI hospital outpatient PTP edits (CMS I/OCE 27.1.0")
    assert all("practitioner" not in f.source for f in found)
