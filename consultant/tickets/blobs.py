"""Reading back raw messages and attachment files (written by rows.RowWriter.blob)."""

from __future__ import annotations

from sqlmodel import Session

from consultant.tickets.models import Blob


def load_blob(session: Session, sha256: str) -> bytes:
    blob = session.get(Blob, sha256)
    if blob is None:
        raise LookupError(f"no stored blob {sha256}; the database is missing data it references")
    return blob.data
