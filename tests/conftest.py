"""Shared fixtures: one fully loaded code database per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultant.codes import db, icd10cm, modifiers
from consultant.codes.importers import find_official_files
from consultant.codes.importing import run_import

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def code_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A code database with the bundled tabular and modifiers, and every official file in
    ../shared/data (index and tables, addenda, ICD-10-PCS, HCPCS): built once, shared.

    Tests that change it must work on a copy.
    """
    if not DATA.is_dir():
        pytest.fail(f"{DATA} is missing; CI keeps ../shared/data beside the checkout")
    path = tmp_path_factory.mktemp("codes") / "codes.sqlite"
    conn = db.connect(path)
    run_import(conn, icd10cm.CODE_SET, icd10cm.bundled_tabular(), icd10cm.load)
    modifiers.load_builtin(conn)
    for importer, source in find_official_files(DATA):
        run_import(conn, importer.code_set(source), source, importer.loader)
    conn.close()
    return path
