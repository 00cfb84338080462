"""Which modifier a question's codes and words call for."""

from __future__ import annotations

from consultant.codes.store import CodeInfo
from consultant.codes.systems import CPT, HCPCS
from consultant.drafting.findings import Finding
from consultant.drafting.modifier_choice import choose


def _info(code: str, system: str = CPT) -> CodeInfo:
    return CodeInfo(code=code, system=system, status="billable", title=None)


def _pair(column1: str, column2: str, indicator: str) -> Finding:
    return Finding(
        "ptp_edit",
        [column1, column2],
        f"{column2} is a column-two code of {column1}. Modifier indicator {indicator}: ...",
        "NCCI hospital outpatient PTP edits",
    )


def test_a_visit_with_a_same_day_procedure_takes_25_on_the_visit() -> None:
    (choice,) = choose(
        "Est. pt, full eval of a new problem, then a joint injection same day.",
        [_info("99213"), _info("20610")],
        [],
    )
    assert (choice.modifier, choice.code) == ("25", "99213")
    assert "25 on 99213" in choice.sentence()
    # the decision for major surgery takes 57 instead
    (choice,) = choose(
        "Visit the day before; decision for surgery was made.", [_info("99204"), _info("27447")], []
    )
    assert (choice.modifier, choice.code) == ("57", "99204")
    # a problem visit with Medicare's wellness visit
    (choice,) = choose("AWV and a problem visit", [_info("G0439", HCPCS), _info("99213")], [])
    assert (choice.modifier, choice.code) == ("25", "99213")


def test_a_column_two_code_of_a_pair_that_allows_it_takes_a_distinct_service_modifier() -> None:
    pair = _pair("97530", "97140", "1")
    (choice,) = choose("PT did both in the session", [_info("97140"), _info("97530")], [pair])
    assert (choice.modifier, choice.code) == ("59", "97140")
    (choice,) = choose(
        "two lesions at a separate site",
        [_info("11102"), _info("11104")],
        [_pair("11104", "11102", "1")],
    )
    assert choice.modifier == "XS"
    assert (
        choose("same knee", [_info("29881"), _info("29877")], [_pair("29881", "29877", "0")]) == []
    )


def test_global_period_side_and_screening_words() -> None:
    modifiers = [
        c.modifier
        for c in choose(
            "Second cataract, L eye, inside the 90-day global of the R eye surgery.",
            [_info("66984")],
            [],
        )
    ]
    assert modifiers[0] == "79"
    choices = choose("Medicare screening colonoscopy, polyp removed by snare", [_info("45385")], [])
    assert [c.modifier for c in choices] == ["PT"]
    choices = choose("commercial plan, screening colonoscopy, polyp removed", [_info("45385")], [])
    assert [c.modifier for c in choices] == ["33"]


def test_each_case_of_a_global_period_gets_its_own_modifier() -> None:
    """The setting is told once ("all within the 90-day global"); each case's own words
    choose: a return to the OR for a complication, an unrelated procedure, a planned one."""
    story = "Three cases, all within the 90-day global of the first surgery."
    cases = [
        ("Back to OR for I&D of a surgical site infection. Billing 10180.", "10180", "78"),
        ("An unrelated L carpal tunnel release (64721). Modifier?", "64721", "79"),
        ("Planned removal of the ex-fix (20694), planned at the first surgery.", "20694", "58"),
    ]
    for text, code, modifier in cases:
        assert choose(text, [_info(code)], [], story)[0].modifier == modifier
    assert choose(story, [_info("20694")], []) == []  # no case told: nothing to choose


def test_reads_and_repeats_of_a_test() -> None:
    (choice,) = choose(
        "Our group reads portable CXRs at the hospital (hospital owns the equipment).",
        [_info("71046")],
        [],
    )
    assert choice.modifier == "26"
    modifiers = [c.modifier for c in choose("Dr. A bills 93010 twice", [_info("93010")], [])]
    assert "76" in modifiers
