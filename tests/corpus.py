"""The real-world mail corpus in ../shared/corpora/email (CI keeps ../shared beside the
checkout): 1,662 messages from other mail projects' test suites, and their MANIFESTs."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "email"
NOT_MAIL = frozenset(("MANIFEST.txt", "STATS.txt"))


def corpus_files() -> list[Path]:
    """Every message file, sorted; fails (never skips) when the corpus is missing."""
    if not CORPUS.is_dir():
        pytest.fail(f"{CORPUS} is missing; CI keeps ../shared beside the checkout")
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MAIL)
