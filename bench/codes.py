"""Code database benchmark: import times, lookup/search/analyze latency, peak RSS.

Run: python bench/codes.py [--data ../shared/data] [--questions 1000]
Prints figures; asserts nothing. The database is built from scratch in a temp dir.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from consultant.codes import db
from consultant.codes.importers import find_official_files, with_bundled
from consultant.codes.importing import run_import
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore
from consultant.drafting.analyze import analyze
from consultant.templating import template_environment

ROOT = Path(__file__).resolve().parents[1]

PHRASES = [
    "type 2 diabetes with diabetic CKD stage 3a",
    "stage 3 pressure ulcer of sacral region",
    "essential HTN",
    "acute on chronic systolic CHF",
    "closed fracture of left distal radius initial encounter",
    "COPD with acute exacerbation",
    "UTI",
    "major depressive disorder recurrent moderate",
    "BPH with LUTS",
    "obstructive sleep apnea",
    "afib",
    "GERD without esophagitis",
    "primary OA right knee",
    "screening colonoscopy",
    "history of breast cancer",
]
CPT_NUMBERS = ["29881", "29877", "99213", "99214", "36415", "20610", "11042", "97110", "45378"]
MODIFIERS = ["25", "59", "XS", "RT", "LT", "TC", "26", "51", "GA", "KX"]
# Dates of service and old codes: answers judged by date, CC/MCC, HCC and the GEMs.
DATED = [
    "DOS 06/15/2025.",
    "Date of service 2024-03-01, is it a CC or MCC?",
    "Does it map to an HCC in V28?",
    "What is ICD-9 250.00 in ICD-10?",
    "Can we bill G2211 with 99214?",
]
NOISE = [
    "Our office is at 100 Main St, Raleigh, NC 27607.",
    "Call me at (919) 555-0142 or fax 919-555-0143.",
    "Claim #45821 was denied on 03/14/2026 for $1,250.00.",
    "Billing NPI 1234567893.",
    "",
]


def peak_rss_mb() -> float:
    """This process's own high-water mark: VmHWM starts afresh at exec, unlike ru_maxrss,
    which a child inherits from the parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, items) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def question(rng: random.Random, codes: list[str]) -> bytes:
    parts = [
        f"Is {rng.choice(codes)} billable for this visit?",
        f"Can {rng.choice(CPT_NUMBERS)} and {rng.choice(CPT_NUMBERS)} go on one claim "
        f"with modifier {rng.choice(MODIFIERS)}?",
        f"What is the code for {rng.choice(PHRASES)}?",
        rng.choice(NOISE),
        rng.choice(DATED),
    ]
    rng.shuffle(parts)
    body = " ".join(parts[: rng.randint(2, 5)])
    return (
        f"From: coder@example.com\r\nTo: consult@example.com\r\nSubject: coding question\r\n"
        f"Message-ID: <{rng.random()}@example.com>\r\n\r\n{body}\r\n"
    ).encode()


def measure(database: Path, questions: int) -> None:
    """Latency and memory of a drafting process: opens the built database, imports nothing."""
    rng = random.Random(2026)
    store = CodeStore(db.connect(database))
    search = CodeSearch(store)
    conn = store.conn
    billable = [r[0] for r in conn.execute("SELECT code FROM codes WHERE billable = 1")]
    sample = rng.sample(billable, 2000) + ["E11", "S32.000", "E11.99", "99213"] * 50

    print("== latency (ms)")
    lookups = timed(store.lookup, sample)
    print(f"lookup   p50 {percentile(lookups, 0.5):7.3f}  p99 {percentile(lookups, 0.99):7.3f}")
    searches = timed(search.search, PHRASES * 40)
    print(f"search   p50 {percentile(searches, 0.5):7.3f}  p99 {percentile(searches, 0.99):7.3f}")
    env = template_environment(None)
    batch = [question(rng, billable[:5000]) for _ in range(questions)]
    analyses = timed(lambda raw: analyze(raw, store, search, templates=env), batch)
    print(
        f"analyze  p50 {percentile(analyses, 0.5):7.3f}  p99 {percentile(analyses, 0.99):7.3f}"
        f"  (mean {statistics.mean(analyses):.3f}, {len(batch)} questions)"
    )
    print(f"== peak RSS of a drafting process with every code set loaded: {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.questions)
        return

    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "codes.sqlite"
        conn = db.connect(database)
        print("== import (full files)")
        for importer, path in with_bundled(find_official_files(args.data)):
            code_set = importer.code_set(path)
            result = run_import(conn, code_set, path, importer.loader)
            print(
                f"{code_set:<17} {result.release.row_count:>8,} rows  {result.seconds:6.2f} s"
                f"  {path.name}"
            )
        conn.close()
        print(f"peak RSS of the importing process: {peak_rss_mb():.0f} MB")
        sys.stdout.flush()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                str(database),
                "--questions",
                str(args.questions),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
