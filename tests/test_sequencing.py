"""What goes first, by the Official Guidelines' sequencing rules."""

from __future__ import annotations

from consultant.drafting.sequencing import ordered


def test_the_chemotherapy_encounter_goes_before_the_cancer() -> None:
    order, why = ordered(
        [
            ("C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung"),
            ("Z51.11", "Encounter for antineoplastic chemotherapy"),
        ]
    )
    assert order == ["Z51.11", "C34.11"]
    assert any("I.C.2.e.2" in reason for reason in why)


def test_an_adverse_effect_follows_its_effect_and_a_poisoning_leads() -> None:
    order, why = ordered(
        [
            ("T46.4X5A", "Adverse effect of angiotensin-converting-enzyme inhibitors"),
            ("R05.2", "Subacute cough"),
        ]
    )
    assert order == ["R05.2", "T46.4X5A"] and "I.C.19.e.5(a)" in why[0]
    order, _ = ordered(
        [("R40.20", "Unspecified coma"), ("T40.2X1A", "Poisoning by other opioids, accidental")]
    )
    assert order == ["T40.2X1A", "R40.20"]


def test_sepsis_leads_and_external_causes_and_status_codes_follow() -> None:
    order, _ = ordered(
        [
            ("N39.0", "Urinary tract infection, site not specified"),
            ("R65.20", "Severe sepsis without septic shock"),
            ("A41.51", "Sepsis due to Escherichia coli [E. coli]"),
        ]
    )
    assert order == ["A41.51", "N39.0", "R65.20"]
    order, why = ordered(
        [
            ("W11.XXXA", "Fall from or off ladder, initial encounter"),
            ("Z79.01", "Long term (current) use of anticoagulants"),
            ("S72.001A", "Fracture of unspecified part of neck of right femur"),
        ]
    )
    assert order == ["S72.001A", "Z79.01", "W11.XXXA"]
    assert any("I.C.20" in reason for reason in why)


def test_no_rule_no_reason() -> None:
    codes = [("I10", "Essential (primary) hypertension"), ("E78.5", "Hyperlipidemia")]
    assert ordered(codes) == (["I10", "E78.5"], [])
