"""MS-DRG CC/MCC levels and CC exclusions, for every version the drgpy package ships.

Whether a secondary diagnosis is a CC or an MCC, and whether the principal diagnosis
cancels it (a CC exclusion), decides an inpatient stay's DRG; coders ask it of one
discharge date, so every version is loaded with the dates it grouped discharges.
drgpy carries each version's CMS Appendix C as xz-compressed JSON (`ccmap`: code ->
level, PDX collection, HAC category and the Part 2 "MCC only if discharged alive" flag;
`exmap`: collection -> principal diagnoses); we read those files rather than parse CMS's
text again. drgpy gives HAC categories only where its Appendix C has the HAC column
(drgpy 0.2.1: v43.1 only); in older versions every `hac` is null, which says nothing.
"""

from __future__ import annotations

import json
import lzma
import re
import sqlite3
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import normalize_icd10cm

CODE_SET = "msdrg"

# The first discharge date of each version drgpy ships. CMS numbers the October release
# of fiscal year FY as v(FY - 1983) (v36 = FY2019, from 2018-10-01) and an April update
# within the year as .1; drgpy's _versions.py gives the same dates. CMS's v37.1-v40.1
# April updates are not in drgpy, so the October version stands for those whole years.
EFFECTIVE: dict[str, date] = {
    "v36": date(2018, 10, 1),
    "v37": date(2019, 10, 1),
    "v38": date(2020, 10, 1),
    "v39": date(2021, 10, 1),
    "v40": date(2022, 10, 1),
    "v41": date(2023, 10, 1),
    "v41.1": date(2024, 4, 1),
    "v42": date(2024, 10, 1),
    "v42.1": date(2025, 4, 1),
    "v43": date(2025, 10, 1),
    "v43.1": date(2026, 4, 1),
}

EXCLUDED_SHOWN = 20  # principal diagnoses listed per CC/MCC; the count says how many more

_FILE = re.compile(r"v(\d+)(?:\.(\d+))?\.json\.xz")
_SCHEMA_VERSION = 1  # drgpy's runtime data schema this reader understands
_LEVELS = frozenset({"CC", "MCC"})
_HAC = re.compile(r"\d{2}")  # CMS's HAC category number, '01'-'14'
_BATCH = 20_000


def _version_key(name: str) -> tuple[int, int] | None:
    """(43, 1) for `v43.1.json.xz`; None for a file that isn't drgpy runtime data."""
    match = _FILE.fullmatch(name)
    return (int(match[1]), int(match[2] or 0)) if match else None


def bundled_data() -> Path:
    """drgpy's newest runtime data file; the loader reads its sibling versions too."""
    try:
        folder = resources.files("drgpy.runtime_data")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "the drgpy package is not installed; `pip install drgpy`, then "
            "`consultant codes import msdrg`"
        ) from None
    named = [(key, entry) for entry in folder.iterdir() if (key := _version_key(entry.name))]
    if not named:
        raise FileNotFoundError(f"drgpy ships no runtime data files in {folder}")
    return Path(str(max(named)[1]))


def _read(path: Path) -> dict:
    """One version's payload, checked for the parts the loader uses."""
    version = path.name.removesuffix(".json.xz")
    try:
        payload = json.loads(lzma.decompress(path.read_bytes()))
    except (lzma.LZMAError, ValueError) as exc:
        raise ImportFormatError(f"{path.name} is not drgpy runtime data: {exc}") from None
    if not isinstance(payload, dict) or payload.get("schema_version") != _SCHEMA_VERSION:
        raise ImportFormatError(
            f"{path.name}: not drgpy runtime data of schema {_SCHEMA_VERSION}; "
            "a newer drgpy may need a newer CaseConsultant"
        )
    if payload.get("version") != version:
        raise ImportFormatError(f"{path.name} holds version {payload.get('version')!r}")
    ccmap, exmap = payload.get("ccmap"), payload.get("exmap")
    if not isinstance(ccmap, dict) or not isinstance(exmap, dict):
        raise ImportFormatError(f"{path.name} lacks drgpy's `ccmap` and `exmap` tables")
    if not all(isinstance(principals, list) for principals in exmap.values()):
        raise ImportFormatError(f"{path.name}: an `exmap` collection is not a list of codes")
    for code, entry in ccmap.items():
        if not isinstance(entry, dict) or entry.get("level") not in _LEVELS:
            raise ImportFormatError(f"{path.name}: {code} has no CC/MCC level")
        hac = entry.get("hac")
        if hac is not None and not (isinstance(hac, str) and _HAC.fullmatch(hac)):
            raise ImportFormatError(f"{path.name}: {code} has HAC category {hac!r}")
    return payload


def _versions_beside(path: Path) -> list[Path]:
    """Every runtime data file in PATH's folder, oldest version first."""
    if _version_key(path.name) is None:
        raise ImportFormatError(
            f"{path.name} is not one of drgpy's runtime data files (v43.1.json.xz); "
            "run `consultant codes import msdrg` without a FILE"
        )
    files = sorted(
        (key, entry) for entry in path.parent.iterdir() if (key := _version_key(entry.name))
    )
    unknown = [e.name for _, e in files if e.name.removesuffix(".json.xz") not in EFFECTIVE]
    if unknown:
        raise ImportFormatError(
            f"drgpy ships {', '.join(unknown)}, whose effective date msdrg.EFFECTIVE "
            "does not know; add it there"
        )
    return [entry for _, entry in files]


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Every version in PATH's folder (drgpy's runtime_data) into the drg_* tables."""
    files = _versions_beside(path)
    names = [entry.name.removesuffix(".json.xz") for entry in files]
    starts = [EFFECTIVE[name] for name in names]
    ends: list[date | None] = [start - timedelta(days=1) for start in starts[1:]]
    ends.append(None)
    conn.executemany(
        "INSERT INTO drg_versions (version, valid_from, valid_to) VALUES (?, ?, ?)",
        [
            (name, start.isoformat(), end and end.isoformat())
            for name, start, end in zip(names, starts, ends, strict=True)
        ],
    )
    dotted = cache(normalize_icd10cm)
    written = len(names)
    for name, entry in zip(names, files, strict=True):
        payload = _read(entry)
        # `hac`: the HAC category, dropped by drgpy's grouper unless present on admission;
        # `aowa`: Appendix C Part 2, an MCC only for patients discharged alive.
        cc_rows = [
            (
                name,
                dotted(code),
                info["level"],
                info.get("pdx"),
                info.get("hac"),
                int(bool(info.get("aowa"))),
            )
            for code, info in payload["ccmap"].items()
        ]
        exclusion_rows = [
            (name, collection, dotted(principal))
            for collection, principals in payload["exmap"].items()
            for principal in principals
        ]
        for sql, rows in (
            (
                "INSERT INTO drg_cc (version, code, level, collection, hac, mcc_if_alive)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                cc_rows,
            ),
            (
                "INSERT INTO drg_cc_exclusions (version, collection, principal) VALUES (?, ?, ?)",
                exclusion_rows,
            ),
        ):
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                conn.executemany(sql, batch)
                written += len(batch)
                progress(written)
    return Loaded(
        version=f"MS-DRG {names[0]}–{names[-1]}",
        effective=starts[-1].isoformat(),
        row_count=written,
    )


@dataclass(frozen=True)
class CcMcc:
    """A secondary diagnosis's severity in the version in force on a discharge date."""

    code: str
    level: str  # 'CC' or 'MCC'
    version: str  # 'v43.1'
    excluded_with: list[str]  # the first EXCLUDED_SHOWN principal dx that cancel it, sorted
    excluded_count: int  # all principal dx that cancel it
    excluded_by_principal: bool | None  # does the given principal cancel it; None: none given
    hac: str | None  # HAC category ('04'): not a CC/MCC unless present on admission
    mcc_if_alive: bool  # an MCC only when the patient is discharged alive

    def to_dict(self) -> dict:
        return asdict(self)


def version_on(conn: sqlite3.Connection, on: date) -> str | None:
    """The version grouping discharges on ON: the newest one after its start, None before
    the oldest."""
    row = conn.execute(
        "SELECT version FROM drg_versions WHERE valid_from <= ? ORDER BY valid_from DESC LIMIT 1",
        (on.isoformat(),),
    ).fetchone()
    return row[0] if row else None


def cc_mcc(
    conn: sqlite3.Connection, code: str, on: date, principal: str | None = None
) -> CcMcc | None:
    """CODE's CC/MCC level on ON and the principal diagnoses that exclude it; None when it
    is neither (or no version covers ON)."""
    version = version_on(conn, on)
    if version is None:
        return None
    code = normalize_icd10cm(code)
    row = conn.execute(
        "SELECT level, collection, hac, mcc_if_alive FROM drg_cc WHERE version = ? AND code = ?",
        (version, code),
    ).fetchone()
    if row is None:
        return None
    level, collection, hac, mcc_if_alive = row[0], row[1], row[2], bool(row[3])
    shown = [
        r[0]
        for r in conn.execute(
            "SELECT principal FROM drg_cc_exclusions WHERE version = ? AND collection = ?"
            " ORDER BY principal LIMIT ?",
            (version, collection, EXCLUDED_SHOWN),
        )
    ]
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM drg_cc_exclusions WHERE version = ? AND collection = ?",
        (version, collection),
    ).fetchone()
    excluded_by = None
    if principal is not None:
        excluded_by = (
            conn.execute(
                "SELECT 1 FROM drg_cc_exclusions"
                " WHERE version = ? AND collection = ? AND principal = ?",
                (version, collection, normalize_icd10cm(principal)),
            ).fetchone()
            is not None
        )
    return CcMcc(code, level, version, shown, count, excluded_by, hac, mcc_if_alive)


def levels_by_version(conn: sqlite3.Connection, code: str) -> list[tuple[str, str | None]]:
    """(version, 'CC' | 'MCC' | None) for every loaded version, oldest first: a code's
    severity history."""
    return [
        (row[0], row[1])
        for row in conn.execute(
            "SELECT v.version, c.level FROM drg_versions v"
            " LEFT JOIN drg_cc c ON c.version = v.version AND c.code = ?"
            " ORDER BY v.valid_from",
            (normalize_icd10cm(code),),
        )
    ]
