"""The search indexes over `search_terms`, rebuilt inside each import's transaction.

The analyzed index that `consultant.codes.search` ranks with stores
every entry already tokenized and stemmed (`search_docs`), a posting list per term
(`search_postings`) and the surface words of the indexed text (`search_words`, the
spelling-correction vocabulary), so a search process loads almost nothing at start.
It is rebuilt per code set, only for releases that changed since the last build.
"""

from __future__ import annotations

import re
import sqlite3
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter

import snowballstemmer

# Bump when `analyze` changes what it produces: stale indexes are rebuilt on next use.
INDEX_VERSION = "16"

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS search_docs (
    id       INTEGER PRIMARY KEY,   -- search_terms.id at build time
    system   TEXT NOT NULL,
    code     TEXT NOT NULL,
    source   TEXT NOT NULL,
    code_set TEXT NOT NULL,
    tokens   TEXT NOT NULL          -- analyze() output, space separated
);
CREATE INDEX IF NOT EXISTS search_docs_set ON search_docs(code_set);
-- Doc ids holding TERM, shortest entry first, as a uint32 array.
CREATE TABLE IF NOT EXISTS search_postings (
    term     TEXT NOT NULL,
    system   TEXT NOT NULL,
    code_set TEXT NOT NULL,
    ids      BLOB NOT NULL,
    PRIMARY KEY (term, system, code_set)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_postings_set ON search_postings(code_set);
-- Entry counts alone, so a search process loads them without reading the postings.
CREATE TABLE IF NOT EXISTS search_df (
    term     TEXT NOT NULL,
    system   TEXT NOT NULL,
    code_set TEXT NOT NULL,
    df       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS search_df_set ON search_df(code_set);
CREATE TABLE IF NOT EXISTS search_words (
    word     TEXT NOT NULL,
    code_set TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (word, code_set)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_words_set ON search_words(code_set);
-- Abbreviations the indexed text spells out: "hiv" -> "human immunodefici viru".
CREATE TABLE IF NOT EXISTS search_abbreviations (
    abbreviation TEXT NOT NULL,
    code_set     TEXT NOT NULL,
    stems        TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (abbreviation, code_set, stems)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_abbreviations_set ON search_abbreviations(code_set);
"""

_TABLES = ("search_docs", "search_postings", "search_df", "search_words", "search_abbreviations")
_META_VERSION = "search_index_version"
_META_SET = "search_index:"  # + code set -> the release signature it was built from


def rebuild_search_index(conn: sqlite3.Connection) -> None:
    update_analyzed_index(conn)


def analyzed_index_is_current(conn: sqlite3.Connection) -> bool:
    """Whether `search_docs` matches the loaded releases and this code's analyzer."""
    try:
        built = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'search_index%'"))
    except sqlite3.OperationalError:
        return False
    if built.get(_META_VERSION) != INDEX_VERSION:
        return False
    wanted = {_META_SET + cs: sig for cs, sig in _release_signatures(conn).items()}
    have = {k: v for k, v in built.items() if k.startswith(_META_SET)}
    return wanted == have


def update_analyzed_index(conn: sqlite3.Connection) -> None:
    """Re-analyze the code sets whose release changed; drop those no longer loaded."""
    # One statement at a time: executescript would commit the import's open transaction.
    for statement in INDEX_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    built = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'search_index%'"))
    if built.get(_META_VERSION) != INDEX_VERSION:
        for table in _TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM meta WHERE key LIKE 'search_index%'")
        built = {}
    wanted = _release_signatures(conn)
    stale = {k.removeprefix(_META_SET) for k in built if k.startswith(_META_SET)}
    for code_set in stale | set(wanted):
        if built.get(_META_SET + code_set) == wanted.get(code_set):
            continue
        for table in _TABLES:
            conn.execute(f"DELETE FROM {table} WHERE code_set = ?", (code_set,))
        conn.execute("DELETE FROM meta WHERE key = ?", (_META_SET + code_set,))
        if code_set in wanted:
            _index_code_set(conn, code_set)
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                (_META_SET + code_set, wanted[code_set]),
            )
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_META_VERSION, INDEX_VERSION)
    )


def _release_signatures(conn: sqlite3.Connection) -> dict[str, str]:
    # imported_at changes on a forced re-import of the same file, whose rows are new.
    return {
        row[0]: f"{row[1]}@{row[2]}"
        for row in conn.execute("SELECT code_set, sha256, imported_at FROM releases")
    }


def _index_code_set(conn: sqlite3.Connection, code_set: str) -> None:
    docs: list[tuple[int, str, str, str, str, str]] = []
    analyzed: list[tuple[int, int, str, list[str]]] = []
    words: Counter[str] = Counter()
    spelled: Counter[tuple[str, str]] = Counter()
    rows = conn.execute(
        "SELECT id, system, code, text, source FROM search_terms WHERE code_set = ?", (code_set,)
    )
    for doc_id, system, code, text, source in rows:
        folded = _fold(text)
        tokens = _analyze_folded(folded)
        if not tokens:
            continue
        docs.append((doc_id, system, code, source, code_set, " ".join(tokens)))
        length = sum(1 for t in tokens if t[0] not in _MARKS)
        analyzed.append((length, doc_id, system, tokens))
        words.update(_SURFACE.findall(folded))
        if "(" in folded or "[" in folded:
            spelled.update((a, " ".join(stems)) for a, stems in abbreviations(folded))
    # Postings list the shortest entries first: among equal matches, the closest.
    analyzed.sort(key=itemgetter(0))
    postings: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for _, doc_id, system, tokens in analyzed:
        by_term = postings[system]
        for term in {t.lstrip("+^") for t in tokens}:
            by_term[term].append(doc_id)
    conn.executemany("INSERT INTO search_docs VALUES (?, ?, ?, ?, ?, ?)", docs)
    conn.executemany(
        "INSERT INTO search_postings VALUES (?, ?, ?, ?)",
        (
            (term, system, code_set, array("I", ids).tobytes())
            for system, by_term in postings.items()
            for term, ids in by_term.items()
        ),
    )
    conn.executemany(
        "INSERT INTO search_df VALUES (?, ?, ?, ?)",
        (
            (term, system, code_set, len(ids))
            for system, by_term in postings.items()
            for term, ids in by_term.items()
        ),
    )
    conn.executemany(
        "INSERT INTO search_words VALUES (?, ?, ?)", ((w, code_set, n) for w, n in words.items())
    )
    conn.executemany(
        "INSERT INTO search_abbreviations VALUES (?, ?, ?, ?)",
        ((a, code_set, stems, n) for (a, stems), n in spelled.items()),
    )


def unpack(blob: bytes) -> array:
    ids = array("I")
    ids.frombytes(blob)
    return ids


# -- analysis ---------------------------------------------------------------------------
#
# analyze() turns an entry or a query into tokens: porter stems of its words, where
# "+stem" is optional (a nonessential modifier in parentheses, or the joined form of a
# hyphenated word: it may match a query word but is not missing when absent), "^stem"
# comes from an index cross reference ("Labor, preterm (see ..., with preterm
# delivery)"): optional, yet part of what the code means, and "~stem" is negated
# ("without hematuria"), which only a negated query word matches.

_MARKS = "+^~"
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "in",
        "on",
        "to",
        "for",
        "by",
        "at",
        "as",
        "is",
        "are",
        "was",
        "be",
        "been",
        "has",
        "have",
        "had",
        "with",
        "from",
        "into",
        "than",
        "its",
        "this",
        "that",
        "these",
        "those",
        "also",
        "any",
        "each",
        "per",
        "see",
    ]
)
_NEGATORS = frozenset({"without", "not", "no", "whether"})
# Words where a negation's reach ends: "without coma, initial encounter"; a side named
# after it ("without macular edema both eyes") is asserted.
_NEGATION_ENDS = frozenset(
    {
        "with",
        "initial",
        "subsequent",
        "sequela",
        "but",
        "except",
        "unspecified",
        "bilateral",
        "both",
        "left",
        "right",
    }
)
_ORDINALS = {
    "first": "1",
    "second": "2",
    "third": "3",
    "fourth": "4",
    "fifth": "5",
    "sixth": "6",
    "seventh": "7",
    "eighth": "8",
    "ninth": "9",
    "tenth": "10",
    "1st": "1",
    "2nd": "2",
    "3rd": "3",
    "4th": "4",
    "5th": "5",
    "6th": "6",
    "7th": "7",
    "8th": "8",
    "9th": "9",
    "10th": "10",
}
_ROMAN = {
    "i": "1",
    "ii": "2",
    "iii": "3",
    "iiia": "3a",
    "iiib": "3b",
    "iiic": "3c",
    "iv": "4",
    "v": "5",
    "vi": "6",
}
# Roman numerals are read only after these words ("type II", "stage IV", "Mobitz II").
_ROMAN_AFTER = frozenset({"type", "stage", "grade", "class", "degree", "mobitz", "level", "phase"})
_RANGE_WORDS = frozenset({"through", "to", "thru"})
_DROP_PHRASES = re.compile(
    r"\b(?:not elsewhere classified|not otherwise specified|nec|nos)\b", re.IGNORECASE
)
# "Gastric ulcer, unspecified as acute or chronic", "not specified as recurrent": the title
# leaves those words open, so a query's "chronic" or "recurrent" is not matched by them and
# a query silent about them is not charged for them.
_LEFT_OPEN = re.compile(
    r"\b(?:not specified|unspecified) as (?:to )?[\w'-]+(?: or [\w'-]+)?", re.IGNORECASE
)
_DECIMAL_RANGE = re.compile(r"\b(\d+)(?:\.0)?\s*-\s*(\d+)\.9\b")
_WORD = re.compile(r"\d+\.\d+|[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_RANGE = 30
# "otitis media, unspecified ear" leaves the side open; "laceration of unspecified ear" is
# the ear's, side open: there the ear is the site.
_ORGANS = frozenset(("ear", "eye"))


def _named_site(words: list[str], at: int) -> bool:
    return words[at] in _ORGANS and at >= 2 and words[at - 2] == "of"


_DIMENSIONS = frozenset(
    [
        "site",
        "organism",
        "part",
        "parts",
        "type",
        "side",
        "episode",
        "severity",
        "ear",
        "eye",
        "limb",
        "region",
        "stage",
        "quadrant",
        "lobe",
        "bone",
        "joint",
        "trimester",
        "laterality",
        "degree",
        "level",
        "cause",
        "agent",
        "substance",
        "location",
    ]
)
# Words _tokens must look at closely; every other word is just stemmed.
_SPECIAL = _NEGATORS | _NEGATION_ENDS | _RANGE_WORDS | set(_ORDINALS) | set(_ROMAN) | {"or", "and"}
_SURFACE = re.compile(r"[a-z]{3,}")
_POSSESSIVE = re.compile(r"'s\b")
_BRACKETS = re.compile(r"([()\[\]])")


def surface_words(text: str) -> set[str]:
    """Plain lower-case words of TEXT: the vocabulary spelling correction draws from."""
    return set(_SURFACE.findall(_fold(text)))


def _fold(text: str) -> str:
    return _POSSESSIVE.sub("", text.lower().replace("\u2019", "'")).replace("'", "")


def _segments(text: str) -> Iterable[tuple[str, str]]:
    """(piece, mark): parenthesized and bracketed pieces are nonessential ("+"), except
    an index cross reference ("^"), which says what the code is about."""
    depth = 0
    see = False
    for piece in _BRACKETS.split(text):
        if piece in ("(", "["):
            depth += 1
        elif piece in (")", "]"):
            depth = max(depth - 1, 0)
            see = see and depth > 0
        elif piece.strip():
            see = see or (depth > 0 and piece.lstrip().startswith("see "))
            yield piece, ("^" if see else "+") if depth else ""


def analyze(text: str) -> list[str]:
    """Tokens of an entry or query, in order (see the comment above)."""
    return _analyze_folded(_fold(text))


def _analyze_folded(text: str) -> list[str]:
    text = _DROP_PHRASES.sub(" ", text).replace("whether with", "whether")
    text = _LEFT_OPEN.sub(" unspecified ", text)
    if "." in text:
        text = _DECIMAL_RANGE.sub(r"\1 through \2", text)
    out: list[str] = []
    for piece, mark in _segments(text):
        out.extend(_piece(piece, mark))
    return out


# "human immunodeficiency virus [HIV]": an abbreviation after the words it stands for.
_ABBREVIATION = re.compile(r"[(\[]([a-z]{2,6})[)\]]")
_CLAUSE = re.compile(r"[()\[\],]")


def abbreviations(folded: str) -> Iterable[tuple[str, list[str]]]:
    """(abbreviation, stems it stands for) that a folded text spells out."""
    for match in _ABBREVIATION.finditer(folded):
        letters = match[1]
        before = _CLAUSE.split(folded[: match.start()])[-1]
        words = [w for w in re.findall(r"[a-z0-9]+", before) if w not in _STOPWORDS]
        if len(words) >= len(letters) and "".join(w[0] for w in words[-len(letters) :]) == letters:
            yield letters, [stem(w) for w in words[-len(letters) :]]


@lru_cache(maxsize=100_000)
def _piece(piece: str, mark: str) -> tuple[str, ...]:
    # Index paths repeat their main term and modifiers thousands of times: analyze once.
    words: list[str] = []
    for clause in piece.split(","):
        words.extend(_WORD.findall(clause))
        words.append(",")
    return tuple(_tokens(words[:-1], mark))


def _tokens(words: list[str], mark: str) -> list[str]:
    out: list[str] = []
    negated = numbering = False
    previous = ""
    negation_ends = 0  # index of the comma that ends the current negation
    in_range = ""  # the upper bound of a range already written
    for i, word in enumerate(words):
        if word == ",":
            if i >= negation_ends:
                negated = False
            previous = word
            continue
        if word == "of" and negated and words[max(i - 2, 0) : i] == ["foreign", "body"]:
            # "Laceration without foreign body of left forearm": the site is asserted.
            negated = False
        if word not in _SPECIAL and "-" not in word and "." not in word and not in_range:
            token = _numbered(previous, _plain_token(word))
            # "unspecified site": the title only says what it does not say.
            if token and not (
                previous == "unspecified" and word in _DIMENSIONS and not _named_site(words, i)
            ):
                out.append(("~" if negated else mark) + token)
            previous = word
            numbering = False
            continue
        if word in _NEGATORS:
            negated = True
            negation_ends = _negation_end(words, i)
            continue
        if word in _NEGATION_ENDS:
            negated = False
        parts = word.split("-")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            out.extend(_marked(n, "+", negated) for n in _span(*parts))
            previous = parts[1]
            continue
        if word in _RANGE_WORDS and previous.isdigit():
            # "stage 1 through stage 4": every stage in the range fits; none is required.
            high = next((w for w in words[i + 1 : i + 3] if w.isdigit()), None)
            if high is not None:
                between = _span(previous, high)
                if "3" in between:
                    between += ["3a", "3b"]  # CKD stage 3 comes as 3a and 3b
                low = _marked(previous, mark, negated)
                if low in out:
                    out.remove(low)
                out.extend(_marked(n, "+", negated) for n in between)
                in_range = high
            continue
        if word == in_range:
            in_range = ""
            continue
        for part in parts:
            roman = _ROMAN.get(part) if previous in _ROMAN_AFTER else None
            token = _ORDINALS.get(part) or roman
            if token is None:
                token = part[:-2] if part.endswith(".0") else part
            token = _numbered(previous, token)
            # "type I or II", "type IIIA, IIIB, or IIIC": the list continues the numbering.
            previous = previous if roman or (part in ("or", "and") and numbering) else token
            numbering = roman is not None or (numbering and part in ("or", "and"))
            if token not in _STOPWORDS:
                out.append(_marked(stem(token), mark, negated))
        if len(parts) > 1 and not any(p.isdigit() for p in parts):
            out.append("+" + stem("".join(parts)))
    return out


def _numbered(previous: str, token: str) -> str:
    """Make "type 2" one token, "type2": a bare "2" would match any range spanning it
    ("stage 1 through stage 4")."""
    return "type" + token if previous == "type" and token.isdigit() else token


@lru_cache(maxsize=200_000)
def _plain_token(word: str) -> str:
    return "" if word in _STOPWORDS else stem(word)


def _negation_end(words: list[str], start: int) -> int:
    """Where "without" stops: its clause, or a whole enumeration ("without A, B, and C";
    but "without rheumatoid factor, right shoulder" leaves the shoulder asserted)."""
    commas = [j for j in range(start, len(words)) if words[j] == ","]
    listed = [j for j in commas if j + 1 < len(words) and words[j + 1] in ("and", "or")]
    if not listed:
        return commas[0] if commas else len(words)
    return next((j for j in commas if j > listed[-1]), len(words))


def _span(low: str, high: str) -> list[str]:
    a, b = int(low), int(high)
    if not 0 < b - a <= _MAX_RANGE:
        return [low, high]
    return [str(n) for n in range(a, b + 1)]


def _marked(token: str, mark: str, negated: bool) -> str:
    return "~" + token if negated else mark + token


# The Porter stemmer (M.F. Porter, 1980), the algorithm of SQLite's `porter` tokenizer.
_PORTER = snowballstemmer.stemmer("porter")
_VOWEL_CONSONANT = re.compile(r"[aeiouy]+[^aeiouy]+")  # Porter's measure, near enough


_EPITHETS = frozenset({"pneumoniae", "influenzae"})


def stems(text: str) -> set[str]:
    """The stems of TEXT's words, as the search compares them."""
    return {stem(word) for word in re.findall(r"[a-z]+", text.lower())}


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    # "-itis" names an inflammation: "esophagitis" must not become "esophageal"; an
    # organism's epithet is not the disease ("Streptococcus pneumoniae" is no pneumonia).
    if len(word) <= 2 or not word.isalpha() or word.endswith("itis") or word in _EPITHETS:
        return word
    word = _PORTER.stemWord(word)
    # SQLite's porter (the 1980 algorithm's C release) also folds "-logi" to "-log".
    if word.endswith("logi"):
        word = word[:-1]
    # "chlamydia"/"chlamydial", "bacteria"/"bacterial": Porter keeps the noun's "a".
    if word.endswith("ia") and len(_VOWEL_CONSONANT.findall(word[:-1])) > 1:
        word = word[:-1]
    return word
