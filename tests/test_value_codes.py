"""Codes a stated number decides: BMI values (Z68) and weeks of a pregnancy (Z3A)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.codes.value_codes import bmi_code, gestation_code


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore(db.connect(code_db, readonly=True))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("BMI 32.5", "Z68.32"),
        ("BMI of 41", "Z68.41"),
        ("adult, BMI=19", "Z68.1"),
        ("BMI 72", "Z68.45"),
        ("BMI 29.9", "Z68.29"),
    ],
)
def test_a_bmi_value_finds_its_range(store: CodeStore, text: str, code: str) -> None:
    found = bmi_code(store.conn, text)
    assert found is not None and found.code == code
    assert CodeSearch(store).search(text, limit=1)[0].code == code


def test_a_pediatric_bmi_is_not_read_as_an_adult_value(store: CodeStore) -> None:
    assert bmi_code(store.conn, "BMI 22, 9 yo, 90th percentile") is None
    assert bmi_code(store.conn, "obesity") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("IUP at 12 wks", "Z3A.12"),
        ("pregnant, 32 weeks", "Z3A.32"),
        ("G1P0 at 6 weeks", "Z3A.01"),
        ("41+3/7 weeks gestation", "Z3A.41"),
        ("pregnancy at 43 weeks", "Z3A.49"),
    ],
)
def test_weeks_of_a_pregnancy_find_their_code(store: CodeStore, text: str, code: str) -> None:
    found = gestation_code(store.conn, text)
    assert found is not None and found.code == code
    assert CodeSearch(store).search(text, limit=1)[0].code == code


def test_weeks_that_are_no_pregnancys_are_not_read(store: CodeStore) -> None:
    assert gestation_code(store.conn, "cough for 3 weeks") is None
    assert gestation_code(store.conn, "R distal radius fx, 8 weeks post, routine healing") is None
    # the week something happened in a pregnancy is not the week it is in now
    switched = "on metformin before pregnancy, switched to insulin at 8 wks"
    assert gestation_code(store.conn, switched) is None


@pytest.mark.parametrize(
    ("text", "first", "beside"),
    [
        # the condition leads and the value is coded beside it, never instead of it
        ("morbid obesity, BMI 42", "E66.01", "Z68.41"),
        # the weeks give the trimester the O code's title names (I.C.15.a.3)
        ("G2P1 at 32 weeks with gestational HTN", "O13.3", "Z3A.32"),
        ("preeclampsia at 34 weeks", "O14.93", "Z3A.34"),
        ("UTI in pregnancy, 20 wks", "O23.42", "Z3A.20"),
    ],
)
def test_a_condition_with_a_value_leads_and_the_value_goes_beside_it(
    store: CodeStore, text: str, first: str, beside: str
) -> None:
    hits = CodeSearch(store).search(text, limit=5)
    assert hits[0].code == first
    value = next(h for h in hits if h.code == beside)
    assert value.alongside
