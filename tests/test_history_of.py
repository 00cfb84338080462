"""History codes read from the tabular's "Conditions classifiable to" ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.history_of import HistoryCodes


@pytest.fixture(scope="module")
def history(code_db: Path) -> HistoryCodes:
    return HistoryCodes(db.connect(code_db))


@pytest.mark.parametrize(
    ("condition", "family", "code"),
    [
        ("C18.9", True, "Z80.0"),  # colon: "digestive organs", C15-C26
        ("C34.90", True, "Z80.1"),
        ("C18.9", False, "Z85.038"),  # the patient's own: large intestine, C18
        ("C7A.024", False, "Z85.030"),  # the narrowest range: C7A.022-C7A.025, C7A.029
        ("C61", True, None),  # Z80.4 holds it, but is a heading: the title words decide
        ("I21.9", False, None),  # Z86.7 is a heading too
    ],
)
def test_the_narrowest_billable_range_holding_the_condition(
    history: HistoryCodes, condition: str, family: bool, code: str | None
) -> None:
    found = history.of(condition, family)
    assert (found[0] if found else None) == code


def test_the_history_words_are_read_off_the_phrase(history: HistoryCodes) -> None:
    assert history.told("family history of colon cancer") == ("colon cancer", True)
    assert history.told("history of stomach cancer") == ("stomach cancer", False)
    assert history.told("colon cancer") is None
