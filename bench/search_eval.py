"""Code search quality and speed on the phrase sets in tests/data/, and the noise of the
suggestions drafts make for the labelled emails in tests/data/labelled_emails/.

Run: python bench/search_eval.py [--db codes.sqlite] [--data ../shared/data] [--failures]

Phrase sets are `phrase<TAB>expected code[<TAB>area]` lines: the development set is every
tests/data/search_eval_dev*.tsv, the holdouts tests/data/search_eval_holdout.tsv and
search_eval_holdout_b.tsv (each written blind by someone else, B after the first had been
measured many times; never tune on their items). Every search is blind, as a draft's is:
no system is given, the phrase's own words ("dx code", "J code") are all it has. Prints,
per set: first-place and top-five accuracy with p50/p99 ms per query, then the same by
code system and by area. For the emails, each is analyzed exactly as `consultant analyze`
does and judged against its labels: the noise rate is the share of drafts suggesting any
code outside the email's acceptable ones; facts are the expected answers (kind and codes)
that the draft's answers or suggestions hold. The emails have holdouts too, written blind
(tests/data/labelled_emails_holdout/ and labelled_emails_holdout_b/): only their totals are
printed. --failures lists the
development set's misses and the development emails' noise and missed facts (never a
holdout's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import tomllib
from collections import defaultdict
from datetime import date
from pathlib import Path

from consultant.codes import db
from consultant.codes.importers import find_official_files, with_bundled
from consultant.codes.importing import run_import
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.codes.systems import HCPCS, HCPCS_SHAPE, ICD10CM, ICD10PCS, ICD10PCS_SHAPE
from consultant.drafting.analyze import analyze
from consultant.templating import template_environment

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
EMAILS = DATA / "labelled_emails"
EMAILS_HOLDOUT = DATA / "labelled_emails_holdout"  # written blind; its misses are never listed
# Written blind on 2026-12-06, after the first holdouts had been measured ~25 times.
EMAILS_HOLDOUT_B = DATA / "labelled_emails_holdout_b"


def read_set(*paths: Path) -> list[tuple[str, str, str]]:
    """(phrase, expected code, area) triples; lines starting with # are comments."""
    triples = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                phrase, code, *area = line.split("\t")
                triples.append((phrase, code.strip(), area[0].strip() if area else "condition"))
    return triples


def system_of(code: str) -> str:
    if HCPCS_SHAPE.fullmatch(code):
        return HCPCS
    return ICD10PCS if ICD10PCS_SHAPE.fullmatch(code) else ICD10CM


def build(database: Path, data: Path) -> None:
    conn = db.connect(database)
    for importer, path in with_bundled(find_official_files(data)):
        code_set = importer.code_set(path)
        result = run_import(conn, code_set, path, importer.loader)
        print(f"imported {code_set:<17} {result.seconds:6.2f} s  {path.name}")
    conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(label: str, results: list[tuple[bool, bool, float]]) -> str:
    n = len(results)
    first = sum(r[0] for r in results) / n
    five = sum(r[1] for r in results) / n
    times = [r[2] for r in results]
    return (
        f"  {label:<16} n={n:<5} first {first:6.1%}  top-5 {five:6.1%}  "
        f"p50 {percentile(times, 0.5):6.2f} ms  p99 {percentile(times, 0.99):6.2f} ms"
    )


def evaluate(
    search: CodeSearch, name: str, triples: list[tuple[str, str, str]], failures: bool
) -> None:
    results: list[tuple[bool, bool, float]] = []
    by_system: dict[str, list] = defaultdict(list)
    by_area: dict[str, list] = defaultdict(list)
    misses = []
    for phrase, expected, area in triples:
        start = time.perf_counter()
        hits = search.search(phrase, limit=5)
        elapsed = (time.perf_counter() - start) * 1000
        codes = [h.code for h in hits]
        result = (codes[:1] == [expected], expected in codes, elapsed)
        results.append(result)
        by_system[system_of(expected)].append(result)
        by_area[area].append(result)
        if not result[0]:
            misses.append((phrase, expected, area, hits))
    print(f"{name}:")
    print(_line("all", results))
    for system in sorted(by_system):
        print(_line(system, by_system[system]))
    for area in sorted(by_area):
        print(_line(area, by_area[area]))
    if failures:
        for phrase, expected, area, hits in misses:
            got = ", ".join(f"{h.code} {h.score:.2f}" for h in hits[:3]) or "-"
            rank = next((i + 1 for i, h in enumerate(hits) if h.code == expected), None)
            print(f"   [{area}] {phrase!r:<55} want {expected:<9} (rank {rank})  got {got}")


def _acceptable(code: str, prefixes: list[str]) -> bool:
    return any(code.replace(".", "").startswith(p.replace(".", "")) for p in prefixes)


def evaluate_emails(
    store: CodeStore, search: CodeSearch, folder: Path, name: str, failures: bool
) -> None:
    """Noise rate and expected facts over the labelled emails in FOLDER."""
    labels = tomllib.loads((folder / "labels.toml").read_text(encoding="utf-8"))["email"]
    templates = template_environment(None)
    noisy = facts = held = 0
    by_kind: dict[str, list[bool]] = defaultdict(list)
    times: list[float] = []
    for label in labels:
        raw = (folder / label["file"]).read_bytes()
        start = time.perf_counter()
        result = analyze(raw, store, search, on=date(2026, 4, 1), templates=templates)
        times.append((time.perf_counter() - start) * 1000)
        noise = [s.code for s in result.suggestions if not _acceptable(s.code, label["acceptable"])]
        noisy += bool(noise)
        if failures and noise:
            print(f"   noise in {label['file']}: {', '.join(noise)}")
        for fact in label.get("facts", []):
            facts += 1
            answered = [a for a in result.answers if a.kind == fact["kind"]]
            named = {c for a in answered for c in a.codes} | {s.code for s in result.suggestions}
            text = " ".join(a.answer for a in answered)
            ok = bool(answered) and all(c in named or c in text for c in fact["codes"])
            held += ok
            by_kind[fact["kind"]].append(ok)
            if failures and not ok:
                got = "; ".join(f"{a.kind}: {a.codes}" for a in result.answers) or "no answer"
                print(f"   fact missed in {label['file']}: {fact['kind']} {fact['codes']} ({got})")
    n = len(labels)
    print(
        f"{name}: n={n}  noise rate {noisy / n:6.1%} ({noisy} drafts with an irrelevant "
        f"suggestion)  facts held {held}/{facts}  analyze p50 {percentile(times, 0.5):6.1f} ms"
    )
    kinds = ", ".join(f"{kind} {sum(oks)}/{len(oks)}" for kind, oks in sorted(by_kind.items()))
    print(f"  facts by kind: {kinds}")


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
        store = CodeStore(conn)
        search = CodeSearch(store)
        search.search("warm up: type 2 diabetes")
        evaluate(search, "dev", read_set(*sorted(DATA.glob("search_eval_dev*.tsv"))), args.failures)
        evaluate(search, "holdout", read_set(DATA / "search_eval_holdout.tsv"), False)
        evaluate(search, "holdout B", read_set(DATA / "search_eval_holdout_b.tsv"), False)
        evaluate_emails(store, search, EMAILS, "labelled emails", args.failures)
        evaluate_emails(store, search, EMAILS_HOLDOUT, "labelled emails (holdout)", False)
        evaluate_emails(store, search, EMAILS_HOLDOUT_B, "labelled emails (holdout B)", False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (every loaded code set searched): {rss:.0f} MB")


if __name__ == "__main__":
    main()
