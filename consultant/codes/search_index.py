"""The FTS5 index over `search_terms`, rebuilt inside each import's transaction."""

from __future__ import annotations

import sqlite3

FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    text,
    content='search_terms',
    content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""


def rebuild_search_index(conn: sqlite3.Connection) -> None:
    conn.execute(FTS_SCHEMA)
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")
