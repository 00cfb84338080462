"""Names and shapes of the code systems, and how a code is written in normalized form."""

from __future__ import annotations

import re

ICD10CM = "ICD-10-CM"
ICD10PCS = "ICD-10-PCS"
HCPCS = "HCPCS"
CPT = "CPT"
ICD9CM = "ICD-9-CM"  # retired in 2015; quoted in old records, answered through the GEMs
SYSTEMS = (ICD10CM, ICD10PCS, HCPCS, CPT)

# Release keys: one row per code set in the `releases` table.
CODE_SETS = {
    "icd10cm": ICD10CM,
    "icd10cm-index": ICD10CM,
    "icd10cm-index-additions": ICD10CM,  # the flattened FY2025 index's newer terms
    "icd10cm-drug": ICD10CM,
    "icd10cm-neoplasm": ICD10CM,
    "icd10cm-eindex": ICD10CM,
    "icd10cm-addenda": ICD10CM,
    "icd10pcs": ICD10PCS,
    "icd10pcs-addenda": ICD10PCS,
    "icd10pcs-tables": ICD10PCS,  # the PCS tables (valid axis values by row)
    "icd10pcs-definitions": ICD10PCS,  # root operation, approach and body part definitions
    "hcpcs": HCPCS,
    "cpt": CPT,
    "ncci-ptp": CPT,
    "ncci-mue": CPT,
    "ncci-addon": CPT,
    "modifiers": HCPCS,  # our notes on CPT (Level I) and HCPCS (Level II) modifiers
    "ioce": HCPCS,  # I/OCE: HCPCS and ICD-10-CM validity by quarter, outpatient NCCI edits
    "msdrg": ICD10CM,  # MS-DRG CC/MCC levels and exclusions
    "hcc": ICD10CM,  # CMS-HCC and RxHCC risk-adjustment maps
    "gems": ICD9CM,  # ICD-9-CM <-> ICD-10-CM General Equivalence Mappings
    "drug-names": ICD10CM,  # brand -> generic drug names, for the Table of Drugs and J-codes
}

# Statuses a code can have in an analysis.
BILLABLE = "billable"
NOT_BILLABLE = "not_billable"
NEEDS_SEVENTH = "needs_seventh_character"
INVALID = "invalid"
DELETED = "deleted"
UNVERIFIED = "unverified"
STATUSES = (BILLABLE, NOT_BILLABLE, NEEDS_SEVENTH, INVALID, DELETED, UNVERIFIED)

ICD10CM_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:[0-9A-Z]{1,4})?$")
# FY2026 opened categories with a letter second (QA0.0101): recognized only when dotted,
# since undotted they read like any word with a digit.
ICD10CM_LETTERED = re.compile(r"^[A-Z]{2}[0-9](?:[0-9A-Z]{1,4})?$")
ICD10PCS_SHAPE = re.compile(r"^[0-9B-DF-HX][0-9A-HJ-NP-Z]{6}$")
HCPCS_SHAPE = re.compile(r"^[A-CEGHJ-MP-V][0-9]{4}$")
CPT_SHAPE = re.compile(r"^(?:[0-9]{5}|[0-9]{4}[FTU])$")


def compact(code: str) -> str:
    """Upper case, without dots, dashes or spaces: the key every system compares on."""
    return re.sub(r"[\s.\-]", "", code).upper()


def normalize_icd10cm(code: str) -> str:
    """`e1122` -> `E11.22`: the dot goes after the category's three characters."""
    raw = compact(code)
    return raw if len(raw) <= 3 else f"{raw[:3]}.{raw[3:]}"


def normalize(system: str, code: str) -> str:
    """The form a code is stored and shown in, for its system."""
    if system == ICD10CM:
        return normalize_icd10cm(code)
    return compact(code)


def cpt_section(code: str) -> str | None:
    """The CPT section a code number falls in, by range; None when no section holds it.

    Ranges follow the CPT code book's section order; Category II (`nnnnF`) and
    Category III (`nnnnT`) codes are their own sections, `nnnnU` are PLA codes.
    """
    code = compact(code)
    if not CPT_SHAPE.match(code):
        return None
    suffix = code[4] if code[4].isalpha() else ""
    if suffix == "F":
        return "Category II (performance measurement)"
    if suffix == "T":
        return "Category III (emerging technology)"
    if suffix == "U":
        return "Proprietary Laboratory Analyses"
    number = int(code)
    for low, high, name in CPT_RANGES:
        if low <= number <= high:
            return name
    return None


CPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (99, 99, "Anesthesia (unlisted)"),
    (100, 1999, "Anesthesia"),
    (10004, 19499, "Surgery: integumentary system"),
    (20100, 29999, "Surgery: musculoskeletal system"),
    (30000, 32999, "Surgery: respiratory system"),
    (33016, 37799, "Surgery: cardiovascular system"),
    (38100, 38999, "Surgery: hemic and lymphatic systems"),
    (39000, 39599, "Surgery: mediastinum and diaphragm"),
    (40490, 49999, "Surgery: digestive system"),
    (50010, 53899, "Surgery: urinary system"),
    (54000, 55899, "Surgery: male genital system"),
    (55920, 55980, "Surgery: reproductive system and intersex"),
    (56405, 58999, "Surgery: female genital system"),
    (59000, 59899, "Surgery: maternity care and delivery"),
    (60000, 60699, "Surgery: endocrine system"),
    (61000, 64999, "Surgery: nervous system"),
    (65091, 68899, "Surgery: eye and ocular adnexa"),
    (69000, 69979, "Surgery: auditory system"),
    (69990, 69990, "Surgery: operating microscope"),
    (70010, 79999, "Radiology"),
    (80047, 89398, "Pathology and laboratory"),
    (90281, 99199, "Medicine"),
    (99202, 99499, "Evaluation and management"),
    (99500, 99607, "Medicine: home health and medication therapy management"),
)
