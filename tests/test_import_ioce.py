"""The I/OCE import on the real pyoce wheel: code validity by quarter, outpatient PTP and
add-on edits, and never a CPT descriptor. The wheel is imported once for the module."""

from __future__ import annotations

import lzma
import marshal
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from consultant.codes import db, ioce
from consultant.codes.importing import ImportFormatError, ImportResult, run_import
from consultant.codes.systems import CPT_SHAPE, HCPCS_SHAPE
from tests.conftest import DATA

WHEEL = DATA / "ioce" / "pyoce-0.1.0-py3-none-any.whl"
SAMPLE = 200


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sqlite3.Connection, ImportResult]]:
    if not WHEEL.is_file():
        pytest.fail(f"{WHEEL} is missing; CI keeps ../shared/data beside the checkout")
    conn = db.connect(tmp_path_factory.mktemp("ioce") / "codes.sqlite")
    yield conn, run_import(conn, ioce.CODE_SET, WHEEL, ioce.load)
    conn.close()


@pytest.fixture(scope="module")
def conn(imported: tuple[sqlite3.Connection, ImportResult]) -> sqlite3.Connection:
    return imported[0]


def _runs(conn: sqlite3.Connection, system: str, code: str) -> list[tuple]:
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT valid_from, valid_to FROM code_validity"
            " WHERE system = ? AND code = ? AND code_set = 'ioce' ORDER BY valid_from",
            (system, code),
        )
    ]


def _ptp(conn: sqlite3.Connection, column1: str, column2: str) -> list[tuple]:
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT effective, deleted, modifier_indicator, prior_1996, rationale FROM ptp_edits"
            " WHERE column1 = ? AND column2 = ? AND code_set = 'ioce' ORDER BY effective",
            (column1, column2),
        )
    ]


def test_release(imported: tuple[sqlite3.Connection, ImportResult]) -> None:
    conn, result = imported
    assert not result.skipped
    assert result.release.version == "I/OCE 27.1.0 (April 2026)"
    assert result.release.effective == "2026-04-01"
    written = sum(
        conn.execute(f"SELECT count(*) FROM {table} WHERE code_set = 'ioce'").fetchone()[0]
        for table in ("code_validity", "ptp_edits", "addon_edits")
    )
    assert result.release.row_count == written


def test_hcpcs_validity(conn: sqlite3.Connection) -> None:
    assert _runs(conn, "HCPCS", "G2211") == [("2021-01-01", None)]  # ranges merged
    assert _runs(conn, "HCPCS", "G0136") == [("2024-01-01", None)]
    (title,) = conn.execute(
        "SELECT title FROM code_validity WHERE system = 'HCPCS' AND code = 'G2211'"
    ).fetchone()
    assert title == "Complex e/m visit add on"


def test_icd10cm_validity(conn: sqlite3.Connection) -> None:
    assert _runs(conn, "ICD-10-CM", "E11.A") == [("2025-10-01", None)]
    assert _runs(conn, "ICD-10-CM", "Z91.011") == [("2019-07-01", "2025-09-30")]
    assert _runs(conn, "ICD-10-CM", "Z91.0110")[0][0] == "2025-10-01"


def test_cpt_rows_are_numbers_only(conn: sqlite3.Connection) -> None:
    assert _runs(conn, "CPT", "29881") == [("2019-07-01", None)]
    counts = conn.execute(
        "SELECT count(*), count(title) FROM code_validity WHERE system = 'CPT'"
    ).fetchone()
    assert counts[0] > 10000
    assert counts[1] == 0


def test_ptp_edits(conn: sqlite3.Connection) -> None:
    assert _ptp(conn, "29881", "29877") == [("2019-07-01", None, "0", 0, "")]
    # Deleted, then back three quarters later: two rows, each ending the day after its run.
    assert _ptp(conn, "00100", "99201") == [
        ("2019-07-01", "2020-01-01", "1", 0, ""),
        ("2020-10-01", "2021-01-01", "1", 0, ""),
    ]
    # The modifier indicator changed: a row per indicator.
    assert _ptp(conn, "0007U", "0328U") == [
        ("2023-01-01", "2023-07-01", "0", 0, ""),
        ("2023-07-01", None, "1", 0, ""),
    ]


def test_addon_edits(conn: sqlite3.Connection) -> None:
    def edits(addon: str) -> set[tuple]:
        rows = conn.execute(
            "SELECT addon_type, primary_code, effective, deleted FROM addon_edits"
            " WHERE addon = ? AND code_set = 'ioce'",
            (addon,),
        )
        return {tuple(row) for row in rows}

    assert ("1", "99291", "2019-07-01", None) in edits("99292")
    assert ("1", "0102U", "2019-10-01", "2026-01-01") in edits("0131U")
    assert edits("99100") == {("2", "CCCCC", "2019-07-01", None)}


@pytest.fixture(scope="module")
def cpt_sample() -> list[tuple[str, str]]:
    """(code, descriptor) of CPT codes spread over the wheel, read at test time and never
    written down; descriptors that public Level II or ICD-10-CM text in the wheel also
    holds (CMS reuses a few for G codes) are left out."""
    with tempfile.TemporaryDirectory(prefix="ioce-test-") as scratch:
        target = Path(scratch) / "pyoce.mdb"
        with (
            zipfile.ZipFile(WHEEL) as wheel,
            wheel.open("pyoce/data/pyoce.mdb.xz") as packed,
            lzma.open(packed) as source,
            target.open("wb") as sink,
        ):
            shutil.copyfileobj(source, sink, 1 << 20)
        env = lmdb.open(str(target), subdir=False, readonly=True, lock=False, max_dbs=64)
        try:
            hcpcs_db = env.open_db(b"data_hcpcs", create=False)
            dx_db = env.open_db(b"data_dx10", create=False)
            cpt: set[tuple[str, str]] = set()
            public: list[str] = []
            with env.begin() as txn:
                for key, value in txn.cursor(db=hcpcs_db):
                    code = key.split(b"|", 1)[0].decode()
                    description = marshal.loads(value)["description"]
                    if CPT_SHAPE.match(code):
                        cpt.add((code, description))
                    elif HCPCS_SHAPE.match(code):
                        public.append(description)
                public += [marshal.loads(value)["description"] for _, value in txn.cursor(db=dx_db)]
        finally:
            env.close()
    spread = sorted(cpt)[:: len(cpt) // (2 * SAMPLE)]
    text = "\n".join(public)
    sample = [(code, description) for code, description in spread if description not in text]
    assert len(sample) >= SAMPLE
    return sample[:SAMPLE]


def test_no_cpt_descriptor_stored(
    conn: sqlite3.Connection, cpt_sample: list[tuple[str, str]]
) -> None:
    values: set[str] = set()
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for column in conn.execute(f'PRAGMA table_info("{table}")').fetchall():
            if column["type"].upper() == "TEXT":
                values.update(
                    row[0]
                    for row in conn.execute(
                        f'SELECT DISTINCT "{column["name"]}" FROM "{table}"'
                        f' WHERE "{column["name"]}" IS NOT NULL'
                    )
                )
    stored = "\n".join(values)
    leaked = [code for code, description in cpt_sample if description in stored]
    assert not leaked, f"the database holds the CPT descriptors of {leaked}"


def test_reimport_is_skipped(conn: sqlite3.Connection) -> None:
    assert run_import(conn, ioce.CODE_SET, WHEEL, ioce.load).skipped


def test_wrong_file(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "codes.sqlite")
    text = tmp_path / "pyoce.mdb"
    text.write_text("not a database\n")
    with pytest.raises(ImportFormatError, match=r"pyoce\.mdb is not the I/OCE data.*pyoce wheel"):
        run_import(conn, ioce.CODE_SET, text, ioce.load)
    archive = tmp_path / "pyoce-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pyoce/__init__.py", "")
    with pytest.raises(ImportFormatError, match=r"holds no pyoce\.mdb\.xz"):
        run_import(conn, ioce.CODE_SET, archive, ioce.load)
    assert conn.execute("SELECT count(*) FROM releases").fetchone()[0] == 0
    conn.close()
