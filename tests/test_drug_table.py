"""The Table of Drugs read as a coder reads it, and brand names."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.drug_names import CODE_SET, generic_of
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore(db.connect(code_db, readonly=True))


def test_brand_names_are_loaded_from_the_package(store: CodeStore) -> None:
    assert store.has(CODE_SET)
    assert "drug-named-entity-recognition" in store.releases[CODE_SET].version
    assert generic_of(store.conn, "toradol") == "ketorolac"
    assert generic_of(store.conn, "coumadin") == "warfarin"
    assert generic_of(store.conn, "depo-provera") == "medroxyprogesterone"
    assert generic_of(store.conn, "type") is None


def test_a_substance_and_a_column_find_the_cell(store: CodeStore) -> None:
    drugs = CodeSearch(store)._holder.current().drugs
    assert drugs.substance_in("angioedema from Zestril") == "lisinopril"
    # as coders word the table's names: "Inhibitor, angiotensin-converting enzyme"
    assert (
        drugs.substance_in("cough from ACE inhibitors") == "inhibitor angiotensin-converting enzyme"
    )
    lead = drugs.cell_query("lead poisoning in a child")
    assert lead is not None and lead.startswith("Lead") and lead.endswith("poisoning accidental")
    cell = drugs.cell_query("hypoglycemia due to insulin, correct dose given")
    assert cell is not None and cell.startswith("Insulin") and cell.endswith("adverse effect")
    assert drugs.cell_query("pt on metformin") is None  # no column: not a Table of Drugs case
    # "he" is no plural's singular: Hes (hydroxyethyl starch) is not named by a pronoun
    assert drugs.cell_query("he could not afford it after his plan changed") is None
    # "due to", "after", "from" tell the cause they lead to, not a drug named elsewhere
    assert drugs.cell_query("gastroparesis d/t type 1 diabetes, on insulin pump") is None
    rash = drugs.cell_query("rash after taking her amoxicillin")
    assert rash is not None and rash.endswith("adverse effect")
    # a drug's own name wins over the table's "Drug NEC"
    assert drugs.substance_in("rash from sulfa drugs") == "sulfonamide"
    assert drugs.substance_in("hives from a drug") == "drug"
    assert drugs.cell_query("fell from a ladder") is None  # no substance
