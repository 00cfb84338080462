"""Brand and other drug names mapped to the generic name the code sets use.

Coders write "Norco", "Zestril", "Toradol", "Rocephin"; the Table of Drugs and Chemicals
and the HCPCS J-code descriptors name generics (hydrocodone, lisinopril, ketorolac,
ceftriaxone). The map comes from the `drug-named-entity-recognition` package (MIT; its
dictionary joins MedlinePlus, DrugBank and Wikipedia names); it is read once at import
into `drug_names`, since loading the package itself costs a process some 300 MB.
"""

from __future__ import annotations

import bz2
import pickle
import re
import sqlite3
from importlib import metadata, resources
from pathlib import Path

from consultant.codes.importing import ImportFormatError, Loaded, Progress

CODE_SET = "drug-names"
_PACKAGE = "drug_named_entity_recognition"
_FILE = "drug_ner_dictionary.pkl.bz2"
_NAME = re.compile(r"[a-z][a-z0-9\-]*(?: [a-z0-9\-]+){0,2}")
_BATCH = 20000


def bundled_data() -> Path:
    return Path(str(resources.files(_PACKAGE) / _FILE))


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    try:
        with bz2.open(path) as fh:
            # A pickle runs code as it loads: give only the package's own file.
            data = pickle.load(fh)
        variants: dict[str, list[str]] = data["drug_variant_to_canonical"]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError) as exc:
        raise ImportFormatError(
            f"{path.name} is not the drug-named-entity-recognition dictionary ({exc}); "
            "give its drug_ner_dictionary.pkl.bz2, or no FILE to use the installed package's"
        ) from None
    rows = [
        (name, generics[0], CODE_SET)
        for name, generics in variants.items()
        if _NAME.fullmatch(name) and generics and generics[0] != name and "," not in generics[0]
    ]
    for start in range(0, len(rows), _BATCH):
        conn.executemany(
            "INSERT OR IGNORE INTO drug_names (name, generic, code_set) VALUES (?, ?, ?)",
            rows[start : start + _BATCH],
        )
        progress(min(start + _BATCH, len(rows)))
    return Loaded(f"drug-named-entity-recognition {_version()}", None, len(rows))


def _version() -> str:
    try:
        return metadata.version("drug-named-entity-recognition")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def generic_of(conn: sqlite3.Connection, name: str) -> str | None:
    """The generic name NAME stands for, or None (also when the map is not loaded)."""
    try:
        row = conn.execute("SELECT generic FROM drug_names WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None
