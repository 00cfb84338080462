"""What every import shares: idempotence by checksum, one atomic transaction, progress."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consultant.codes.db import (
    CodeDatabaseError,
    Release,
    get_release,
    record_release,
    replacing_release,
    sha256_file,
)
from consultant.codes.search_index import rebuild_search_index

# Called with a count of rows written so far; the CLI turns it into a progress line.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Loaded:
    """What a loader reports about the file it wrote into the database."""

    version: str
    effective: str | None
    row_count: int


# A loader writes one file's rows inside the open transaction and says what it read.
Loader = Callable[[sqlite3.Connection, Path, Progress], Loaded]


@dataclass(frozen=True)
class ImportResult:
    release: Release
    skipped: bool  # the same file (by sha256) was already the current release
    seconds: float


class ImportFormatError(CodeDatabaseError):
    """The file is not the format the importer expects; the old release stays."""


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes, else Windows-1252, which CMS and
    spreadsheet exports use; undefined bytes become U+FFFD rather than failing."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _silent(_: int) -> None:
    return None


def run_import(
    conn: sqlite3.Connection,
    code_set: str,
    path: Path,
    loader: Loader,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import PATH as CODE_SET's release, unless the same file is already loaded."""
    started = time.perf_counter()
    if not path.is_file():
        raise CodeDatabaseError(f"{path} is not a file; give the path of the {code_set} file")
    digest = sha256_file(path)
    current = get_release(conn, code_set)
    if current and current.sha256 == digest and not force:
        return ImportResult(current, skipped=True, seconds=time.perf_counter() - started)
    with replacing_release(conn, code_set):
        loaded = loader(conn, path, progress or _silent)
        if loaded.row_count == 0:
            raise ImportFormatError(
                f"{path.name} held no {code_set} rows; is it the right file for `{code_set}`?"
            )
        release = record_release(
            conn,
            code_set,
            version=loaded.version,
            effective=loaded.effective,
            source=path,
            sha256=digest,
            row_count=loaded.row_count,
        )
        rebuild_search_index(conn)
        # Fresh statistics, or SQLite walks the primary key where an index serves.
        conn.execute("ANALYZE")
    return ImportResult(release, skipped=False, seconds=time.perf_counter() - started)
