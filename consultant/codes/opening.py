"""Opening the code database for drafting, ready on first use.

A machine with no code database yet gets the ICD-10-CM tabular bundled with
simple-icd-10-cm (and the team's modifier notes) loaded, so analysis and drafting
work before anyone imports the official files. The other bundled sets (MS-DRG, HCC,
GEMs) take longer and come with `codes import-bundled` or `import-dir`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from consultant.codes import icd10cm
from consultant.codes.db import connect
from consultant.codes.importers import bundled_files
from consultant.codes.importing import run_import
from consultant.codes.store import CodeStore

FIRST_RUN = (icd10cm.CODE_SET, "modifiers")


def open_store(path: Path, notify: Callable[[str], None] | None = None) -> CodeStore:
    """The store at PATH, loading the bundled ICD-10-CM first where there is none."""
    conn = connect(path)
    store = CodeStore(conn)
    if not store.has(icd10cm.CODE_SET):
        if notify is not None:
            notify("First run: loading the bundled ICD-10-CM tabular (a few seconds)...")
        for importer, source in bundled_files():
            if importer.kind not in FIRST_RUN:
                continue
            run_import(conn, importer.code_set(source), source, importer.loader)
        store = CodeStore(conn)
    return store
