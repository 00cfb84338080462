"""The code lookup pages and the codes JSON API, on the real code database built from
../shared/data (and the NCCI fixture files): search, lookups, headers and their
children, notes with where they are written, NCCI edits, 404s, CPT by number only."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi import FastAPI

from consultant.accounts.users import add_user, create_token
from consultant.codes import cpt
from consultant.codes.db import connect
from consultant.codes.importing import run_import
from consultant.codes.store import CodeStore
from consultant.config import load_config
from consultant.database.migrate import open_database
from consultant.web import codes as web_codes
from consultant.web.app import create_app
from tests.conftest import FIXTURES, copy_db
from tests.test_web import PASSWORD, client_for

USER = "dana@caseconsultant.example"
CPT_FIXTURE = FIXTURES / "cpt" / "cpt_2026_licensed.txt"
DESCRIPTOR = "Licensed descriptor text"  # the made-up CPT fixture's descriptors all say this
WORDS = "text descriptor licensed fixture"  # finds them, without echoing DESCRIPTOR


def make_app(tmp_path: Path, code_database: Path) -> FastAPI:
    """The review app on CODE_DATABASE, with one consultant (user id 1)."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "t.sqlite"}"\n'
        f'[codes]\ndatabase = "{code_database}"\n'
        '[ingest]\nour_addresses = ["consult@caseconsultant.example"]\n'
    )
    config = load_config(path)
    engine = open_database(config.database_url)
    add_user(engine, USER, PASSWORD, name="Dana")
    return create_app(config, engine)


@pytest.fixture
def app(tmp_path: Path, code_db: Path) -> FastAPI:
    return make_app(tmp_path, code_db)


@pytest.fixture
def ncci_app(tmp_path: Path, ncci_db: Path) -> FastAPI:
    return make_app(tmp_path, ncci_db)


@pytest.fixture(scope="module")
def licensed_db(ncci_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NCCI database plus the made-up licensed CPT file."""
    path = copy_db(ncci_db, tmp_path_factory.mktemp("licensed") / "codes.sqlite")
    conn = connect(path)
    run_import(conn, cpt.CODE_SET, CPT_FIXTURE, cpt.load)
    conn.close()
    return path


def text_of(page: str) -> str:
    """The text of a page (below its header) or fragment, as a reader sees it."""
    main = page[page.index("<main>") :] if "<main>" in page else page
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)))


def section(page: str, heading: str) -> str:
    """The HTML from the <h2> titled HEADING to the next <h2> (or the end)."""
    start = page.index(f"<h2>{heading}")
    end = page.find("<h2>", start + 4)
    return page[start : end if end != -1 else len(page)]


def code_links(fragment: str) -> list[str]:
    return [unquote(html.unescape(m)) for m in re.findall(r'href="/codes/([^"?]+)', fragment)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_pages_need_a_login_and_the_api_a_token(app: FastAPI) -> None:
    anonymous = client_for(app)
    for path in ("/codes", "/codes?q=E11.65", "/codes/E11.65", "/codes/ZZZ99?system=hcpcs"):
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=/codes")
    for path in ("/api/codes/search?q=diabetes", "/api/codes/E11.65", "/api/codes/ZZZ99"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == "Bearer"
        assert anonymous.get(path, headers=bearer("cct_wrong")).status_code == 401


def test_search_lists_billable_codes_for_the_words(app: FastAPI) -> None:
    client = client_for(app, USER)
    page = client.get("/codes", params={"q": "stage 3 pressure ulcer sacral region"})
    assert page.status_code == 200
    hits = section(page.text, "Billable codes for the words")
    assert code_links(hits)[0] == "L89.153"
    assert "Pressure ulcer of sacral region, stage 3" in hits
    assert "Codes in the query" not in page.text  # "3" is no code
    narrowed = client.get(
        "/codes", params={"q": "stage 3 pressure ulcer sacral region", "system": "hcpcs"}
    )
    assert "L89.153" not in narrowed.text


def test_weak_leads_are_marked_as_weak(app: FastAPI) -> None:
    client = client_for(app, USER)
    weak = client.get("/codes", params={"q": "store and forward images reviewed"})
    hits = section(weak.text, "Billable codes for the words")
    assert code_links(hits)[0] == "G2010"
    assert "No code matches these words well" in hits
    strong = client.get("/codes", params={"q": "stage 3 pressure ulcer sacral region"})
    assert "No code matches these words well" not in strong.text


def test_codes_in_the_query_are_looked_up_not_searched(app: FastAPI) -> None:
    client = client_for(app, USER)
    page = client.get("/codes", params={"q": "E11.65, 29881 J1100 E99.99"})
    lookups = section(page.text, "Codes in the query")
    shown = text_of(lookups)
    assert "Type 2 diabetes mellitus with hyperglycemia" in shown
    assert "Surgery: musculoskeletal system" in shown and "unverified" in shown
    # J1100 is both ICD-10-CM J11.00 and HCPCS J1100: both readings, each linked.
    assert code_links(lookups) == ["E11.65", "29881", "J11.00", "J1100", "E99.99"]
    assert "/codes/J1100?system=hcpcs" in lookups
    assert "Injection, dexamethasone sodium phosphate, 1 mg" in shown
    assert "Not a code in any loaded code set" in shown  # E99.99
    assert "Billable codes for the words" not in page.text
    # An abbreviation that is code-shaped but no code is searched as words.
    t2dm = client.get("/codes", params={"q": "T2DM"})
    assert "Codes in the query" not in t2dm.text
    assert "E11.9" in code_links(section(t2dm.text, "Billable codes for the words"))


def test_without_a_query_the_page_lists_the_loaded_releases(app: FastAPI, code_db: Path) -> None:
    page = client_for(app, USER).get("/codes")
    assert page.status_code == 200
    assert 'name="q"' in page.text
    shown = text_of(section(page.text, "Loaded code sets"))
    releases = CodeStore.open(code_db).releases
    assert releases  # the database was built from ../shared/data
    for release in releases.values():
        assert f"{release.code_set} {release.version} {release.effective or 'unknown'}" in shown


def test_a_code_shows_its_title_parent_chain_and_notes(app: FastAPI, code_db: Path) -> None:
    page = client_for(app, USER).get("/codes/E11.65")
    assert page.status_code == 200
    shown = text_of(page.text)
    info = CodeStore.open(code_db).lookup("E11.65")
    assert info.title == "Type 2 diabetes mellitus with hyperglycemia"  # from the tabular
    assert info.title in shown and "billable" in shown
    assert "ICD-10-CM FY2026 (April 1, 2026 update)" in shown
    crumbs = page.text[page.text.index('class="breadcrumbs"') : page.text.index("</nav>", 600)]
    assert code_links(crumbs) == ["Chapter 4", "E08-E13", "E11", "E11.6"]
    assert "Type 2 diabetes mellitus with other specified complications" in crumbs
    notes = section(page.text, "Instructional notes")
    # Inherited notes say where they are written: E11's Excludes1 and use-additional notes.
    assert 'From <a href="/codes/E11?system=icd10cm">E11</a>' in notes
    assert "<b>Excludes1:</b> type 1 diabetes mellitus (E10.-)" in notes
    assert "<b>Use additional code:</b> insulin (Z79.4)" in notes
    assert "Chapter%204" in notes  # the chapter's note, linked to the chapter
    assert all(note.text in html.unescape(notes) for note in info.notes)
    assert "NCCI" not in page.text  # only CPT and HCPCS codes have NCCI edits


def test_a_header_lists_its_children_and_the_chain_is_browsable(app: FastAPI) -> None:
    client = client_for(app, USER)
    page = client.get("/codes/E11.6")
    assert "header" in text_of(page.text)
    children = section(page.text, "Codes below E11.6")
    assert "E11.65" in code_links(children) and "E11.69" in code_links(children)
    row = children[children.index("/codes/E11.65?") :]
    assert row.index("code-billable") < row.index("</tr>")
    row = children[children.index("/codes/E11.62?") :]
    assert row.index("code-header") < row.index("</tr>")
    # The block and chapter links of the breadcrumbs lead to pages of their own.
    block = client.get("/codes/E08-E13", params={"system": "icd10cm"})
    assert block.status_code == 200 and "E11" in code_links(section(block.text, "Codes below"))
    chapter = client.get("/codes/Chapter 4", params={"system": "icd10cm"})
    assert chapter.status_code == 200
    assert "Endocrine, nutritional and metabolic diseases (E00-E89)" in chapter.text
    assert "E08-E13" in code_links(section(chapter.text, "Codes below"))


def test_a_code_needing_a_7th_character_lists_them(app: FastAPI) -> None:
    page = client_for(app, USER).get("/codes/S72.001")
    assert "needs a 7th character" in page.text
    sevenths = text_of(section(page.text, "7th characters"))
    assert "A initial encounter for closed fracture" in sevenths
    assert "S72.001A" in code_links(section(page.text, "Codes below"))


def test_ptp_mue_and_add_on_edits_show_on_their_codes_pages(ncci_app: FastAPI) -> None:
    client = client_for(ncci_app, USER)
    page = client.get("/codes/29881")
    ncci = section(page.text, "NCCI edits")
    shown = text_of(ncci)
    assert "NCCI practitioner PTP edits 32.1 revision 0" in shown
    assert "NCCI hospital outpatient PTP edits (CMS I/OCE 27.1.0" in shown
    assert "29881 29877 1 (allowed) 1996-01-01" in shown
    assert "Misuse of column two code with column one code" in shown
    assert "1 unit(s) of service; adjudication indicator 2 Date of Service Edit: Policy" in shown
    # The same pair from column 2's side, linked back to column 1.
    other = section(client.get("/codes/29877").text, "NCCI edits")
    assert "29881" in code_links(other) and "1 (allowed)" in other
    # A deleted edit is listed with its deletion date, marked as not in force.
    deleted = text_of(section(client.get("/codes/99213").text, "NCCI edits"))
    assert "99213 36415 9 (not applicable) 2002-01-01 2002-10-01 not in force today" in deleted
    # Add-on codes from both sides.
    addon = text_of(section(client.get("/codes/99292").text, "NCCI edits"))
    assert "99292 is an add-on code (edit type 1), paid only with a primary code: 99291" in addon
    primary = text_of(section(client.get("/codes/99291").text, "NCCI edits"))
    assert "Add-on codes billed with 99291 as their primary code: 99292 (type 1)" in primary
    assert "0 (not allowed)" in primary  # 99291 / 36000
    # HCPCS codes have them too.
    hcpcs = text_of(section(client.get("/codes/J1100?system=hcpcs").text, "NCCI edits"))
    assert "150 unit(s) of service" in hcpcs


def test_without_ncci_files_the_page_says_what_to_load(app: FastAPI) -> None:
    shown = text_of(section(client_for(app, USER).get("/codes/29881").text, "NCCI edits"))
    assert "Not loaded: consultant codes import ncci-ptp FILE" in shown
    assert "NCCI practitioner PTP edits" not in shown
    assert "NCCI hospital outpatient PTP edits (CMS I/OCE 27.1.0" in shown


def test_a_new_hcpcs_code_shows_its_record_and_dates(app: FastAPI) -> None:
    page = client_for(app, USER).get("/codes/G2211")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "G2211" in shown and "Complex e/m visit add on" in shown
    assert "Valid 2021-01-01 to now" in shown


def test_a_diagnosis_page_shows_cc_mcc_hcc_and_a_crosswalk(app: FastAPI) -> None:
    client = client_for(app, USER)
    shown = text_of(section(client.get("/codes/E11.9").text, "Dates, severity"))
    assert "CMS-HCC V28 HCC 38" in shown
    severity = text_of(section(client.get("/codes/J96.01").text, "Dates, severity"))
    assert "MCC as a secondary diagnosis" in severity
    history = text_of(section(client.get("/codes/Z16.10").text, "Dates, severity"))
    assert "v40 CC" in history and "v41 neither" in history
    icd9 = client.get("/codes/250.00")
    assert icd9.status_code == 200 and "maps approximately to E11.9" in text_of(icd9.text)


def test_an_unknown_code_is_a_404_with_a_search_link(app: FastAPI) -> None:
    client = client_for(app, USER)
    page = client.get("/codes/ZZZ99")
    assert page.status_code == 404
    assert 'href="/codes?q=ZZZ99"' in page.text
    assert "does not have the shape of" in page.text
    near = client.get("/codes/E11.659")
    assert near.status_code == 404
    assert "The nearest existing code above it is E11.65" in near.text
    assert client.get("/codes/E11.65?system=bogus").status_code == 400


def test_cpt_codes_show_number_section_and_status_only(app: FastAPI) -> None:
    page = client_for(app, USER).get("/codes/29881")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "unverified" in shown and "Surgery: musculoskeletal system" in shown
    assert "descriptor not shown" in shown


def test_no_cpt_descriptor_even_from_a_licensed_file(tmp_path: Path, licensed_db: Path) -> None:
    app = make_app(tmp_path, licensed_db)
    client = client_for(app, USER)
    token = create_token(app.state.engine, 1, "script")
    assert DESCRIPTOR in CodeStore.open(licensed_db).lookup("29881").title  # type: ignore[operator]
    page = client.get("/codes/29881")
    assert page.status_code == 200 and "billable" in text_of(page.text)
    assert "29877" in code_links(section(page.text, "NCCI edits"))
    answers = [
        page.text,
        client.get("/codes", params={"q": "29881 99213"}).text,
        client.get("/codes", params={"q": WORDS}).text,
        client.get("/api/codes/29881", headers=bearer(token)).text,
        client.get("/api/codes/search", params={"q": WORDS}, headers=bearer(token)).text,
    ]
    for answer in answers:
        assert DESCRIPTOR.lower() not in answer.lower()
    hits = client.get(
        "/api/codes/search", params={"q": WORDS, "system": "cpt"}, headers=bearer(token)
    ).json()["hits"]
    assert hits and all(hit["system"] == "CPT" and hit["title"] is None for hit in hits)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/codes/E11.65", "Type 2 diabetes mellitus with hyperglycemia"),
        ("/codes/e1165", "Type 2 diabetes mellitus with hyperglycemia"),
        ("/codes/0SRC0J9", "Replacement of Right Knee Joint with Synthetic Substitute"),
        ("/codes/0SR?system=icd10pcs", "Lower Joints, Replacement"),
        ("/codes/A0428", "Ambulance service, basic life support"),
        ("/codes/J1100?system=HCPCS", "Injection, dexamethasone sodium phosphate, 1 mg"),
        ("/codes/29881", "Surgery: musculoskeletal system"),
    ],
)
def test_ticket_links_work_for_every_system(app: FastAPI, path: str, expected: str) -> None:
    page = client_for(app, USER).get(path)
    assert page.status_code == 200
    assert expected in text_of(page.text)


def test_the_api_gives_the_same_facts(ncci_app: FastAPI, ncci_db: Path) -> None:
    client = client_for(ncci_app, USER)
    token = create_token(ncci_app.state.engine, 1, "script")
    info = CodeStore.open(ncci_db).lookup("E11.65")
    facts = client.get("/api/codes/E11.65", headers=bearer(token)).json()
    assert (facts["code"], facts["system"], facts["status"]) == ("E11.65", "ICD-10-CM", "billable")
    assert facts["title"] == info.title and facts["source"] == info.source
    assert facts["parent"]["code"] == "E11.6"
    assert [a["code"] for a in facts["ancestors"]] == ["Chapter 4", "E08-E13", "E11", "E11.6"]
    assert [(n["kind"], n["text"], n["at"]) for n in facts["notes"]] == [
        (n.kind, n.text, n.code) for n in info.notes
    ]
    assert facts["ncci"] is None
    header = client.get("/api/codes/E11.6", headers=bearer(token)).json()
    assert header["status"] == "not_billable"
    assert {"code": "E11.65", "billable": True} in [
        {"code": c["code"], "billable": c["billable"]} for c in header["children"]
    ]
    ptp = client.get("/api/codes/29881", headers=bearer(token)).json()
    assert ptp["title"] is None and ptp["section"] == "Surgery: musculoskeletal system"
    edit = ptp["ncci"]["ptp"]["edits"][0]
    assert (edit["column1"], edit["column2"], edit["modifier_indicator"]) == ("29881", "29877", "1")
    assert ptp["ncci"]["mue"]["value"] == 1
    missing = client.get("/api/codes/ZZZ99", headers=bearer(token))
    assert missing.status_code == 404 and "ZZZ99" in missing.json()["detail"]
    found = client.get(
        "/api/codes/search",
        params={"q": "E11.65 stage 3 pressure ulcer sacral region", "limit": 3},
        headers=bearer(token),
    ).json()
    assert [c["code"] for c in found["lookups"]] == ["E11.65"]
    assert found["hits"][0]["code"] == "L89.153" and len(found["hits"]) == 3
    too_many = client.get(
        "/api/codes/search", params={"q": "ulcer", "limit": 1000}, headers=bearer(token)
    )
    assert too_many.status_code == 422


def test_the_code_database_is_opened_once_per_app(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    real = web_codes.open_store

    def counting(path: Path, notify=None):  # type: ignore[no-untyped-def]
        opened.append(path)
        return real(path, notify)

    monkeypatch.setattr(web_codes, "open_store", counting)
    client = client_for(app, USER)
    for path in ("/codes", "/codes/E11.65", "/codes?q=diabetes", "/codes/ZZZ99"):
        client.get(path)
    assert opened == [app.state.config.codes.database]
