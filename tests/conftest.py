"""Shared fixtures: one fully loaded code database per test session; ticket databases
on SQLite and PostgreSQL; the real servers of tests/servers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine

from consultant.codes import db
from consultant.codes.importers import IMPORTERS, find_official_files, with_bundled
from consultant.codes.importing import run_import
from consultant.database.migrate import open_database

pytest_plugins = ("tests.servers.fixtures",)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"


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
    for importer, source in with_bundled(find_official_files(DATA)):
        run_import(conn, importer.code_set(source), source, importer.loader)
    conn.close()
    return path


NCCI_FIXTURES = (
    ("ncci-ptp", FIXTURES / "ncci" / "ccipra-v321r0-f1.txt"),
    ("ncci-mue", FIXTURES / "ncci" / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"),
    ("ncci-addon", FIXTURES / "ncci" / "AOC_V2026Q2-MCR.txt"),
)


def copy_db(source: Path, target: Path) -> Path:
    """A private copy of a code database, for tests that add to it."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


@pytest.fixture(scope="session")
def ncci_db(code_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`code_db` plus the NCCI fixture files (PTP, MUE, add-on); no CPT file."""
    path = copy_db(code_db, tmp_path_factory.mktemp("ncci") / "codes.sqlite")
    conn = db.connect(path)
    for kind, file in NCCI_FIXTURES:
        importer = IMPORTERS[kind]
        run_import(conn, importer.code_set(file), file, importer.loader)
    conn.close()
    return path


@pytest.fixture(autouse=True)
def private_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Commands under test (and the processes they start) keep their embedded-default
    files (queue, code database) in a temporary folder, never in the user's home."""
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ticket database: the embedded default (SQLite) and production
    (PostgreSQL); tests that take it run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url` with the schema migrated to the newest revision."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()
