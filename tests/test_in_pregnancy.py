"""A pregnant patient's condition read as the chapter 15 code whose tabular range holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.in_pregnancy import InPregnancy
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore


@pytest.fixture(scope="module")
def pregnancy(code_db: Path) -> InPregnancy:
    return InPregnancy(db.connect(code_db))


@pytest.fixture(scope="module")
def search(code_db: Path) -> CodeSearch:
    return CodeSearch(CodeStore(db.connect(code_db)))


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ("E03.9", "O99.280"),  # O99.2 "Conditions in E00-E89", not the obesity subcategory
        ("E66.9", "O99.210"),  # O99.21's "use additional code ... (E66.-)" is narrower
        ("F10.20", "O99.310"),  # alcohol use: O99.31's range, not O99.34's
        ("F32.A", "O99.340"),  # "F01-F09, F20-F52 and F54-F99"
        ("J45.909", "O99.519"),
        ("D64.9", "O99.019"),
        ("B18.2", "O98.419"),
        ("C50.911", "O9A.119"),
        ("H10.9", "O99.891"),  # O99.8's ranges: the "other specified" code, not O99.84's
        ("Z00.00", None),  # no chapter 15 range holds a Z code
    ],
)
def test_the_narrowest_range_holding_the_condition(
    pregnancy: InPregnancy, condition: str, code: str | None
) -> None:
    found = pregnancy.of(condition)
    assert (found[0] if found else None) == code


def test_the_pregnancy_words_are_read_off_the_phrase(pregnancy: InPregnancy) -> None:
    assert pregnancy.told("asthma in pregnancy") == "asthma"
    assert pregnancy.told("pregnant pt with hypothyroidism") == "with hypothyroidism"
    assert pregnancy.told("depression, 2nd trimester") == "depression"
    assert pregnancy.told("asthma") is None
    # the provider says it does not bear on the pregnancy: Z33.1 (I.C.15.a.1)
    assert pregnancy.told("pregnant, incidental asthma") is None
    assert pregnancy.told("postpartum depression") is None


@pytest.mark.parametrize(
    ("phrase", "first", "beside"),
    [
        ("asthma in pregnancy", "O99.519", "J45.909"),
        ("pregnant w/ depression, 3rd trimester", "O99.343", "F32.A"),
        ("IUP at 30 wks w/ hypothyroid", "O99.283", "E03.9"),  # the weeks give the trimester
    ],
)
def test_a_pregnant_patients_condition_is_chapter_15_first(
    search: CodeSearch, phrase: str, first: str, beside: str
) -> None:
    hits = search.search(phrase, limit=5)
    assert hits[0].code == first
    assert beside in [hit.code for hit in hits[:3]]
    assert "Z33.1" not in [hit.code for hit in hits]


def test_a_chapter_15_code_naming_the_condition_wins(search: CodeSearch) -> None:
    # O23.4- names the urinary infection itself: no O99.89 + N39.0 for it
    assert search.search("UTI in pregnancy", limit=1)[0].code == "O23.40"
    assert search.search("HTN in pregnancy", limit=1)[0].code.startswith(("O13", "O16", "O10"))


@pytest.mark.parametrize(
    ("phrase", "code"),
    [
        ("gestational diabetes on insulin", "O24.414"),
        ("GDM on metformin", "O24.415"),
        ("GDM A2 on insulin at 32 wks", "O24.414"),
    ],
)
def test_gestational_diabetes_by_its_control_without_z79(
    search: CodeSearch, phrase: str, code: str
) -> None:
    codes = [hit.code for hit in search.search(phrase, limit=5)]
    assert codes[0] == code
    assert "Z79.4" not in codes  # I.C.15.g: not beside O24.4-
