"""Modifiers: our own plain-language notes (modifiers.toml) next to HCPCS's official titles.

CPT modifier descriptors are the AMA's copyright, so for numeric (Level I) modifiers
the service can only speak in its own words; for HCPCS Level II modifiers it quotes
the public-domain title from the HCPCS file and adds our note. The notes ship as
package data and import as the `modifiers` code set like any other release.

Both live in the `modifiers` table, told apart by code set ('hcpcs' for the official
titles, 'modifiers' for ours), so either release can be replaced alone.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from consultant.codes import hcpcs
from consultant.codes.importing import ImportFormatError, Loaded, Progress
from consultant.codes.systems import CPT, HCPCS

CODE_SET = "modifiers"
SOURCE = "CaseConsultant"

_MODIFIER = re.compile(r"[0-9A-Z]{2}")


def builtin_path() -> Path:
    return Path(str(resources.files("consultant.codes") / "modifiers.toml"))


def _system(modifier: str) -> str:
    """Numeric modifiers are CPT (Level I); the rest are HCPCS Level II."""
    return CPT if modifier.isdigit() else HCPCS


def load(conn: sqlite3.Connection, path: Path, progress: Progress) -> Loaded:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path.name} is not valid TOML: {exc}") from None
    version, entries = data.get("version"), data.get("modifiers")
    if not isinstance(version, str) or not isinstance(entries, dict):
        raise ImportFormatError(
            f"{path.name} needs a top-level `version` string and a [modifiers.<code>] table "
            "per modifier"
        )
    rows = []
    for modifier, entry in entries.items():
        title = entry.get("title") if isinstance(entry, dict) else None
        explanation = entry.get("explanation") if isinstance(entry, dict) else None
        if not _MODIFIER.fullmatch(modifier) or not title or not explanation:
            raise ImportFormatError(
                f"{path.name}: [modifiers.{modifier}] needs a two-character modifier with "
                "a `title` and an `explanation`"
            )
        rows.append((modifier, CODE_SET, title, explanation, SOURCE))
    conn.executemany(
        "INSERT INTO modifiers (modifier, code_set, title, explanation, source)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    progress(len(rows))
    return Loaded(version=version, effective=None, row_count=len(rows))


@dataclass(frozen=True)
class ModifierInfo:
    modifier: str
    system: str  # CPT for numeric (Level I) modifiers, else HCPCS
    title: str  # the official HCPCS title when there is one, else ours
    source: str  # 'HCPCS 2019' or 'CaseConsultant': whose title it is
    explanation: str | None  # our note on when to use it and a common pitfall


def modifier_info(conn: sqlite3.Connection, modifier: str) -> ModifierInfo | None:
    """What to say about MODIFIER: never AMA text for CPT ones, official text for HCPCS ones."""
    key = modifier.strip().upper()
    rows = {
        row["code_set"]: row
        for row in conn.execute("SELECT * FROM modifiers WHERE modifier = ?", (key,))
    }
    ours, official = rows.get(CODE_SET), rows.get(hcpcs.CODE_SET)
    explanation = ours["explanation"] if ours else None
    if official and not key.isdigit():
        return ModifierInfo(key, HCPCS, official["title"], official["source"], explanation)
    if ours:
        return ModifierInfo(key, _system(key), ours["title"], SOURCE, explanation)
    return None
