"""The Official Guidelines' conventions on real codes: each trigger, its negatives, the
section each finding cites, and the answers that use them."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest

from consultant.codes.store import CodeStore
from consultant.codes.systems import BILLABLE, ICD10CM
from consultant.drafting.answers import answer_all
from consultant.drafting.extract import extract
from consultant.drafting.findings import KINDS, LABELS, Finding, code_findings
from consultant.drafting.guidelines import (
    COMBINATION,
    GUIDELINE,
    HeartFailure,
    affirmed,
    builtin_path,
    ckd_stage,
    diabetes_type,
    guideline_findings,
    heart_failure,
    hypertension_named,
    load_guidelines,
    read_conditions,
)

ON = date(2026, 5, 1)
SECTION = "ICD-10-CM Official Guidelines FY2026, section "


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore.open(code_db)


def found(store: CodeStore, codes: list[str], text: str = "", on: date = ON) -> list[Finding]:
    """The guideline findings, after checking every code they name is billable on ON."""
    infos = [store.lookup(code, on=on) for code in codes]
    result = guideline_findings(store, infos, text, on=on)
    for finding in result:
        assert finding.source.startswith(SECTION), finding.source
        for code in finding.codes:
            assert store.lookup_in(ICD10CM, code, on).status == BILLABLE, (code, finding)
    return result


def combos(result: list[Finding]) -> list[list[str]]:
    return [f.codes for f in result if f.kind == COMBINATION]


def section(result: list[Finding], key: str) -> list[Finding]:
    return [f for f in result if f.source == SECTION + key]


# --- the data file ------------------------------------------------------------------------


def test_every_rule_cites_a_section_in_the_guidelines() -> None:
    rules = load_guidelines().rules
    sources = {rule.source.removeprefix(SECTION) for rule in rules.values()}
    assert all(rule.source.startswith(SECTION) for rule in rules.values())
    assert all(rule.rule and rule.title for rule in rules.values())
    for wanted in (
        "I.A.12.a",
        "I.A.12.b",
        "I.A.13",
        "I.A.15",
        "I.B.4",
        "I.B.5",
        "I.B.7",
        "I.B.9",
        "I.B.13",
        "I.C.4.a",
        "I.C.9.a.1",
        "I.C.9.a.2",
        "I.C.9.a.3",
        "I.C.12.a",
        "I.C.15.g",
        "I.C.19.a",
        "I.C.19.c",
        "I.C.19.e",
        "I.C.20",
        "II.H",
        "IV.H",
    ):
        assert wanted in sources, wanted
    assert tomllib.loads(builtin_path().read_text())["version"]


def test_every_code_the_maps_suggest_is_billable(store: CodeStore) -> None:
    rules = load_guidelines()
    table = rules.hypertension
    codes = [
        table["heart_failure"],
        *table["ckd"].values(),
        *table["heart_failure_and_ckd"].values(),
        *(stages[0] for stages in rules.ckd_stages.values()),
        rules.heart_failure["unspecified"],
        *(code for kind in rules.heart_failure["types"].values() for code in kind.values()),
        *(code for code, _words in rules.medications.values()),
    ]
    for code in codes:
        assert store.lookup_in(ICD10CM, code, ON).status == BILLABLE, code


def test_the_finding_kinds_are_labelled() -> None:
    assert {GUIDELINE, COMBINATION} <= set(KINDS)
    assert LABELS[GUIDELINE] == "Coding guideline"
    assert LABELS[COMBINATION] == "Combination code"


# --- reading the words --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("CKD stage 4", "4"),
        ("CKD 3a", "3a"),
        ("CKD3b", "3b"),
        ("CKD, stage 3B", "3b"),
        ("stage IIIb CKD", "3b"),
        ("chronic kidney disease stage 3", "3"),
        ("stage 2 chronic kidney disease", "2"),
        ("CKD 1", "1"),
        ("CKD stage V", "5"),
        ("ESRD on dialysis", "esrd"),
        ("end-stage renal disease", "esrd"),
        ("CKD", "unspecified"),
        ("no CKD", None),
        ("HTN, no CKD", None),
        ("HTN with no CKD", None),
        ("denies chronic kidney disease", None),
        ("r/o CKD", None),
        ("no history of CKD", None),
        ("hypertension", None),
    ],
)
def test_ckd_stage(text: str, stage: str | None) -> None:
    assert ckd_stage(text) == stage


@pytest.mark.parametrize(
    ("text", "failure"),
    [
        ("chronic diastolic heart failure", HeartFailure("diastolic", "chronic")),
        ("chronic diastolic (congestive) heart failure", HeartFailure("diastolic", "chronic")),
        ("acute on chronic systolic CHF", HeartFailure("systolic", "acute_on_chronic")),
        (
            "chronic combined systolic and diastolic heart failure",
            HeartFailure("combined", "chronic"),
        ),
        ("systolic and diastolic HF", HeartFailure("combined", None)),
        ("acute HFrEF", HeartFailure("systolic", "acute")),
        ("HFpEF", HeartFailure("diastolic", None)),
        ("heart failure with reduced ejection fraction", HeartFailure("systolic", None)),
        ("CHF", HeartFailure(None, None)),
        ("right heart failure", HeartFailure(None, None, coded=False)),
        ("no heart failure", None),
        ("without CHF", None),
    ],
)
def test_heart_failure(text: str, failure: HeartFailure | None) -> None:
    assert heart_failure(text) == failure


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("DM2", "2"),
        ("DM 2", "2"),
        ("DM II", "2"),
        ("T2DM", "2"),
        ("type 2 diabetic", "2"),
        ("type II diabetes", "2"),
        ("diabetes mellitus, type 1", "1"),
        ("T1DM", "1"),
        ("diabetic", "unspecified"),
        ("DM, I think", "unspecified"),
        ("no diabetes", None),
        ("non-diabetic", None),
        ("gestational diabetes", None),
        ("prediabetes", None),
        ("pre-diabetes", None),
        ("steroid-induced diabetes", None),
        ("diabetes insipidus", None),
        ("DME supplies", None),
    ],
)
def test_diabetes_type(text: str, kind: str | None) -> None:
    assert diabetes_type(text) == kind


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("HTN", True),
        ("hypertensive", True),
        ("high blood pressure", True),
        ("pulmonary hypertension", False),
        ("pre-hypertension", False),
        ("denies hypertension", False),
        ("no HTN but has CKD", False),
    ],
)
def test_hypertension_named(text: str, named: bool) -> None:
    assert hypertension_named(text) is named


def test_negation_and_uncertainty_stay_in_their_clause() -> None:
    text = "Patient has no HTN but has CKD 2"
    assert not affirmed(text, text.index("HTN"))
    assert affirmed(text, text.index("CKD"))
    assert read_conditions("DM2 on insulin and metformin").medications == ("insulin", "oral")
    assert read_conditions("DM2 on non-insulin Ozempic").medications == ("injectable",)
    assert read_conditions("DM2, not on insulin").medications == ()


# --- symptoms integral to the diagnosis (I.B.5) -------------------------------------------


@pytest.mark.parametrize(
    ("symptom", "diagnosis", "words"),
    [
        ("R10.9", "K35.80", "abdominal pain is integral to appendicitis"),
        ("R10.31", "K35.80", "abdominal pain is integral to appendicitis"),
        ("R50.9", "J18.9", "fever is integral to pneumonia"),
        ("R05.9", "J20.9", "cough is integral to acute bronchitis"),
        ("R07.9", "I21.9", "chest pain is integral to an acute myocardial infarction"),
        ("R51.9", "G43.909", "headache is integral to migraine"),
    ],
)
def test_a_symptom_integral_to_the_diagnosis_is_not_coded(
    store: CodeStore, symptom: str, diagnosis: str, words: str
) -> None:
    (finding,) = section(found(store, [symptom, diagnosis]), "I.B.5")
    assert finding.kind == GUIDELINE and finding.codes == [symptom, diagnosis]
    assert finding.message.startswith(f"{symptom} is not coded with {diagnosis}: {words}")


@pytest.mark.parametrize(
    "codes", [["R10.9", "I10"], ["R10.9"], ["K35.80"], ["R50.81", "J18.9"], ["R05.9", "K35.80"]]
)
def test_no_integral_finding_for_unrelated_or_single_codes(
    store: CodeStore, codes: list[str]
) -> None:
    assert not section(found(store, codes), "I.B.5")


# --- hypertension (I.C.9.a) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "combination", "key"),
    [
        (["I10", "N18.4"], ["I12.9", "N18.4"], "I.C.9.a.2"),
        (["I10", "N18.9"], ["I12.9", "N18.9"], "I.C.9.a.2"),
        (["N18.5", "I10"], ["I12.0", "N18.5"], "I.C.9.a.2"),
        (["I10", "N18.6"], ["I12.0", "N18.6"], "I.C.9.a.2"),
        (["I10", "I50.32"], ["I11.0", "I50.32"], "I.C.9.a.1"),
        (["I10", "I50.32", "N18.4"], ["I13.0", "I50.32", "N18.4"], "I.C.9.a.3"),
        (["I10", "I50.9", "N18.6"], ["I13.2", "I50.9", "N18.6"], "I.C.9.a.3"),
        (["I11.0", "I50.22", "N18.31"], ["I13.0", "I50.22", "N18.31"], "I.C.9.a.3"),
        (["I11.9", "N18.4"], ["I13.10", "N18.4"], "I.C.9.a.3"),
        (["I12.9", "N18.5"], ["I12.0", "N18.5"], "I.C.9.a.2"),
    ],
)
def test_hypertension_named_with_kidney_or_heart_failure_codes(
    store: CodeStore, codes: list[str], combination: list[str], key: str
) -> None:
    result = found(store, codes)
    assert combos(result) == [combination]
    (finding,) = section(result, key)
    assert finding.message.startswith(f"{codes[0] if codes[0][0] == 'I' else 'I10'} is not")


@pytest.mark.parametrize(
    "codes", [["I10"], ["N18.4"], ["I50.9"], ["I12.9", "N18.4"], ["I10", "E11.9"]]
)
def test_no_hypertension_combination_without_both_or_when_already_right(
    store: CodeStore, codes: list[str]
) -> None:
    assert combos(found(store, codes)) == []


@pytest.mark.parametrize(
    ("text", "combination", "key"),
    [
        ("Patient has HTN and CKD stage 4, what codes?", ["I12.9", "N18.4"], "I.C.9.a.2"),
        ("hypertension with ESRD", ["I12.0", "N18.6"], "I.C.9.a.2"),
        (
            "hypertension with CKD 3a and chronic diastolic heart failure",
            ["I13.0", "I50.32", "N18.31"],
            "I.C.9.a.3",
        ),
        (
            "CKD 3b with chronic diastolic HF and HTN",
            ["I13.0", "I50.32", "N18.32"],
            "I.C.9.a.3",
        ),
        (
            "HTN, ESRD, acute on chronic combined systolic and diastolic CHF",
            ["I13.2", "I50.43", "N18.6"],
            "I.C.9.a.3",
        ),
        ("HTN and CHF", ["I11.0", "I50.9"], "I.C.9.a.1"),
        ("HTN with HFrEF, acute", ["I11.0", "I50.20"], "I.C.9.a.1"),
    ],
)
def test_hypertension_combinations_from_words(
    store: CodeStore, text: str, combination: list[str], key: str
) -> None:
    result = found(store, [], text)
    assert combos(result) == [combination]
    assert section(result, key)[0].message.startswith("Hypertension with")


@pytest.mark.parametrize(
    "text",
    [
        "HTN, no CKD",
        "Patient with HTN denies CKD",
        "HTN; r/o CKD",
        "pulmonary hypertension with CKD 3",
        "CKD stage 4 and CHF",
        "HTN only",
    ],
)
def test_no_hypertension_combination_from_negated_or_missing_words(
    store: CodeStore, text: str
) -> None:
    assert combos(found(store, [], text)) == []


def test_the_message_names_the_stage(store: CodeStore) -> None:
    (finding,) = found(store, ["I10", "N18.31"])
    assert "with chronic kidney disease stage 3a: report I12.9" in finding.message


def test_words_complete_a_named_code(store: CodeStore) -> None:
    result = found(store, ["I10"], "Is I10 right? The patient also has CKD stage 3b.")
    assert combos(result) == [["I12.9", "N18.32"]]


def test_right_heart_failure_leaves_the_type_to_the_record(store: CodeStore) -> None:
    (finding,) = found(store, [], "HTN with right heart failure")
    assert finding.codes == ["I11.0"] and "Add the I50 code" in finding.message


# --- diabetes (I.C.4.a) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "combination"),
    [
        (["E11.9", "N18.31"], ["E11.22", "N18.31"]),
        (["E10.9", "N18.4"], ["E10.22", "N18.4"]),
        (["E13.9", "N18.4"], ["E13.22", "N18.4"]),
        (["E11.9", "G62.9"], ["E11.42"]),
        (["E11.9", "G60.9"], ["E11.40"]),
        (["E11.9", "L97.529"], ["E11.621", "L97.529"]),
        (["E11.9", "L97.109"], ["E11.622", "L97.109"]),
        (["E11.9", "I73.9"], ["E11.51"]),
        (["E11.9", "K31.84"], ["E11.43", "K31.84"]),
        (["E11.9", "H35.00"], ["E11.319"]),
    ],
)
def test_diabetes_named_with_a_linked_complication_code(
    store: CodeStore, codes: list[str], combination: list[str]
) -> None:
    result = found(store, codes)
    assert combos(result) == [combination]
    (finding,) = section(result, "I.C.4.a")
    assert finding.message.startswith(f"{codes[0]} is not reported with {codes[1]}")
    assert "I.A.15" in finding.message


@pytest.mark.parametrize(
    "codes", [["E11.9"], ["E11.9", "J18.9"], ["E11.22", "N18.31"], ["G62.9", "N18.4"]]
)
def test_no_diabetes_combination_when_nothing_links(store: CodeStore, codes: list[str]) -> None:
    assert combos(found(store, codes)) == []


@pytest.mark.parametrize(
    ("text", "combination"),
    [
        ("DM2 with CKD 3a", ["E11.22", "N18.31"]),
        ("type 2 diabetic with stage 4 CKD", ["E11.22", "N18.4"]),
        ("type 1 diabetes with CKD stage 2", ["E10.22", "N18.2"]),
        ("T2DM with ESRD", ["E11.22", "N18.6"]),
        ("DM2 with gastroparesis", ["E11.43", "K31.84"]),
        ("DM2 with peripheral neuropathy", ["E11.42"]),
        ("DM2, poorly controlled", ["E11.65"]),
    ],
)
def test_diabetes_combinations_from_words(
    store: CodeStore, text: str, combination: list[str]
) -> None:
    result = found(store, [], text)
    assert combos(result) == [combination]
    assert section(result, "I.C.4.a")


def test_diabetes_of_no_stated_type_defaults_to_type_2(store: CodeStore) -> None:
    (finding,) = found(store, [], "diabetic with CKD 3")
    assert finding.codes == ["E11.22", "N18.30"]
    assert "default is type 2" in finding.message


def test_a_code_not_yet_valid_on_the_date_falls_back(store: CodeStore) -> None:
    before = date(2020, 1, 1)  # N18.31 starts on 2020-10-01; N18.3 was billable before
    assert combos(found(store, [], "DM2 with CKD 3a", on=before)) == [["E11.22", "N18.3"]]


def test_diabetes_hypertension_and_ckd_give_both_combinations(store: CodeStore) -> None:
    result = found(store, [], "DM2 and HTN with CKD stage 3b")
    assert sorted(combos(result)) == [["E11.22", "N18.32"], ["I12.9", "N18.32"]]


@pytest.mark.parametrize(
    "text", ["DM2, no CKD", "DM2 without CKD", "gestational diabetes with CKD 3", "CKD 3a"]
)
def test_no_diabetes_combination_from_negated_or_missing_words(store: CodeStore, text: str) -> None:
    assert combos(found(store, [], text)) == []


@pytest.mark.parametrize(
    ("codes", "text", "z_codes"),
    [
        ([], "DM2 on insulin and metformin", ["Z79.4", "Z79.84"]),
        (["E11.9"], "on Ozempic", ["Z79.85"]),
        (["E11.9", "Z79.4"], "", ["Z79.4"]),
        ([], "diabetic on insulin", ["Z79.4"]),
    ],
)
def test_long_term_diabetes_drugs(
    store: CodeStore, codes: list[str], text: str, z_codes: list[str]
) -> None:
    (finding,) = section(found(store, codes, text), "I.C.4.a.3")
    assert finding.codes == z_codes


def test_type_1_diabetes_gets_no_z79_code(store: CodeStore) -> None:
    (finding,) = section(found(store, ["E10.9"], "type 1 on insulin"), "I.C.4.a.3")
    assert finding.codes == ["E10.9"] and "no note" in finding.message


@pytest.mark.parametrize(
    ("codes", "text"), [([], "DM2, not on insulin"), ([], "on insulin"), (["I10"], "metformin")]
)
def test_no_drug_finding_without_diabetes_or_the_drug(
    store: CodeStore, codes: list[str], text: str
) -> None:
    assert not section(found(store, codes, text), "I.C.4.a.3")


# --- 7th characters (I.C.19.a, I.C.19.c) --------------------------------------------------


def test_seventh_character_meaning_when_the_encounter_is_asked(store: CodeStore) -> None:
    result = found(store, ["S72.001A"], "Is the 7th character A right for a follow-up visit?")
    (general,) = section(result, "I.C.19.a")
    assert general.message.startswith("S72.001A ends in A (initial encounter")
    assert "D is for care after active treatment" in general.message
    assert section(result, "I.C.19.c")  # a fracture


def test_sequela_names_its_order(store: CodeStore) -> None:
    (finding,) = section(found(store, ["S06.0X0S"], "sequela of concussion"), "I.C.19.a")
    assert "I.B.10" in finding.message and "S06.0X0S ends in S" in finding.message
    assert not section(found(store, ["S06.0X0S"], "sequela"), "I.C.19.c")  # not a fracture


@pytest.mark.parametrize(
    ("codes", "text"),
    [(["S72.001A"], "Is S72.001A billable?"), (["J18.9"], "initial encounter"), ([], "7th")],
)
def test_no_seventh_character_lecture_unless_asked_about_an_injury_code(
    store: CodeStore, codes: list[str], text: str
) -> None:
    assert not section(found(store, codes, text), "I.C.19.a")


# --- uncertain diagnoses (IV.H; II.H) -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Probable pneumonia at the office visit, can I code J18.9?", "IV.H"),
        ("ER note says r/o pneumonia", "IV.H"),
        ("suspected appendicitis", "IV.H"),
        ("likely viral pneumonia", "IV.H"),
        ("Inpatient discharged with probable pneumonia", "II.H"),
    ],
)
def test_uncertain_diagnosis_words(store: CodeStore, text: str, key: str) -> None:
    (finding,) = section(found(store, ["J18.9"], text), key)
    assert finding.kind == GUIDELINE


def test_the_outpatient_rule_names_the_inpatient_exception_when_no_setting(
    store: CodeStore,
) -> None:
    (finding,) = section(found(store, [], "questionable UTI"), "IV.H")
    assert "inpatient exception" in finding.message


@pytest.mark.parametrize(
    "text", ["Is it likely to be denied?", "Is it possible to bill both?", "pneumonia"]
)
def test_no_uncertain_finding_for_ordinary_words(store: CodeStore, text: str) -> None:
    result = found(store, ["J18.9"], text)
    assert not section(result, "IV.H") and not section(result, "II.H")


# --- poisoning, external causes, manifestations -------------------------------------------


@pytest.mark.parametrize(
    ("codes", "start"),
    [
        (["T38.3X5A", "R55"], "T38.3X5A is an adverse effect code: list R55, the effect itself,"),
        (["T39.016A"], "T39.016A is an underdosing code: list the condition"),
        (["T39.011A", "K92.2"], "T39.011A is a poisoning code: list it first"),
    ],
)
def test_poisoning_adverse_effect_and_underdosing(
    store: CodeStore, codes: list[str], start: str
) -> None:
    (finding,) = section(found(store, codes), "I.C.19.e")
    assert finding.message.startswith(start)


@pytest.mark.parametrize("codes", [["R55"], ["T51.0X1A"], ["Z79.4"]])
def test_no_poisoning_finding_without_a_drug_code(store: CodeStore, codes: list[str]) -> None:
    assert not section(found(store, codes), "I.C.19.e")


def test_external_cause_named_alone_or_first(store: CodeStore) -> None:
    (alone,) = section(found(store, ["W19.XXXA"]), "I.C.20")
    assert "never listed first" in alone.message
    (first,) = section(found(store, ["W19.XXXA", "S72.001A"]), "I.C.20")
    assert "list S72.001A first, then W19.XXXA" in first.message
    assert not section(found(store, ["S72.001A", "W19.XXXA"]), "I.C.20")


def test_manifestation_code_named_first(store: CodeStore) -> None:
    (finding,) = section(found(store, ["G63"]), "I.A.13")
    assert "cannot be listed first" in finding.message
    assert not section(found(store, ["E85.1", "G63"]), "I.A.13")


# --- laterality (I.B.13) and pressure ulcers (I.C.12.a) -----------------------------------


def test_unspecified_side_names_the_sided_codes(store: CodeStore) -> None:
    (finding,) = section(found(store, ["M25.569"]), "I.B.13")
    assert finding.codes == ["M25.569", "M25.561", "M25.562"]
    (eye,) = section(found(store, ["H40.1190"]), "I.B.13")
    assert "both: H40.1130" in eye.message


def test_both_sides_without_a_bilateral_code(store: CodeStore) -> None:
    (finding,) = section(found(store, ["M25.561"], "bilateral knee pain"), "I.B.13")
    assert finding.codes == ["M25.561", "M25.562"]
    assert not section(found(store, ["M25.561"], "right knee pain"), "I.B.13")


def test_pressure_ulcer_site_and_stage(store: CodeStore) -> None:
    (finding,) = section(found(store, ["L89.159"]), "I.C.12.a")
    assert finding.message.startswith("L89.159 is the unspecified-stage code")
    assert section(found(store, [], "stage 3 sacral pressure ulcer"), "I.C.12.a")
    assert not section(found(store, ["L97.529"], "no pressure ulcer"), "I.C.12.a")


def test_gestational_diabetes_takes_no_z79_4(store: CodeStore) -> None:
    (finding,) = section(found(store, ["Z79.4"], "GDM, now on insulin"), "I.C.15.g")
    assert finding.codes == ["O24.414", "Z79.4"]
    assert finding.message.startswith("No Z79.4 beside gestational diabetes")
    (oral,) = section(found(store, [], "gestational diabetes on metformin"), "I.C.15.g")
    assert oral.codes == ["O24.415"]
    # gestational diabetes is no type 2 diabetes by default: no "add Z79.4" (I.C.4.a.3)
    assert not section(found(store, [], "GDM on insulin"), "I.C.4.a.3")
    assert not section(found(store, ["Z79.4"], "DM2 on insulin"), "I.C.15.g")


# --- wired into code_findings and the answers ---------------------------------------------


def test_code_findings_passes_the_question_text(store: CodeStore) -> None:
    infos = [store.lookup("I10", on=ON)]
    with_text = code_findings(store, infos, [], ON, text="HTN with CKD stage 4")
    assert combos(with_text) == [["I12.9", "N18.4"]]
    assert combos(code_findings(store, infos, [], ON)) == []


def answers(store: CodeStore, text: str) -> list:
    codes = extract(text, store, ON).codes
    findings = code_findings(store, [m.info for m in codes], [], ON, text=text)
    return answer_all(text, codes, findings, [], None)


def test_a_guideline_settles_an_icd_pair_before_an_excludes_note(store: CodeStore) -> None:
    text = "R10.9 with K35.80?"
    codes = extract(text, store, ON).codes
    findings = code_findings(store, [m.info for m in codes], [], ON, text=text)
    excludes = Finding("excludes1", ["R10.9", "K35.80"], "An Excludes1 note.", "ICD-10-CM")
    (answer,) = answer_all(text, codes, [excludes, *findings], [], None)
    assert answer.kind == "billed_together" and answer.confidence == "high"
    assert answer.answer.startswith("R10.9 is not coded with K35.80: abdominal pain is integral")
    (plain,) = answer_all(text, codes, [excludes], [], None)
    assert plain.answer == "An Excludes1 note."  # without the guideline, the note decides


@pytest.mark.parametrize(
    ("text", "kind", "start"),
    [
        ("Can I bill R10.9 and K35.80 together?", "billed_together", "R10.9 is not coded"),
        ("Which goes first, I10 or N18.4?", "sequencing", "I10 is not the code for hyper"),
        ("I10 with N18.4?", "billed_together", "I10 is not the code for hypertension"),
        ("Which goes first, W19.XXXA or S72.001A?", "sequencing", "W19.XXXA (Unspecified"),
        ("Patient has HTN and CKD stage 4, what codes?", "code_for", "Hypertension with chronic"),
        ("What's the code for DM2 with CKD 3a?", "code_for", "Type 2 diabetes with chronic"),
    ],
)
def test_answers_use_the_guideline_findings(
    store: CodeStore, text: str, kind: str, start: str
) -> None:
    (answer,) = answers(store, text)
    assert answer.kind == kind
    assert answer.answer.startswith(start)


def test_whether_to_add_a_code_a_guideline_rules_out(store: CodeStore) -> None:
    (answer,) = answers(store, "GDM, now on NPH. Do I still add Z79.4 for the insulin?")
    assert answer.kind == "billed_together" and answer.confidence == "high"
    assert answer.answer.startswith("No Z79.4 beside gestational diabetes")
    (plain,) = answers(store, "DM2 on insulin. Do I still add Z79.4?")
    assert plain.kind == "validity"  # nothing rules it out: whether the code is billable


def test_a_pair_no_rule_settles_keeps_its_old_answer(store: CodeStore) -> None:
    (answer,) = answers(store, "E11.9 and I10?")
    assert answer.kind == "validity" and answer.answer.startswith("Yes: E11.9")


def test_another_questions_conditions_do_not_answer_a_code_question(store: CodeStore) -> None:
    text = "HTN and CKD 4. Which goes first, I10 or N18.4? What code for a sacral pressure ulcer?"
    first, ulcer = answers(store, text)
    assert first.answer.startswith("I10 is not the code for hypertension")
    assert "I12.9" not in ulcer.answer
    (single,) = answers(store, "Patient has HTN and CKD 4. Which codes?")
    assert single.answer.startswith("Hypertension with chronic kidney disease stage 4")
