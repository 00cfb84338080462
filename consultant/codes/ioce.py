"""CMS's Integrated Outpatient Code Editor (I/OCE) data: every code's quarters, and the
hospital outpatient NCCI edits.

A claim is judged by the code set in force on its date of service, while the tabular
and HCPCS files each describe one release. The I/OCE dates every HCPCS, CPT and
ICD-10-CM code by quarter, so it answers "was G2211 billable in 2020?" or "was Z91.011
still a code in December 2025?". It also carries the NCCI PTP and add-on edits for
hospital outpatient claims, which differ from the practitioner tables in `ncci`.

CMS publishes the I/OCE a quarter at a time (a Java program and its tables); the pyoce
package, a Python port, ships every quarter from July 2019 in one LMDB file, read here
with `lmdb` and `marshal` alone (pyoce itself needs Python 3.12). Its named databases,
keyed by code and the range of I/OCE versions (one a quarter) a record holds:

- `version_range`: version -> {date_started, date_ended (YYYYMMDD ints), version_id}.
  The newest version's date_ended is a placeholder years ahead: it is read as open.
- `data_hcpcs`: 'CODE|lo|hi' -> {description, ...}, HCPCS Level II and CPT codes. CPT
  descriptors are the AMA's, and CDT (D-code) descriptors the ADA's: only the numbers
  of those are kept.
- `data_dx10`: 'CODE|lo|hi' -> {description, ...}, ICD-10-CM codes billable then
  (stored dotted; FY2026's QA0.- codes among them).
- `map_ncci`: column 1 -> list of (column 2, marshal{mod_indicator, lo_version,
  hi_version}).
- `map_addon_type1`/`map_addon_type3`: 'ADDON|PRIMARY|lo|hi' -> {addon_primary, lo, hi};
  `map_addon_type2`: 'ADDON' -> {lo, hi}, the primaries left to the contractor.

Ranges of one code (or pair) that touch or overlap are merged into one row per unbroken
run of quarters.
"""

from __future__ import annotations

import itertools
import lzma
import marshal
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.ncci import CONTRACTOR_DEFINED
from consultant.codes.systems import CPT, HCPCS, HCPCS_SHAPE, ICD10CM, normalize

CODE_SET = "ioce"

_BATCH = 50_000
_CHUNK = 1 << 20
_XZ_MAGIC = b"\xfd7zXZ\x00"
_TABLES = (
    "version_range",
    "data_hcpcs",
    "data_dx10",
    "map_ncci",
    "map_addon_type1",
    "map_addon_type2",
    "map_addon_type3",
)
_WANTED = (
    "give the pyoce wheel (pyoce-*.whl), the pyoce/data/pyoce.mdb.xz inside it, "
    "or that file unpacked (pyoce.mdb)"
)

_INSERT_VALIDITY = (
    "INSERT INTO code_validity (system, code, valid_from, valid_to, title, code_set)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_PTP = (
    "INSERT INTO ptp_edits (column1, column2, prior_1996, effective, deleted,"
    " modifier_indicator, rationale, code_set) VALUES (?, ?, 0, ?, ?, ?, '', ?)"
)
_INSERT_ADDON = (
    "INSERT INTO addon_edits (addon, addon_type, primary_code, effective, deleted, code_set)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)

_T = TypeVar("_T")

# (key, lo version, hi version, payload): one stored range of one code or pair.
_Range = tuple[Any, int, int, Any]


# --- the file -----------------------------------------------------------------------


@contextmanager
def _lmdb_file(path: Path) -> Iterator[Path]:
    """The LMDB file PATH is, or holds (in the wheel, xz-compressed), unpacked into a
    temporary directory that is removed afterwards."""
    is_zip = zipfile.is_zipfile(path)
    with path.open("rb") as fh:
        is_xz = fh.read(len(_XZ_MAGIC)) == _XZ_MAGIC
    if not is_zip and not is_xz:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ioce-") as scratch:
        target = Path(scratch) / "pyoce.mdb"
        try:
            if is_zip:
                with zipfile.ZipFile(path) as archive:
                    member = next(
                        (n for n in archive.namelist() if n.endswith(("pyoce.mdb.xz", ".mdb"))),
                        None,
                    )
                    if member is None:
                        raise ImportFormatError(
                            f"{path.name} holds no pyoce.mdb.xz or .mdb file; {_WANTED}"
                        )
                    with archive.open(member) as packed:
                        _unpack(packed, target, xz=member.endswith(".xz"))
            else:
                with path.open("rb") as packed:
                    _unpack(packed, target, xz=True)
        except (lzma.LZMAError, EOFError, zipfile.BadZipFile) as exc:
            raise ImportFormatError(
                f"{path.name} could not be unpacked ({exc}); {_WANTED}"
            ) from None
        yield target


def _unpack(packed: Any, target: Path, *, xz: bool) -> None:
    """Copy PACKED to TARGET a chunk at a time, decompressing xz on the way."""
    with lzma.open(packed) if xz else packed as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, _CHUNK)


@contextmanager
def _open(path: Path, name: str) -> Iterator[tuple[lmdb.Transaction, dict[str, Any]]]:
    """A read transaction on the LMDB file PATH and its named databases (NAME for messages)."""
    try:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=64)
    except lmdb.Error:
        raise ImportFormatError(
            f"{name} is not the I/OCE data (neither a zip, xz nor LMDB file); {_WANTED}"
        ) from None
    try:
        try:
            dbs = {table: env.open_db(table.encode(), create=False) for table in _TABLES}
        except lmdb.Error:
            raise ImportFormatError(
                f"{name} is an LMDB file without the I/OCE tables ({', '.join(_TABLES)}); {_WANTED}"
            ) from None
        with env.begin(buffers=False) as txn:
            yield txn, dbs
    finally:
        env.close()


# --- quarters -----------------------------------------------------------------------


def _iso(yyyymmdd: int, days_after: int = 0) -> str:
    day = date(yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100)
    return (day + timedelta(days=days_after)).isoformat()


@dataclass(frozen=True)
class _Quarters:
    """Each I/OCE version's days as ISO dates; the newest version's end is open (None)."""

    first_days: dict[int, str]
    last_days: dict[int, str | None]
    gone_days: dict[int, str | None]  # the day after the last: an edit no longer applies
    release: str  # 'I/OCE 27.1.0 (April 2026)', from the newest version
    effective: str  # the newest version's first day

    @classmethod
    def read(cls, txn: lmdb.Transaction, db: Any) -> _Quarters:
        rows = [marshal.loads(value) for _, value in txn.cursor(db=db)]
        if not rows:
            raise ImportFormatError(f"the I/OCE data has no versions; {_WANTED}")
        newest = max(rows, key=itemgetter("version"))
        ended = [row for row in rows if row is not newest]
        start = date.fromisoformat(_iso(newest["date_started"]))
        return cls(
            first_days={row["version"]: _iso(row["date_started"]) for row in rows},
            last_days={newest["version"]: None}
            | {row["version"]: _iso(row["date_ended"]) for row in ended},
            gone_days={newest["version"]: None}
            | {row["version"]: _iso(row["date_ended"], 1) for row in ended},
            release=f"I/OCE {newest['version_id']} ({start:%B} {start.year})",
            effective=start.isoformat(),
        )

    def first_day(self, version: int) -> str:
        return _of(self.first_days, version)

    def last_day(self, version: int) -> str | None:
        return _of(self.last_days, version)

    def gone_on(self, version: int) -> str | None:
        """`ptp_edits.deleted` for an edit whose last version is VERSION."""
        return _of(self.gone_days, version)


def _of(days: dict[int, _T], version: int) -> _T:
    try:
        return days[version]
    except KeyError:
        raise ImportFormatError(
            f"the I/OCE data names version {version}, which version_range lacks"
        ) from None


def _runs(ranges: Iterable[_Range]) -> Iterator[_Range]:
    """RANGES merged, per key, into unbroken runs of versions (ranges that touch or
    overlap); ranges of one key come together. A run keeps its last range's payload."""
    for key, group in itertools.groupby(ranges, key=itemgetter(0)):
        spans = sorted(group, key=itemgetter(1))
        _, lo, hi, payload = spans[0]
        for _, next_lo, next_hi, next_payload in spans[1:]:
            if next_lo > hi + 1:
                yield key, lo, hi, payload
                lo = next_lo
            hi = max(hi, next_hi)
            payload = next_payload
        yield key, lo, hi, payload


# --- rows ---------------------------------------------------------------------------


def _dated(txn: lmdb.Transaction, db: Any) -> Iterator[_Range]:
    """(code, lo, hi, description) of each 'CODE|lo|hi' record, in key order."""
    for key, value in txn.cursor(db=db):
        record = marshal.loads(value)
        code = key.split(b"|", 1)[0].decode()
        yield code, record["lo_version"], record["hi_version"], record["description"]


def _validity_rows(
    txn: lmdb.Transaction, dbs: dict[str, Any], quarters: _Quarters
) -> Iterator[tuple]:
    for code, lo, hi, description in _runs(_dated(txn, dbs["data_hcpcs"])):
        if HCPCS_SHAPE.match(code):
            system, title = HCPCS, description
        else:  # CPT (AMA text) or a CDT dental code (ADA text): the number only
            system, title = (CPT if code[0].isdigit() else HCPCS), None
        yield system, code, quarters.first_day(lo), quarters.last_day(hi), title, CODE_SET
    for code, lo, hi, description in _runs(_dated(txn, dbs["data_dx10"])):
        yield (
            ICD10CM,
            normalize(ICD10CM, code),
            quarters.first_day(lo),
            quarters.last_day(hi),
            description,
            CODE_SET,
        )


def _ptp_rows(txn: lmdb.Transaction, db: Any, quarters: _Quarters) -> Iterator[tuple]:
    """One row per pair, modifier indicator and run; a changed indicator starts a row."""
    for key, value in txn.cursor(db=db):
        column1 = key.decode()
        edits = [marshal.loads(packed) for _, packed in marshal.loads(value)]
        ranges = sorted(
            (
                ((e["code2"], e["mod_indicator"]), e["lo_version"], e["hi_version"], None)
                for e in edits
            ),
            key=itemgetter(0),
        )
        for (column2, modifier_allowed), lo, hi, _ in _runs(ranges):
            yield (
                column1,
                column2,
                quarters.first_day(lo),
                quarters.gone_on(hi),
                "1" if modifier_allowed else "0",
                CODE_SET,
            )


def _addon_rows(
    txn: lmdb.Transaction, db: Any, addon_type: str, quarters: _Quarters
) -> Iterator[tuple]:
    def ranges() -> Iterator[_Range]:
        for key, value in txn.cursor(db=db):
            record = marshal.loads(value)
            addon = key.split(b"|", 1)[0].decode()
            primary = record.get("addon_primary", CONTRACTOR_DEFINED)
            yield (addon, primary), record["lo_version"], record["hi_version"], None

    for (addon, primary), lo, hi, _ in _runs(ranges()):
        yield addon, addon_type, primary, quarters.first_day(lo), quarters.gone_on(hi), CODE_SET


def _write(
    conn: sqlite3.Connection, sql: str, rows: Iterable[tuple], progress: Progress, count: int
) -> int:
    """Insert ROWS in batches; the running total after them."""
    rows = iter(rows)
    while batch := list(itertools.islice(rows, _BATCH)):
        conn.executemany(sql, batch)
        count += len(batch)
        progress(count)
    return count


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    """Code validity runs (HCPCS, CPT numbers, ICD-10-CM) and the outpatient PTP and
    add-on edits, all as code set 'ioce'."""
    with _lmdb_file(path) as file, _open(file, path.name) as (txn, dbs):
        quarters = _Quarters.read(txn, dbs["version_range"])
        count = _write(conn, _INSERT_VALIDITY, _validity_rows(txn, dbs, quarters), progress, 0)
        count = _write(
            conn, _INSERT_PTP, _ptp_rows(txn, dbs["map_ncci"], quarters), progress, count
        )
        for addon_type in ("1", "2", "3"):
            rows = _addon_rows(txn, dbs[f"map_addon_type{addon_type}"], addon_type, quarters)
            count = _write(conn, _INSERT_ADDON, rows, progress, count)
    return Loaded(version=quarters.release, effective=quarters.effective, row_count=count)
