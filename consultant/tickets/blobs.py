"""Content-addressed storage of raw messages and attachment files in the database."""

from __future__ import annotations

import hashlib

from sqlmodel import Session, select

from consultant.tickets.models import Blob


def store_blob(session: Session, data: bytes, sha256: str | None = None) -> str:
    """Keep DATA once (by its SHA-256, which the caller may already know); returns the hash."""
    digest = sha256 or hashlib.sha256(data).hexdigest()
    if session.exec(select(Blob.sha256).where(Blob.sha256 == digest)).first() is None:
        session.add(Blob(sha256=digest, size=len(data), data=data))
    return digest


def load_blob(session: Session, sha256: str) -> bytes:
    blob = session.get(Blob, sha256)
    if blob is None:
        raise LookupError(f"no stored blob {sha256}; the database is missing data it references")
    return blob.data
