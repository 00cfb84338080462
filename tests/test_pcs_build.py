"""ICD-10-PCS tables and definitions import, and building a code axis by axis from a
coder's words ("lap chole" -> 0FT44ZZ)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
import statistics
import time
import tomllib
from itertools import product
from pathlib import Path

import pytest

from consultant.codes import db, icd10pcs_tables
from consultant.codes.db import get_release
from consultant.codes.importers import IMPORTERS, find_official_files
from consultant.codes.importing import ImportFormatError, run_import
from consultant.codes.pcs_build import WORDS_FILE, PcsBuilder, PcsCandidate
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.codes.systems import ICD10PCS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "icd10pcs"
TABLES = FIXTURES / "icd10pcs_tables_2026.xml"
DEFINITIONS = FIXTURES / "icd10pcs_definitions_2026.xml"

# Coders' phrasings, the code a coder would build, and that code's long title in the
# order file (so a wrong expectation fails here, not silently).
CASES = [
    ("lap chole", "0FT44ZZ", "Resection of Gallbladder, Percutaneous Endoscopic Approach"),
    (
        "laparoscopic cholecystectomy",
        "0FT44ZZ",
        "Resection of Gallbladder, Percutaneous Endoscopic Approach",
    ),
    ("cholecystectomy", "0FT40ZZ", "Resection of Gallbladder, Open Approach"),
    ("open appendectomy", "0DTJ0ZZ", "Resection of Appendix, Open Approach"),
    ("lap appy", "0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic Approach"),
    ("appendectomy", "0DTJ0ZZ", "Resection of Appendix, Open Approach"),
    (
        "laparoscopic appendectomy for acute appendicitis",
        "0DTJ4ZZ",
        "Resection of Appendix, Percutaneous Endoscopic Approach",
    ),
    (
        "PCS for right TKA cemented",
        "0SRC0J9",
        "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open Approach",
    ),
    (
        "left TKA uncemented",
        "0SRD0JA",
        "Replacement of Left Knee Joint with Synthetic Substitute, Uncemented, Open Approach",
    ),
    (
        "right total hip arthroplasty, cemented",
        "0SR90J9",
        "Replacement of Right Hip Joint with Synthetic Substitute, Cemented, Open Approach",
    ),
    (
        "THR left cemented",
        "0SRB0J9",
        "Replacement of Left Hip Joint with Synthetic Substitute, Cemented, Open Approach",
    ),
    ("ex lap with lysis of adhesions", "0DNW0ZZ", "Release Peritoneum, Open Approach"),
    (
        "EGD with biopsy of the stomach",
        "0DB68ZX",
        "Excision of Stomach, Via Natural or Artificial Opening Endoscopic, Diagnostic",
    ),
    (
        "EGD",
        "0DJ08ZZ",
        "Inspection of Upper Intestinal Tract, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "esophagogastroduodenoscopy with dilation of esophagus",
        "0D758ZZ",
        "Dilation of Esophagus, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "colonoscopy",
        "0DJD8ZZ",
        "Inspection of Lower Intestinal Tract, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "colonoscopy with polypectomy",
        "0DBE8ZZ",
        "Excision of Large Intestine, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "colonoscopy with biopsy",
        "0DBE8ZX",
        "Excision of Large Intestine, Via Natural or Artificial Opening Endoscopic, Diagnostic",
    ),
    (
        "colonoscopy with snare polypectomy of sigmoid colon",
        "0DBN8ZZ",
        "Excision of Sigmoid Colon, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "inguinal hernia repair with mesh, open, left",
        "0YU60JZ",
        "Supplement Left Inguinal Region with Synthetic Substitute, Open Approach",
    ),
    (
        "lap right inguinal hernia repair without mesh",
        "0YQ54ZZ",
        "Repair Right Inguinal Region, Percutaneous Endoscopic Approach",
    ),
    ("umbilical hernia repair", "0WQF0ZZ", "Repair Abdominal Wall, Open Approach"),
    (
        "laparoscopic ventral hernia repair with mesh",
        "0WUF4JZ",
        "Supplement Abdominal Wall with Synthetic Substitute, Percutaneous Endoscopic Approach",
    ),
    (
        "laparoscopic hiatal hernia repair",
        "0BQT4ZZ",
        "Repair Diaphragm, Percutaneous Endoscopic Approach",
    ),
    (
        "diagnostic knee arthroscopy right",
        "0SJC4ZZ",
        "Inspection of Right Knee Joint, Percutaneous Endoscopic Approach",
    ),
    (
        "right knee arthroscopy with partial medial meniscectomy",
        "0SBC4ZZ",
        "Excision of Right Knee Joint, Percutaneous Endoscopic Approach",
    ),
    (
        "ORIF left wrist fracture",
        "0PSJ04Z",
        "Reposition Left Radius with Internal Fixation Device, Open Approach",
    ),
    (
        "open reduction internal fixation right hip fracture",
        "0QS604Z",
        "Reposition Right Upper Femur with Internal Fixation Device, Open Approach",
    ),
    # Coding Clinic: a TURP leaves prostate behind (Excision); a tonsillectomy through the
    # mouth is an External approach.
    ("TURP", "0VB08ZZ", "Excision of Prostate, Via Natural or Artificial Opening Endoscopic"),
    ("D&C", "0UDB7ZZ", "Extraction of Endometrium, Via Natural or Artificial Opening"),
    (
        "diagnostic D&C",
        "0UDB7ZX",
        "Extraction of Endometrium, Via Natural or Artificial Opening, Diagnostic",
    ),
    (
        "cystoscopy",
        "0TJB8ZZ",
        "Inspection of Bladder, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "cysto with bladder biopsy",
        "0TBB8ZX",
        "Excision of Bladder, Via Natural or Artificial Opening Endoscopic, Diagnostic",
    ),
    (
        "cystoscopy with ureteral stent placement left",
        "0T778DZ",
        "Dilation of Left Ureter with Intraluminal Device, Via Natural or Artificial Opening "
        "Endoscopic",
    ),
    (
        "bronchoscopy",
        "0BJ08ZZ",
        "Inspection of Tracheobronchial Tree, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "hysteroscopy",
        "0UJD8ZZ",
        "Inspection of Uterus and Cervix, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "PICC line placement",
        "02HV33Z",
        "Insertion of Infusion Device into Superior Vena Cava, Percutaneous Approach",
    ),
    ("left BKA", "0Y6J0Z1", "Detachment at Left Lower Leg, High, Open Approach"),
    ("right AKA", "0Y6C0Z1", "Detachment at Right Upper Leg, High, Open Approach"),
    (
        "amputation of right great toe",
        "0Y6P0Z0",
        "Detachment at Right 1st Toe, Complete, Open Approach",
    ),
    ("C-section", "10D00Z1", "Extraction of Products of Conception, Low, Open Approach"),
    ("LTCS", "10D00Z1", "Extraction of Products of Conception, Low, Open Approach"),
    ("TAH-BSO", "0UT90ZZ", "Resection of Uterus, Open Approach"),
    ("vaginal hysterectomy", "0UT97ZZ", "Resection of Uterus, Via Natural or Artificial Opening"),
    (
        "CABG x3 with SVG",
        "021209W",
        "Bypass Coronary Artery, Three Arteries from Aorta with Autologous Venous Tissue, "
        "Open Approach",
    ),
    (
        "CABG x1 LIMA to LAD",
        "02100Z9",
        "Bypass Coronary Artery, One Artery from Left Internal Mammary, Open Approach",
    ),
    (
        "PTCA with stent",
        "02703DZ",
        "Dilation of Coronary Artery, One Artery with Intraluminal Device, Percutaneous Approach",
    ),
    (
        "PTCA of the LAD with drug-eluting stent",
        "027034Z",
        "Dilation of Coronary Artery, One Artery with Drug-eluting Intraluminal Device, "
        "Percutaneous Approach",
    ),
    (
        "PTCA with CYPHER stent",  # a brand name from the device key
        "027034Z",
        "Dilation of Coronary Artery, One Artery with Drug-eluting Intraluminal Device, "
        "Percutaneous Approach",
    ),
    ("I&D abscess skin of back", "0H96XZZ", "Drainage of Back Skin, External Approach"),
    ("right total mastectomy", "0HTT0ZZ", "Resection of Right Breast, Open Approach"),
    ("bilateral mastectomy", "0HTV0ZZ", "Resection of Bilateral Breast, Open Approach"),
    ("tonsillectomy", "0CTPXZZ", "Resection of Tonsils, External Approach"),
    ("T&A", "0CTPXZZ", "Resection of Tonsils, External Approach"),
    ("total thyroidectomy", "0GTK0ZZ", "Resection of Thyroid Gland, Open Approach"),
    (
        "laparoscopic right nephrectomy",
        "0TT04ZZ",
        "Resection of Right Kidney, Percutaneous Endoscopic Approach",
    ),
    (
        "lap partial nephrectomy, left",
        "0TB14ZZ",
        "Excision of Left Kidney, Percutaneous Endoscopic Approach",
    ),
    ("lumbar laminectomy", "0QB00ZZ", "Excision of Lumbar Vertebra, Open Approach"),
    ("paracentesis", "0W9G3ZZ", "Drainage of Peritoneal Cavity, Percutaneous Approach"),
    ("left thoracentesis", "0W9B3ZZ", "Drainage of Left Pleural Cavity, Percutaneous Approach"),
    (
        "laparoscopic sigmoidectomy",
        "0DTN4ZZ",
        "Resection of Sigmoid Colon, Percutaneous Endoscopic Approach",
    ),
    ("right hemicolectomy", "0DTF0ZZ", "Resection of Right Large Intestine, Open Approach"),
    ("small bowel resection", "0DT80ZZ", "Resection of Small Intestine, Open Approach"),
    ("colostomy takedown", "0DQE0ZZ", "Repair Large Intestine, Open Approach"),
    (
        "ERCP with stone extraction",
        "0FC98ZZ",
        "Extirpation of Matter from Common Bile Duct, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "PEG tube placement",
        "0DH64UZ",
        "Insertion of Feeding Device into Stomach, Percutaneous Endoscopic Approach",
    ),
    (
        "tracheostomy",
        "0B110F4",
        "Bypass Trachea to Cutaneous with Tracheostomy Device, Open Approach",
    ),
    (
        "ESWL of left kidney stone",
        "0TF4XZZ",
        "Fragmentation in Left Kidney Pelvis, External Approach",
    ),
    (
        "excisional debridement of skin of left foot",
        "0HBNXZZ",
        "Excision of Left Foot Skin, External Approach",
    ),
    (
        "laparoscopic bilateral tubal ligation",
        "0UL74ZZ",
        "Occlusion of Bilateral Fallopian Tubes, Percutaneous Endoscopic Approach",
    ),
    (
        "lap ovarian cystectomy left",
        "0UB14ZZ",
        "Excision of Left Ovary, Percutaneous Endoscopic Approach",
    ),
    ("circumcision", "0VTTXZZ", "Resection of Prepuce, External Approach"),
    ("carpal tunnel release", "01N50ZZ", "Release Median Nerve, Open Approach"),
    (
        "removal of foreign body from right eye",
        "08C0XZZ",
        "Extirpation of Matter from Right Eye, External Approach",
    ),
    # Root operation words taken from the definitions' "includes" examples.
    (
        "left greater saphenous vein stripping",
        "06DQ0ZZ",
        "Extraction of Left Saphenous Vein, Open Approach",
    ),
    ("bilateral breast augmentation", "0H0V0ZZ", "Alteration of Bilateral Breast, Open Approach"),
    ("face lift", "0W020ZZ", "Alteration of Face, Open Approach"),
    ("tendon transfer right hand", "0LX70ZZ", "Transfer Right Hand Tendon, Open Approach"),
    # Coders' words: organ spelled out in the procedure word, scopes, devices named as the
    # procedure ("IVC filter", "port-a-cath"), the tables' own axes for what they imply.
    (
        "laparoscopic sigmoid colectomy",
        "0DTN4ZZ",
        "Resection of Sigmoid Colon, Percutaneous Endoscopic Approach",
    ),
    (
        "knee scope left partial lateral meniscectomy",
        "0SBD4ZZ",
        "Excision of Left Knee Joint, Percutaneous Endoscopic Approach",
    ),
    (
        "diagnostic EGD, no biopsy taken",
        "0DJ08ZZ",
        "Inspection of Upper Intestinal Tract, Via Natural or Artificial Opening Endoscopic",
    ),
    (
        "lap band placement",
        "0DV64CZ",
        "Restriction of Stomach with Extraluminal Device, Percutaneous Endoscopic Approach",
    ),
    (
        "IM nail left femoral shaft fracture",
        "0QS906Z",
        "Reposition Left Femoral Shaft with Intramedullary Internal Fixation Device, Open Approach",
    ),
    (
        "left internal carotid endarterectomy",
        "03CL0ZZ",
        "Extirpation of Matter from Left Internal Carotid Artery, Open Approach",
    ),
    (
        "IVC filter placement",
        "06H03DZ",
        "Insertion of Intraluminal Device into Inferior Vena Cava, Percutaneous Approach",
    ),
    ("pericardiocentesis", "0W9D3ZZ", "Drainage of Pericardial Cavity, Percutaneous Approach"),
    (
        "EVAR for abdominal aortic aneurysm",
        "04V03DZ",
        "Restriction of Abdominal Aorta with Intraluminal Device, Percutaneous Approach",
    ),
    (
        "AV fistula creation right radial artery to cephalic vein",
        "031B0ZF",
        "Bypass Right Radial Artery to Lower Arm Vein, Open Approach",
    ),
    (
        "right chest tube placement",
        "0W9930Z",
        "Drainage of Right Pleural Cavity with Drainage Device, Percutaneous Approach",
    ),
    (
        "NG tube placement",
        "0DH67UZ",
        "Insertion of Feeding Device into Stomach, Via Natural or Artificial Opening",
    ),
    (
        "port-a-cath placement",
        "0JH60WZ",
        "Insertion of Totally Implantable Vascular Access Device into Chest Subcutaneous "
        "Tissue and Fascia, Open Approach",
    ),
    (
        "pacemaker lead placement right ventricle, transvenous",
        "02HK3JZ",
        "Insertion of Pacemaker Lead into Right Ventricle, Percutaneous Approach",
    ),
    (
        "excisional debridement of subcutaneous tissue left foot",
        "0JBR0ZZ",
        "Excision of Left Foot Subcutaneous Tissue and Fascia, Open Approach",
    ),
    (
        "STSG to left lower leg",
        "0HRLX74",
        "Replacement of Left Lower Leg Skin with Autologous Tissue Substitute, Partial "
        "Thickness, External Approach",
    ),
    ("laceration repair of scalp", "0HQ0XZZ", "Repair Scalp Skin, External Approach"),
    ("toenail avulsion left great toe", "0HDRXZZ", "Extraction of Toe Nail, External Approach"),
    (
        "PCNL right kidney stone",
        "0TC34ZZ",
        "Extirpation of Matter from Right Kidney Pelvis, Percutaneous Endoscopic Approach",
    ),
    ("open decortication left lung", "0BDP0ZZ", "Extraction of Left Pleura, Open Approach"),
    (
        "bilateral salpingo-oophorectomy, laparoscopic",  # the ovaries first
        "0UT24ZZ",
        "Resection of Bilateral Ovaries, Percutaneous Endoscopic Approach",
    ),
    # Spinal levels as the tables count joints: "T2-T9" is 7 thoracic joints, "L5-S1"
    # the lumbosacral joint; the fusion's technique names device and qualifier.
    (
        "TLIF L3-L4 with interbody cage",
        "0SG00AJ",
        "Fusion of Lumbar Vertebral Joint with Interbody Fusion Device, Posterior Approach, "
        "Anterior Column, Open Approach",
    ),
    (
        "ALIF L5-S1 with interbody cage",
        "0SG30A0",
        "Fusion of Lumbosacral Joint with Interbody Fusion Device, Anterior Approach, "
        "Anterior Column, Open Approach",
    ),
    (
        "ACDF C5-C7",
        "0RG20A0",
        "Fusion of 2 or more Cervical Vertebral Joints with Interbody Fusion Device, "
        "Anterior Approach, Anterior Column, Open Approach",
    ),
    (
        "posterior spinal fusion T2-T9 with autograft",
        "0RG7071",
        "Fusion of 2 to 7 Thoracic Vertebral Joints with Autologous Tissue Substitute, "
        "Posterior Approach, Posterior Column, Open Approach",
    ),
    ("lumbar microdiscectomy L5-S1", "0SB40ZZ", "Excision of Lumbosacral Disc, Open Approach"),
    # Obstetrics.
    (
        "spontaneous vaginal delivery",
        "10E0XZZ",
        "Delivery of Products of Conception, External Approach",
    ),
    (
        "vacuum assisted delivery",
        "10D07Z6",
        "Extraction of Products of Conception, Vacuum, Via Natural or Artificial Opening",
    ),
    # Administration (3): the substance and the route the text names.
    (
        "PRBC transfusion via peripheral IV",
        "30233N1",
        "Transfusion of Nonautologous Red Blood Cells into Peripheral Vein, Percutaneous Approach",
    ),
    (
        "TPN through central line",
        "3E0436Z",
        "Introduction of Nutritional Substance into Central Vein, Percutaneous Approach",
    ),
    (
        "intrathecal methotrexate",
        "3E0R305",
        "Introduction of Other Antineoplastic into Spinal Canal, Percutaneous Approach",
    ),
    # Measurement and Monitoring (4): a heart cath is measured, its side the qualifier.
    (
        "left heart cath",
        "4A023N7",
        "Measurement of Cardiac Sampling and Pressure, Left Heart, Percutaneous Approach",
    ),
    (
        "right heart cath",
        "4A023N6",
        "Measurement of Cardiac Sampling and Pressure, Right Heart, Percutaneous Approach",
    ),
    (
        "right and left heart cath",
        "4A023N8",
        "Measurement of Cardiac Sampling and Pressure, Bilateral, Percutaneous Approach",
    ),
    ("EKG", "4A02X4Z", "Measurement of Cardiac Electrical Activity, External Approach"),
    # Extracorporeal Assistance and Performance (5): the duration from the hours.
    (
        "mechanical ventilation 36 hours",
        "5A1945Z",
        "Respiratory Ventilation, 24-96 Consecutive Hours",
    ),
    (
        "ventilator for 5 days",
        "5A1955Z",
        "Respiratory Ventilation, Greater than 96 Consecutive Hours",
    ),
    (
        "BiPAP for 30 hours",
        "5A09458",
        "Assistance with Respiratory Ventilation, 24-96 Consecutive Hours, Intermittent "
        "Positive Airway Pressure",
    ),
    (
        "intermittent hemodialysis 3 hr session",
        "5A1D70Z",
        "Performance of Urinary Filtration, Intermittent, Less than 6 Hours Per Day",
    ),
    ("synchronized cardioversion", "5A2204Z", "Restoration of Cardiac Rhythm, Single"),
    # Imaging (B).
    ("CT head without contrast", "B020ZZZ", "Computerized Tomography (CT Scan) of Brain"),
    ("chest x-ray", "BW03ZZZ", "Plain Radiography of Chest"),
    (
        "MRI of the lumbar spine without contrast",
        "BR39ZZZ",
        "Magnetic Resonance Imaging (MRI) of Lumbar Spine",
    ),
]

NOT_PROCEDURES = [
    "type 2 diabetes",
    "fracture of left wrist",
    "acute appendicitis",
    "kidney stone",
    "colon polyp",
    "chest pain",
    "left knee pain",
    "history of appendectomy",
    "s/p lap chole",
    "repair",
    "",
    # A status, a cause, a finding, a supply or a drug asked about, not a procedure done.
    "ESRD on hemodialysis",
    "PEG tube status",
    "nausea due to chemotherapy",
    "hypothyroidism after thyroidectomy",
    "EGD showed gastritis",
    "CPAP mask",
    "foley catheter latex",
    "Kenalog 40 injection",
    "IUD",
    "bupivacaine for nerve block",
    "pulmonary embolism",
]


# -- import ------------------------------------------------------------------------------


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "codes.sqlite")


def _import(conn: sqlite3.Connection, kind: str, path: Path, force: bool = False):
    importer = IMPORTERS[kind]
    return run_import(conn, importer.code_set(path), path, importer.loader, force=force)


def test_tables_excerpt_loads_each_rows_values(conn: sqlite3.Connection) -> None:
    release = _import(conn, "icd10pcs-tables", TABLES).release

    assert (release.code_set, release.version, release.effective) == (
        "icd10pcs-tables",
        "FY2026",
        "2025-10-01",
    )
    tables = {r["tbl"]: dict(r) for r in conn.execute("SELECT * FROM pcs_tables")}
    assert set(tables) == {"0FT", "0SR", "0YU"}
    assert tables["0FT"]["operation"] == "Resection"
    assert tables["0FT"]["body_system"] == "Hepatobiliary System and Pancreas"
    assert tables["0FT"]["definition"].startswith("Cutting out or off, without replacement, all")
    knee = conn.execute(
        "SELECT row_seq FROM pcs_axis_values WHERE tbl = '0SR' AND pos = 4 AND value = 'C'"
        " ORDER BY row_seq"
    ).fetchone()["row_seq"]
    qualifiers = conn.execute(
        "SELECT value, label, axis FROM pcs_axis_values WHERE tbl = '0SR' AND row_seq = ?"
        " AND pos = 7 ORDER BY value",
        (knee,),
    ).fetchall()
    assert [tuple(q) for q in qualifiers] == [
        ("9", "Cemented", "Qualifier"),
        ("A", "Uncemented", "Qualifier"),
        ("Z", "No Qualifier", "Qualifier"),
    ]
    assert release.row_count == conn.execute("SELECT COUNT(*) FROM pcs_axis_values").fetchone()[0]


def test_definitions_excerpt_loads_terms_includes_and_aggregation(
    conn: sqlite3.Connection,
) -> None:
    release = _import(conn, "icd10pcs-definitions", DEFINITIONS).release

    assert release.version == "FY2026"
    resection = conn.execute(
        "SELECT * FROM pcs_definitions WHERE section = '0' AND pos = 3 AND term = 'Resection'"
    ).fetchone()
    assert resection["axis"] == "Operation"
    assert resection["definition"] == "Cutting out or off, without replacement, all of a body part"
    assert json.loads(resection["includes"]) == ["Total nephrectomy, total lobectomy of lung"]
    knees = conn.execute(
        "SELECT term, includes FROM pcs_definitions WHERE pos = 4 AND term LIKE 'Knee Joint, %'"
        " ORDER BY term"
    ).fetchall()
    assert [k["term"] for k in knees] == ["Knee Joint, Left", "Knee Joint, Right"]
    assert all("Lateral meniscus" in json.loads(k["includes"]) for k in knees)
    aggregation = conn.execute(
        "SELECT DISTINCT device, parent_value, parent FROM pcs_device_aggregation ORDER BY 1"
    ).fetchall()
    assert [tuple(a) for a in aggregation] == [
        ("Autologous Arterial Tissue", "7", "Autologous Tissue Substitute"),
        ("Autologous Venous Tissue", "7", "Autologous Tissue Substitute"),
    ]
    counted = sum(
        conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("pcs_definitions", "pcs_device_aggregation")
    )
    assert release.row_count == counted


def test_reimport_replaces_the_release(conn: sqlite3.Connection, tmp_path: Path) -> None:
    _import(conn, "icd10pcs-tables", TABLES)
    before = conn.execute("SELECT COUNT(*) FROM pcs_axis_values").fetchone()[0]
    assert _import(conn, "icd10pcs-tables", TABLES).skipped
    _import(conn, "icd10pcs-tables", TABLES, force=True)
    assert conn.execute("SELECT COUNT(*) FROM pcs_axis_values").fetchone()[0] == before

    smaller = tmp_path / "icd10pcs_tables_2026.xml"
    text = TABLES.read_text(encoding="utf-8")
    cut = text.index("  <pcsTable>", text.index("  <pcsTable>") + 1)
    smaller.write_text(text[:cut] + "</ICD10PCS.tabular>\n", encoding="utf-8")
    _import(conn, "icd10pcs-tables", smaller)
    assert [r[0] for r in conn.execute("SELECT tbl FROM pcs_tables")] == ["0FT"]
    assert conn.execute("SELECT COUNT(*) FROM pcs_axis_values").fetchone()[0] < before


def test_wrong_file_keeps_the_previous_release(conn: sqlite3.Connection, tmp_path: Path) -> None:
    _import(conn, "icd10pcs-tables", TABLES)
    wrong = tmp_path / "icd10pcs_tables_2027.xml"
    shutil.copy(DEFINITIONS, wrong)

    with pytest.raises(ImportFormatError, match=r"not <ICD10PCS\.tabular>"):
        _import(conn, "icd10pcs-tables", wrong)

    assert get_release(conn, "icd10pcs-tables").source_file == TABLES.name
    assert conn.execute("SELECT COUNT(*) FROM pcs_tables").fetchone()[0] == 3


def test_row_whose_code_count_disagrees_is_refused(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    broken = tmp_path / "icd10pcs_tables_2026.xml"
    text = TABLES.read_text(encoding="utf-8")
    broken.write_text(text.replace('<pcsRow codes="', '<pcsRow codes="1', 1), encoding="utf-8")

    with pytest.raises(ImportFormatError, match="codes but its axes give"):
        _import(conn, "icd10pcs-tables", broken)


def test_import_dir_finds_both_files() -> None:
    found = {importer.kind: path.name for importer, path in find_official_files(DATA)}

    assert found["icd10pcs-tables"] == "icd10pcs_tables_2026.xml"
    assert found["icd10pcs-definitions"] == "icd10pcs_definitions_2026.xml"
    assert icd10pcs_tables.TABLES_CODE_SET == "icd10pcs-tables"


# -- the real files, as the session database loaded them ----------------------------------


@pytest.fixture(scope="module")
def store(code_db: Path) -> CodeStore:
    return CodeStore(db.connect(code_db, readonly=True))


@pytest.fixture(scope="module")
def builder(store: CodeStore) -> PcsBuilder:
    return PcsBuilder(store.conn)


def test_real_files_are_loaded_whole(store: CodeStore) -> None:
    count = {
        table: store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("pcs_tables", "pcs_axis_values", "pcs_definitions", "pcs_device_aggregation")
    }
    assert count == {
        "pcs_tables": 914,
        "pcs_axis_values": 30789,
        "pcs_definitions": 1090,
        "pcs_device_aggregation": 99,
    }
    assert store.releases["icd10pcs-tables"].version == "FY2026"
    assert store.releases["icd10pcs-definitions"].version == "FY2026"


def test_table_rows_expand_to_exactly_the_order_files_codes(store: CodeStore) -> None:
    """Every code the rows allow is a billable code of the order file, and back."""
    rows: dict[tuple[str, int], dict[int, list[str]]] = {}
    for tbl, seq, pos, value in store.conn.execute(
        "SELECT tbl, row_seq, pos, value FROM pcs_axis_values"
    ):
        rows.setdefault((tbl, seq), {}).setdefault(pos, []).append(value)
    built = {
        tbl + "".join(chars)
        for (tbl, _), axes in rows.items()
        for chars in product(*(axes[pos] for pos in (4, 5, 6, 7)))
    }
    listed = {
        code
        for (code,) in store.conn.execute(
            "SELECT code FROM codes WHERE system = ? AND billable = 1", (ICD10PCS,)
        )
    }
    assert built == listed


# -- building ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "title"), CASES, ids=[c[0] for c in CASES])
def test_first_code(
    builder: PcsBuilder, store: CodeStore, text: str, code: str, title: str
) -> None:
    row = store.row(ICD10PCS, code)
    assert row is not None and row["billable"] == 1 and row["title"] == title

    found = builder.build(text)

    assert found, text
    assert found[0].code == code, [(c.code, c.score, c.open_axes) for c in found]
    assert found[0].title == title


def test_every_axis_stated_scores_one(builder: PcsBuilder) -> None:
    for text in (
        "PCS for right TKA cemented",
        "EGD with biopsy of the stomach",
        "inguinal hernia repair with mesh, open, left",
        "ex lap with lysis of adhesions",
        "diagnostic knee arthroscopy right",
    ):
        best = builder.build(text)[0]
        assert (best.score, best.open_axes) == (1.0, ()), text


def test_open_axes_name_what_was_assumed(builder: PcsBuilder) -> None:
    lap = builder.build("lap chole")[0]
    assert lap.code == "0FT44ZZ" and "approach" not in lap.open_axes
    assumed = builder.build("cholecystectomy")[0]
    assert assumed.code == "0FT40ZZ" and "approach" in assumed.open_axes
    assert assumed.score < lap.score

    no_cement = builder.build("right TKA")[0]
    assert (no_cement.code, no_cement.open_axes) == ("0SRC0JZ", ("qualifier",))

    either_knee = builder.build("TKA", limit=3)
    assert {c.code for c in either_knee[:2]} == {"0SRC0JZ", "0SRD0JZ"}
    assert all("body part" in c.open_axes for c in either_knee[:2])

    stent = builder.build("PTCA with stent")[0]
    assert "body part" in stent.open_axes  # how many arteries was not said
    assert "device" not in stent.open_axes

    guessed = builder.build("hernia repair")[0]
    assert guessed.code.startswith("0YQ") and "body part" in guessed.open_axes


def test_later_procedures_follow_the_first(builder: PcsBuilder) -> None:
    codes = [c.code for c in builder.build("TAH-BSO", limit=6)]
    assert codes[0] == "0UT90ZZ"  # uterus
    assert {"0UTC0ZZ", "0UT70ZZ", "0UT20ZZ"} <= set(codes)  # cervix, both tubes and ovaries


def test_history_drops_only_the_procedure_it_names(builder: PcsBuilder) -> None:
    assert builder.build("h/o right TKA, now lap chole")[0].code == "0FT44ZZ"


def test_the_last_approach_named_wins(builder: PcsBuilder) -> None:
    best = builder.build("laparoscopic cholecystectomy converted to open")[0]
    assert (best.code, best.open_axes) == ("0FT40ZZ", ("qualifier",))


def test_each_sentence_is_read_on_its_own(builder: PcsBuilder) -> None:
    email = (
        "Hi, last week we had a lap chole converted to open due to dense adhesions.\n"
        "Later the patient needed an EGD with biopsy of the\nduodenum. Then a colonoscopy "
        "with polypectomy of the transverse colon. What PCS codes should we use? Thanks,\n"
        "Mary. The patient has type 2 diabetes and a history of a right TKA."
    )
    codes = [c.code for c in builder.build(email, limit=3)]
    assert codes == ["0FT40ZZ", "0DB98ZX", "0DBL8ZZ"]


@pytest.mark.parametrize("text", NOT_PROCEDURES)
def test_no_procedure_named_gives_nothing(builder: PcsBuilder, text: str) -> None:
    assert builder.build(text) == []


def test_a_side_is_never_contradicted(builder: PcsBuilder) -> None:
    sided = [
        *(text for text, _, _ in CASES if re.search(r"\b(left|right)\b", text, re.I)),
        "left inguinal hernia repair",
        "right breast biopsy",
        "left salpingo-oophorectomy",
        "removal of left kidney stone",
    ]
    for text in sided:
        side = "Left" if re.search(r"\bleft\b", text, re.I) else "Right"
        other = {"Left": "Right", "Right": "Left"}[side]
        for candidate in builder.build(text, limit=10):
            title = re.sub(r"(Left|Right) Internal Mammary", "", candidate.title)
            assert other not in title, (text, candidate)


def test_bilateral_without_a_bilateral_value_offers_both_sides(builder: PcsBuilder) -> None:
    codes = [c.code for c in builder.build("bilateral TKA", limit=2)]
    assert set(codes) == {"0SRC0JZ", "0SRD0JZ"}


def test_candidates_are_valid_codes_with_comparable_scores(
    builder: PcsBuilder, store: CodeStore
) -> None:
    for text, _, _ in CASES:
        found = builder.build(text, limit=5)
        assert 1 <= len(found) <= 5
        assert len({c.code for c in found}) == len(found)
        for candidate in found:
            assert isinstance(candidate, PcsCandidate)
            assert 0 < candidate.score <= 1
            assert set(candidate.open_axes) <= {"body part", "approach", "device", "qualifier"}
            row = store.row(ICD10PCS, candidate.code)
            assert row["billable"] == 1 and row["title"] == candidate.title
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].score = 0.5  # type: ignore[misc]


def test_limit(builder: PcsBuilder) -> None:
    assert len(builder.build("appendectomy", limit=2)) == 2
    assert builder.build("appendectomy", limit=0) == []


def test_without_the_tables_it_builds_nothing(tmp_path: Path) -> None:
    empty = PcsBuilder(db.connect(tmp_path / "codes.sqlite"))

    assert not empty.available
    assert empty.build("lap chole") == []


def test_words_file_names_only_what_the_tables_have(store: CodeStore) -> None:
    """Every root operation, approach and body part pcs_words.toml names is one the PCS
    tables use, so a typo there cannot silently stop a phrase from building."""
    words = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    operations = {
        (tbl[0], op) for tbl, op in store.conn.execute("SELECT tbl, operation FROM pcs_tables")
    }
    approaches = words["approaches"]["values"]
    entries = [*words["operations"].values(), *words["suffixes"].values()]
    entries += [s for rule in words["suffixes"].values() for s in rule.get("stems", {}).values()]
    for entry in entries:
        names = entry.get("operation", [])
        for name in [names] if isinstance(names, str) else names:
            assert (entry.get("section", "0"), name) in operations, name
        for key in ("approach", "prefer_approach"):
            names = entry.get(key, [])
            assert set([names] if isinstance(names, str) else names) <= set(approaches)
    for names in words["approaches"]["words"].values():
        assert set([names] if isinstance(names, str) else names) <= set(approaches)
    objects = [v if isinstance(v, str) else v["operation"] for v in words["objects"].values()]
    assert set(objects) | set(words["with_substitute"].values()) <= {op for _, op in operations}
    labels = " ".join(
        label for (label,) in store.conn.execute("SELECT DISTINCT label FROM pcs_axis_values")
    ).lower()
    bodies = [entry.get("body", []) for entry in words["operations"].values()]
    bodies += [[stem] for stem in words["stems"].values() if stem]
    for body in bodies:
        for phrase in [body] if isinstance(body, str) else body:
            assert phrase.split()[0][:5] in labels, phrase


def test_build_is_fast_when_warm(builder: PcsBuilder) -> None:
    for text, _, _ in CASES:
        builder.build(text)
    took = []
    for text, _, _ in CASES:
        started = time.perf_counter()
        builder.build(text)
        took.append(time.perf_counter() - started)
    assert statistics.median(took) < 0.01


def test_a_device_the_text_names_outranks_the_procedure_words_own(builder: PcsBuilder) -> None:
    """ "THA" implies a synthetic substitute; the bearing surface named is more precise."""
    hip = builder.build("left total hip, metal on poly, cemented")[0]
    assert (hip.code, hip.open_axes) == ("0SRB029", ())
    assert hip.title == (
        "Replacement of Left Hip Joint with Metal on Polyethylene Synthetic Substitute, "
        "Cemented, Open Approach"
    )
    assert builder.build("right THA, ceramic on ceramic, uncemented")[0].code == "0SR903A"
    assert builder.build("reverse total shoulder arthroplasty left")[0].code == "0RRK00Z"
    # The aggregation table's general value is only for tables without the specific one.
    assert builder.build("open IM nail right femoral shaft fx")[0].code == "0QS806Z"


def test_a_status_builds_only_when_pcs_is_asked_for(builder: PcsBuilder) -> None:
    """ "On the vent" is the patient's status, unless the coder asks for the PCS code."""
    assert builder.build("on the vent 36 hrs") == []
    asked = builder.build("on the vent 36 hrs", asked=True)
    assert asked[0].code == "5A1945Z"
    assert builder.build("ESRD on HD", asked=True)[0].code.startswith("5A1D")
    # a transplant's rejection is a complication (T86.11), no transplantation done
    assert builder.build("kidney transplant rejection") == []
    # a supply's "replacement" is no root operation (A7032)
    assert builder.build("nasal cushion replacement for CPAP") == []
    # a consult before a procedure, or a test before one, is the visit's reason (Z30.09,
    # Z01.810), no procedure done
    assert builder.build("vasectomy consult") == []
    assert builder.build("pre-op EKG") == []


def test_a_thing_alone_is_built_once_an_act_or_site_is_named(builder: PcsBuilder) -> None:
    assert builder.build("insulin 10 units") == []
    assert builder.build("insulin drip peripheral IV")[0].code == "3E033VG"
    assert builder.build("IUD") == []
    assert builder.build("IUD insertion")[0].code == "0UH97HZ"
    assert builder.build("tissue expander left breast")[0].code == "0HHU0NZ"


def test_durations_pick_the_fifth_character(builder: PcsBuilder) -> None:
    codes = {
        text: builder.build(text)[0].code
        for text in (
            "mechanical ventilation less than 24 hrs",
            "mechanical ventilation > 96 hours",
            "CRRT",
            "hemodialysis 4 hours",
        )
    }
    assert codes == {
        "mechanical ventilation less than 24 hrs": "5A1935Z",
        "mechanical ventilation > 96 hours": "5A1955Z",
        "CRRT": "5A1D90Z",
        "hemodialysis 4 hours": "5A1D70Z",
    }


def test_search_puts_the_built_procedure_first(store: CodeStore) -> None:
    """A diagnosis title sharing the words ("Avulsion of left eye", "Encounter for
    circumcision") follows the procedure built; the builder's order is kept."""
    search = CodeSearch(store)
    assert search.search("enucleation left eye")[0].code == "08T1XZZ"
    assert search.search("circumcision")[0].code == "0VTTXZZ"
    assert [h.code for h in search.search("vaginal hysterectomy", limit=2)] == [
        "0UT97ZZ",
        "0UTC7ZZ",
    ]
    assert search.search("ESRD on hemodialysis")[0].system != ICD10PCS
    # a status or a wait is no procedure done
    assert search.search("awaiting kidney transplant")[0].code == "Z76.82"
    assert search.search("L BKA amputee")[0].code == "Z89.512"
    assert search.search("on the vent 36 hrs, PCS code")[0].code == "5A1945Z"


def test_a_verb_acts_on_the_device_a_procedure_word_names(builder: PcsBuilder) -> None:
    """ "PEG tube" alone means putting one in; "PEG tube removal" takes it out."""
    removal = builder.build("PEG tube removal")[0]
    assert (removal.code, removal.title) == (
        "0DP6XUZ",
        "Removal of Feeding Device from Stomach, External Approach",
    )
    assert builder.build("foley removal")[0].code == "0TPBX0Z"
    assert builder.build("removal of left chest tube")[0].code == "0WPBX0Z"
    revision = builder.build("total knee revision right")[0]
    assert (revision.code, revision.title) == (
        "0SWC0JZ",
        "Revision of Synthetic Substitute in Right Knee Joint, Open Approach",
    )


def test_coders_names_of_a_repair_a_hemostasis_and_a_craniotomy(store: CodeStore) -> None:
    search = CodeSearch(store)
    # a mesh of any make turns the hernia repair into a Supplement; Lichtenstein is one
    assert search.search("R inguinal hernia open repair with polypropylene mesh")[0].code == (
        "0YU50JZ"
    )
    assert search.search("Lichtenstein repair, right")[0].code == "0YU50JZ"
    # clips on a bleeding ulcer through the scope control the bleeding (0W3P)
    assert search.search("EGD with hemoclips for bleeding gastric ulcer")[0].code == "0W3P8ZZ"
    assert search.search("EGD with clips for bleeding ulcer")[0].code == "0W3P8ZZ"
    # a craniotomy named for a lobe reaches the brain there, not the bone it opens
    assert search.search("L frontal craniotomy and resection of tumor")[0].code == "00B70ZZ"
