"""Code search quality and speed on the phrase sets in tests/data/search_eval_*.tsv.

Run: python bench/search_eval.py [--db codes.sqlite] [--data ../shared/data] [--failures]
Prints, per set: top-1 and top-5 accuracy, p50/p99 ms per query, and the same accuracy of a
plain FTS5 BM25 search over ICD-10-CM titles and inclusion terms (the baseline to beat);
then the peak RSS of this process. Without --db the database is built in a temp dir from
the bundled tabular and every official file under --data. --failures lists the dev set's
misses (never the holdout's: tuning must not see those).
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from consultant.codes import db
from consultant.codes.importers import find_official_files, with_bundled
from consultant.codes.importing import run_import
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.codes.systems import ICD10CM

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "dev": ROOT / "tests" / "data" / "search_eval_dev.tsv",
    "holdout": ROOT / "tests" / "data" / "search_eval_holdout.tsv",
}


def read_set(path: Path) -> list[tuple[str, str]]:
    """(phrase, expected code) pairs; lines starting with # are comments."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            phrase, code = line.split("\t")
            pairs.append((phrase, code.strip()))
    return pairs


def build(database: Path, data: Path) -> None:
    conn = db.connect(database)
    for importer, path in with_bundled(find_official_files(data)):
        code_set = importer.code_set(path)
        result = run_import(conn, code_set, path, importer.loader)
        print(f"imported {code_set:<17} {result.seconds:6.2f} s  {path.name}")
    conn.close()


BASELINE_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS baseline_fts USING fts5(
    text, content='search_terms', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
)
"""


def baseline(conn: sqlite3.Connection, phrase: str, limit: int = 5) -> list[str]:
    """Plain FTS5 BM25 over ICD-10-CM titles and inclusion terms: any word may match."""
    words = re.findall(r"[a-z0-9]+", phrase.lower())
    if not words:
        return []
    match = " OR ".join(f'"{w}"' for w in words)
    rows = conn.execute(
        "SELECT t.code FROM baseline_fts JOIN search_terms t ON t.id = baseline_fts.rowid"
        " WHERE baseline_fts MATCH ? AND t.system = ? AND t.source IN"
        " ('title', 'inclusion', 'includes') ORDER BY rank LIMIT 60",
        (match, ICD10CM),
    ).fetchall()
    codes: list[str] = []
    for (code,) in rows:
        if code not in codes:
            codes.append(code)
    return codes[:limit]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluate(search: CodeSearch, name: str, pairs: list[tuple[str, str]], failures: bool) -> None:
    top1 = top5 = base1 = base5 = 0
    times: list[float] = []
    misses = []
    for phrase, expected in pairs:
        start = time.perf_counter()
        hits = search.search(phrase, limit=5)
        times.append((time.perf_counter() - start) * 1000)
        codes = [h.code for h in hits]
        top1 += codes[:1] == [expected]
        top5 += expected in codes
        if codes[:1] != [expected]:
            misses.append((phrase, expected, hits))
        base = baseline(search.store.conn, phrase)
        base1 += base[:1] == [expected]
        base5 += expected in base
    n = len(pairs)
    print(
        f"{name:<8} n={n:<4} top-1 {top1 / n:6.1%}  top-5 {top5 / n:6.1%}  "
        f"p50 {percentile(times, 0.5):6.2f} ms  p99 {percentile(times, 0.99):6.2f} ms  |  "
        f"FTS5 BM25 baseline top-1 {base1 / n:6.1%}  top-5 {base5 / n:6.1%}"
    )
    if failures and name != "holdout":
        for phrase, expected, hits in misses:
            got = ", ".join(f"{h.code} {h.score:.2f}" for h in hits[:3]) or "-"
            rank = next((i + 1 for i, h in enumerate(hits) if h.code == expected), None)
            print(f"   {phrase!r:<55} want {expected:<9} (rank {rank})  got {got}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an already loaded code database")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--failures", action="store_true", help="list the dev set's misses")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = args.db
        if database is None:
            database = Path(tmp) / "codes.sqlite"
            # In a child process, so the RSS printed below is a searching process's own.
            child = multiprocessing.Process(target=build, args=(database, args.data))
            child.start()
            child.join()
        conn = db.connect(database)
        # The baseline's own plain FTS5 index; the service's search does not use one.
        conn.execute(BASELINE_FTS)
        conn.execute("INSERT INTO baseline_fts(baseline_fts) VALUES ('rebuild')")
        search = CodeSearch(CodeStore(conn))
        search.search("warm up: type 2 diabetes")
        for name, path in SETS.items():
            evaluate(search, name, read_set(path), args.failures)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (every loaded code set searched): {rss:.0f} MB")


if __name__ == "__main__":
    main()
